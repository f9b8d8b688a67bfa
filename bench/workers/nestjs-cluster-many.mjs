// K nestjs-cluster nodes in one process: K Nest application contexts, node i named
// n<i>@127.0.0.<i+1> (i = 1…K), each with its own link listener on its own loopback address.
// Discovery (BENCH_MANY_STRATEGY):
//   gossip  (default) every node's gossip socket shares the group port (reuseAddr) and sends
//           through 127.0.0.1; packets carry each node's own endpoint
//   static  every node gets the full host list 127.0.0.2…127.0.0.<K+1> on one link port
// Reports `many-progress` (smallest membership) every 2 s and `many-converged` once every
// node sees all K; `loop-lag` on request (event-loop delay p99 since convergence and the
// number of removals seen since then). Both ends of every link are in this process: K nodes
// need about K·(K−1) file descriptors (`many-fd-limit` says so when the limit is lower).
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { NestFactory } from '@nestjs/core';
import { emit, env, runWorker } from './common.mjs';
import { clusterModule, ClusterService } from './nestjs-cluster.mjs';

const K = Number(env('BENCH_K', '50'));
const strategy = env('BENCH_MANY_STRATEGY', 'gossip');
const gossipPort = Number(env('BENCH_UDP_PORT', '45892'));
const linkPort = Number(env('BENCH_LINK_PORT', '45893'));
const timeoutMs = Number(env('BENCH_MANY_TIMEOUT_MS', '120000'));

const apps = [];
/** CPU time of this process so far (user + system), ms: less sensitive to a busy machine than wall time. */
const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return Math.round((user + system) / 1000);
};
const counts = new Array(K).fill(1);
let removals = 0;
let convergedAt = 0;
let loop = null;

function optionsFor(i, cluster) {
  const host = `127.0.0.${i + 1}`;
  const common = {
    cookie: `bench-${cluster}`,
    nodeName: `n${i}@${host}`,
    bindAddress: host,
    advertiseAddress: host,
  };
  if (strategy === 'static') {
    const hosts = Array.from({ length: K }, (_, j) => `127.0.0.${j + 2}:${linkPort}`);
    return { ...common, port: linkPort, strategy: 'static', strategyConfig: { hosts } };
  }
  return {
    ...common,
    port: 0,
    strategy: 'gossip',
    strategyConfig: { multicastIf: '127.0.0.1', port: gossipPort },
  };
}

/** This process's open-files limit (soft), from /proc on Linux; null elsewhere. */
function openFilesLimit() {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft && /^\d+$/.test(soft) ? Number(soft) : null;
  } catch {
    return null;
  }
}

// Both ends of every link live in this process: a full mesh needs K·(K−1) sockets, plus a
// listener (and a gossip socket) per node.
const fdNeeded = K * (K - 1) + 2 * K;
const fdLimit = openFilesLimit();
if (fdLimit !== null && fdNeeded > fdLimit) {
  emit('many-fd-limit', {
    k: K,
    needed: fdNeeded,
    limit: fdLimit,
    message: `a full mesh of ${K} nodes in one process needs about ${fdNeeded} file descriptors; this process may open ${fdLimit} (ulimit -n): it cannot converge here`,
  });
}

await runWorker({
  async start(ctx) {
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: K }, async (_, idx) => {
        const app = await NestFactory.createApplicationContext(
          clusterModule(optionsFor(idx + 1, ctx.cluster)),
          {
            logger: ['error'],
          },
        );
        apps.push(app);
        const svc = app.get(ClusterService);
        svc.members$.subscribe((list) => {
          counts[idx] = list.length;
        });
        svc.events$.subscribe((e) => {
          if (e.type !== 'join' && convergedAt) removals++;
        });
      }),
    );
    emit('many-started', { k: K, ms: Date.now() - t0, cpuMs: cpuMs() });
    const progress = setInterval(() => {
      const min = Math.min(...counts);
      if (min >= K) {
        convergedAt = Date.now();
        clearInterval(progress);
        clearInterval(report);
        emit('many-converged', { k: K, cpuMs: cpuMs() });
        loop = monitorEventLoopDelay({ resolution: 10 });
        loop.enable();
      } else if (Date.now() - t0 > timeoutMs) {
        clearInterval(progress);
        clearInterval(report);
        emit('many-timeout', { minMembers: min, cpuMs: cpuMs() });
      }
    }, 5);
    progress.unref();
    const report = setInterval(() => {
      const sorted = [...counts].sort((a, b) => a - b);
      emit('many-progress', {
        minMembers: sorted[0],
        medianMembers: sorted[K >> 1],
        maxMembers: sorted[K - 1],
        isolated: sorted.filter((n) => n === 1).length,
        cpuMs: cpuMs(),
      });
    }, 2000);
    report.unref();
  },
  commands: {
    'loop-lag'() {
      emit('loop-lag', {
        p99ms: loop ? loop.percentile(99) / 1e6 : null,
        maxms: loop ? loop.max / 1e6 : null,
        removals,
      });
    },
  },
  async stop() {
    await Promise.all(apps.map((a) => a.close()));
  },
});
