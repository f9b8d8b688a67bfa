// One node-discover node with its multicast option (group 239.255.42.99). node-discover has
// no graceful leave and no messaging between two chosen nodes; peers notice a stopped node
// when its hellos stop. Profiles:
//   defaults  hello 1 s, check 2 s, node timeout 2 s (as shipped)
//   matched   hello 1 s, check 1 s, node timeout 5 s
import Discover from 'node-discover';
import { env, runWorker } from './common.mjs';

let d;

await runWorker({
  start(ctx) {
    const timing =
      ctx.profile === 'matched'
        ? { helloInterval: 1000, checkInterval: 1000, nodeTimeout: 5000 }
        : {};
    return new Promise((resolve, reject) => {
      d = new Discover(
        {
          ...timing,
          multicast: env('BENCH_MCAST', '239.255.42.99'),
          port: Number(env('BENCH_UDP_PORT', '12345')),
          hostname: ctx.name,
        },
        (err) => (err ? reject(err) : resolve()),
      );
      d.on('added', (node) => ctx.added(node.hostName));
      d.on('removed', (node) => ctx.removed(node.hostName, 'down'));
      d.on('error', () => {});
    });
  },
  async stop() {
    d?.stop();
  },
});
