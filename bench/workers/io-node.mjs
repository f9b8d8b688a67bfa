// One Socket.IO server node for the room-broadcast scenario: an HTTP server on 127.0.0.1 (free
// port, reported as `io-listening`) with a socket.io server whose adapter is
//   BENCH_IO_SYSTEM=nestjs-cluster  ClusterIoAdapter over ClusterModule (dist/), gossip on
//                                   loopback as in nestjs-cluster.mjs
//   BENCH_IO_SYSTEM=redis           @socket.io/redis-adapter on the harness's redis-server
//                                   (ioredis, BENCH_REDIS_PORT)
// A client emits `join` with a room name (acknowledged). The `send` command (common.mjs)
// broadcasts `m` with the message body to BENCH_IO_ROOM: io.to(room).emit('m', body).
import 'reflect-metadata';
import { createServer } from 'node:http';
import { NestFactory } from '@nestjs/core';
import { env, emit, runWorker } from './common.mjs';

const system = env('BENCH_IO_SYSTEM', 'nestjs-cluster');
const room = env('BENCH_IO_ROOM', 'bench-room');
let app;
let io;
let http;
const redisClients = [];

async function adapterOf(ctx) {
  if (system === 'redis') {
    const { default: Redis } = await import('ioredis');
    const { createAdapter } = await import('@socket.io/redis-adapter');
    const pub = new Redis({ host: '127.0.0.1', port: Number(env('BENCH_REDIS_PORT', '6379')) });
    const sub = pub.duplicate();
    redisClients.push(pub, sub);
    await Promise.all([pub.ping(), sub.ping()]);
    return { kind: 'constructor', adapter: createAdapter(pub, sub) };
  }
  const { ClusterService, clusterModule, clusterOptions, report } =
    await import('./nestjs-cluster.mjs');
  const { ClusterIoAdapter } = await import(
    new URL('../../dist/socket-io/index.js', import.meta.url).href
  );
  app = await NestFactory.createApplicationContext(clusterModule(clusterOptions(ctx)), {
    logger: ['error', 'warn'],
  });
  const cluster = app.get(ClusterService);
  report(cluster, ctx);
  return { kind: 'nest', adapter: new ClusterIoAdapter(http, { cluster }) };
}

await runWorker({
  async start(ctx) {
    http = createServer();
    const { kind, adapter } = await adapterOf(ctx);
    if (kind === 'nest') {
      // What Nest does for a gateway: IoAdapter.createIOServer(0) on the app's HTTP server.
      io = adapter.createIOServer(0, { transports: ['websocket'] });
    } else {
      const { Server } = await import('socket.io');
      io = new Server(http, { transports: ['websocket'] });
      io.adapter(adapter);
    }
    io.on('connection', (socket) => {
      socket.on('join', async (name, ack) => {
        await socket.join(name);
        if (typeof ack === 'function') ack({ ok: true });
      });
    });
    await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
    emit('io-listening', { port: http.address().port, system });
  },
  publish(text) {
    io.to(room).emit('m', text);
  },
  async stop() {
    io?.close();
    for (const client of redisClients) client.disconnect();
    await app?.close();
  },
});
