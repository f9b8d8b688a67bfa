// One process of the @nestjs/microservices request/reply scenario.
//   BENCH_MS_ROLE=server  a Nest app whose controller has @MessagePattern('sum')
//   BENCH_MS_ROLE=client  a ClientProxy; the `load` command sends `sum` requests
//   BENCH_MS_SYSTEM=nestjs-cluster  ClusterTransport (server, hybrid app as in the README) and
//                                   ClusterClientProxy (client), over ClusterModule (dist/),
//                                   gossip on loopback as in nestjs-cluster.mjs
//   BENCH_MS_SYSTEM=redis           Nest's Redis transport (Transport.REDIS, ioredis) on the
//                                   harness's redis-server (BENCH_REDIS_PORT)
//
// `load {id, count, concurrency, maxMs}`: `concurrency` callers, each awaiting its reply before
// the next send, until `count` replies or `maxMs`; emits `load-done` with replies/s and the
// round-trip percentiles.
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientProxyFactory, MessagePattern, Transport } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { env, emit, runWorker } from './common.mjs';

const system = env('BENCH_MS_SYSTEM', 'nestjs-cluster');
const role = env('BENCH_MS_ROLE', 'server');
const redisOptions = { host: '127.0.0.1', port: Number(env('BENCH_REDIS_PORT', '6379')) };

class SumController {
  sum({ a, b }) {
    return a + b;
  }
}
MessagePattern('sum')(
  SumController.prototype,
  'sum',
  Object.getOwnPropertyDescriptor(SumController.prototype, 'sum'),
);
Controller()(SumController);

let app;
let client;

async function clusterApp(ctx, extra) {
  const { ClusterService, clusterModule, clusterOptions, report } =
    await import('./nestjs-cluster.mjs');
  const module = clusterModule(clusterOptions(ctx), extra);
  const created =
    role === 'server'
      ? await NestFactory.create(module, { logger: ['error', 'warn'] })
      : await NestFactory.createApplicationContext(module, { logger: ['error', 'warn'] });
  const cluster = created.get(ClusterService);
  report(cluster, ctx);
  return { created, cluster };
}

async function start(ctx) {
  if (system === 'redis') {
    if (role === 'server') {
      class ServerModule {}
      Module({ controllers: [SumController] })(ServerModule);
      app = await NestFactory.createMicroservice(ServerModule, {
        transport: Transport.REDIS,
        options: redisOptions,
        logger: ['error', 'warn'],
      });
      await app.listen();
    } else {
      client = ClientProxyFactory.create({ transport: Transport.REDIS, options: redisOptions });
      await client.connect();
    }
    return;
  }
  const ms = await import(new URL('../../dist/microservices/index.js', import.meta.url).href);
  if (role === 'server') {
    const { created, cluster } = await clusterApp(ctx, { controllers: [SumController] });
    app = created;
    app.connectMicroservice({ strategy: new ms.ClusterTransport(cluster) });
    await app.startAllMicroservices();
    await app.init();
  } else {
    const { created, cluster } = await clusterApp(ctx, {});
    app = created;
    client = new ms.ClusterClientProxy({ cluster });
    await client.connect();
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

await runWorker({
  start,
  async stop() {
    await client?.close();
    await app?.close();
  },
  commands: {
    /** Whether a server answers yet (`sum` of 1 and 2), for the orchestrator's wait. */
    async probe({ id }) {
      try {
        const sum = await firstValueFrom(client.send('sum', { a: 1, b: 2 }));
        emit('probe', { id, ok: sum === 3, sum });
      } catch (err) {
        emit('probe', { id, ok: false, message: String(err?.message ?? err) });
      }
    },
    async load({ id, count, concurrency, maxMs = 60000 }) {
      const lat = [];
      let started = 0;
      let done = 0;
      let errors = 0;
      let firstError = null;
      const deadline = Date.now() + maxMs;
      const t0 = performance.now();
      const caller = async () => {
        while (started < count && Date.now() < deadline) {
          const i = started++;
          const s = performance.now();
          try {
            const sum = await firstValueFrom(client.send('sum', { a: i, b: 1 }));
            if (sum !== i + 1) throw new Error(`sum ${i}+1 answered ${sum}`);
            done++;
            lat.push((performance.now() - s) * 1000);
          } catch (err) {
            errors++;
            firstError ??= String(err?.message ?? err);
          }
        }
      };
      await Promise.all(Array.from({ length: concurrency }, caller));
      const ms = performance.now() - t0;
      lat.sort((a, b) => a - b);
      emit('load-done', {
        id,
        count,
        concurrency,
        done,
        errors,
        firstError,
        ms,
        rps: done / (ms / 1000),
        p50us: percentile(lat, 50),
        p99us: percentile(lat, 99),
      });
    },
  },
});
