// One nestjs-cluster node: a Nest application context importing ClusterModule (built
// output, dist/index.js) with the gossip strategy on loopback. Profiles:
//   defaults  the module's defaults (heartbeat 1 s, failure timeout 5 s)
//   matched   the same values set explicitly
import 'reflect-metadata';
import { ConsoleLogger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { env, runWorker } from './common.mjs';

const { ClusterModule, ClusterService } = await import(
  new URL('../../dist/index.js', import.meta.url).href
);

let app;
let cluster;
const topic = 'bench.msg';

/** Membership changes of one ClusterService, reported through the worker context. */
export function observe(service, { added, removed }) {
  const subs = [];
  subs.push(
    service.events$.subscribe((e) => {
      if (e.type === 'join') added(e.member.name);
      else removed(e.member.name, e.type === 'leave' ? `leave:${e.reason}` : `down:${e.reason}`);
    }),
  );
  // members$ also covers joins that happened before this subscription.
  let latest = new Set();
  subs.push(
    service.members$.subscribe((list) => {
      latest = new Set(Array.from(list, (m) => m.name));
      for (const n of latest) added(n);
      // A removal is reported by events$ with its reason; this is the fallback, checked
      // against the latest list once events$ had its turn.
      setImmediate(() => removed(null, 'members$', latest));
    }),
  );
  return () => subs.forEach((s) => s.unsubscribe());
}

/** ClusterModule options of the worker's node: gossip through 127.0.0.1 on BENCH_UDP_PORT. */
export function clusterOptions(ctx) {
  const host = env('BENCH_HOST', '127.0.0.1');
  const options = {
    cookie: `bench-${ctx.cluster}`,
    nodeName: ctx.name.includes('@') ? ctx.name : `${ctx.name}@${host}`,
    port: 0,
    bindAddress: host,
    advertiseAddress: host,
    strategy: 'gossip',
    strategyConfig: {
      multicastIf: '127.0.0.1',
      port: Number(env('BENCH_UDP_PORT', '45892')),
    },
    ...(ctx.profile === 'matched' ? { heartbeatIntervalMs: 1000, failureTimeoutMs: 5000 } : {}),
  };
  ctx.name = options.nodeName;
  return options;
}

/** Reports the membership of `cluster` through the worker context (`added`, `removed`). */
export function report(cluster, ctx) {
  const self = cluster.self.name;
  const known = new Set();
  return observe(cluster, {
    added: (n) => {
      if (n === self) return;
      known.add(n);
      ctx.added(n);
    },
    removed: (n, reason, current) => {
      if (current) {
        for (const k of [...known]) if (!current.has(k)) (known.delete(k), ctx.removed(k, reason));
        return;
      }
      known.delete(n);
      ctx.removed(n, reason);
    },
  });
}

export function clusterModule(options, extra = {}) {
  class BenchAppModule {}
  Module({ ...extra, imports: [ClusterModule.forRoot(options), ...(extra.imports ?? [])] })(
    BenchAppModule,
  );
  return BenchAppModule;
}

export { ClusterService };

const isMain = import.meta.url === new URL(process.argv[1], 'file://').href;

if (isMain) {
  await runWorker({
    async start(ctx) {
      const options = clusterOptions(ctx);
      if (env('BENCH_SEAL_LINKS', 'on') === 'off') {
        // Benchmarks only: the same build with link records unsealed (frames in the clear),
        // through the node seams provider — to measure what sealing costs.
        const { Test } = await import('@nestjs/testing');
        const moduleRef = await Test.createTestingModule({ imports: [clusterModule(options)] })
          .overrideProvider('CLUSTER:NODE_SEAMS')
          .useValue({ sealLinks: false })
          .setLogger(new ConsoleLogger({ logLevels: ['error', 'warn'] }))
          .compile();
        app = moduleRef;
        await app.init();
      } else {
        app = await NestFactory.createApplicationContext(clusterModule(options), {
          logger: ['error', 'warn'],
        });
      }
      cluster = app.get(ClusterService);
      report(cluster, ctx);
      const sub = cluster.subscribe(topic);
      const onMsg = (m) => ctx.message(typeof m === 'string' ? m : (m?.payload ?? m));
      if (typeof sub?.subscribe === 'function') sub.subscribe(onMsg);
      else if (sub && typeof sub[Symbol.asyncIterator] === 'function')
        (async () => {
          for await (const m of sub) onMsg(m);
        })();
    },
    publish(text, to) {
      if (!to) {
        cluster.publish(topic, text);
        return true;
      }
      try {
        cluster.send(to, topic, text);
        return true;
      } catch (err) {
        if (err?.name === 'BackpressureError' || /backpressure/i.test(err?.constructor?.name ?? ''))
          return false;
        throw err;
      }
    },
    async stop() {
      await app?.close();
    },
  });
}
