// One Redis pub/sub client pair (ioredis) for the messaging scenario: publishes to and
// subscribes on one channel of the redis-server the orchestrator started.
import Redis from 'ioredis';
import { env, runWorker } from './common.mjs';

let pub;
let sub;
const channel = `bench:${env('BENCH_CLUSTER', 'bench')}`;

await runWorker({
  async start(ctx) {
    const opts = { host: '127.0.0.1', port: Number(env('BENCH_REDIS_PORT', '6379')) };
    pub = new Redis(opts);
    sub = new Redis(opts);
    // Objects travel as JSON, as an app publishing objects through Redis sends them.
    sub.on('message', (_ch, text) => ctx.message(text[0] === '{' ? JSON.parse(text) : text));
    await sub.subscribe(channel);
    await pub.ping();
  },
  publish(message) {
    void pub.publish(channel, typeof message === 'string' ? message : JSON.stringify(message));
  },
  async stop() {
    pub?.disconnect();
    sub?.disconnect();
  },
});
