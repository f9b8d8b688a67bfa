import { Injectable, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { Test, type TestingModule } from '@nestjs/testing';
import { firstValueFrom, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ClusterConfigError,
  ClusterModule,
  ClusterService,
  clusterOptionsFromEnv,
  WaitForMembersTimeoutError,
  type ClusterStrategy,
  type StrategyContext,
} from '../../lib/index.js';

/** A strategy the test drives by hand: it exposes the context the core gave it. */
class HandDrivenStrategy implements ClusterStrategy {
  ctx?: StrategyContext;
  stopped = false;
  constructor(readonly config: { label: string }) {}
  start(ctx: StrategyContext): void {
    this.ctx = ctx;
  }
  stop(): void {
    this.stopped = true;
  }
}

const opened: TestingModule[] = [];
async function boot(imports: unknown[]): Promise<TestingModule> {
  const moduleRef = await Test.createTestingModule({ imports: imports as never[] }).compile();
  opened.push(moduleRef);
  await moduleRef.init();
  return moduleRef;
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((m) => m.close()));
});

describe('ClusterModule', () => {
  it('forRoot: a single node is a one-member cluster led by itself', async () => {
    const app = await boot([
      ClusterModule.forRoot({ nodeName: 'solo@127.0.0.1', strategy: 'none' }),
    ]);
    const cluster = app.get(ClusterService);
    expect(cluster.mode).toBe('single-node');
    expect(cluster.self.name).toBe('solo@127.0.0.1');
    expect(cluster.self.incarnation).toMatch(/^[0-9a-f]{16}$/);
    expect(cluster.members().map((m) => m.name)).toEqual(['solo@127.0.0.1']);
    expect(cluster.leader()?.name).toBe('solo@127.0.0.1');
    expect(cluster.isLeader()).toBe(true);
    await expect(cluster.waitForMembers(1, { timeoutMs: 100 })).resolves.toHaveLength(1);
    await expect(cluster.waitForMembers(2, { timeoutMs: 50 })).rejects.toBeInstanceOf(
      WaitForMembersTimeoutError,
    );
    const got: unknown[] = [];
    cluster.subscribe('t').subscribe((m) => got.push(m.payload));
    cluster.publish('t', { a: 1 });
    await new Promise((r) => setImmediate(r));
    expect(got).toEqual([{ a: 1 }]);
  });

  it('forRootAsync with ConfigModule and clusterOptionsFromEnv', async () => {
    const app = await boot([
      ConfigModule.forRoot({
        ignoreEnvFile: true,
        ignoreEnvVars: true,
        load: [() => ({ NODE_NAME: 'cfg@127.0.0.1', LIBCLUSTER_STRATEGY: 'none' })],
      }),
      ClusterModule.forRootAsync({
        imports: [ConfigModule],
        inject: [ConfigService],
        useFactory: (config: ConfigService) => clusterOptionsFromEnv(config),
      }),
    ]);
    expect(app.get(ClusterService).self.name).toBe('cfg@127.0.0.1');
  });

  it('forRootAsync with useClass', async () => {
    @Injectable()
    class OptionsFactory {
      createClusterOptions() {
        return { nodeName: 'cls@127.0.0.1', strategy: 'none' as const };
      }
    }
    const app = await boot([ClusterModule.forRootAsync({ useClass: OptionsFactory })]);
    expect(app.get(ClusterService).self.name).toBe('cls@127.0.0.1');
  });

  it('forRootFromEnv reads the environment through ConfigService', async () => {
    process.env.NODE_NAME = 'env@127.0.0.1';
    process.env.LIBCLUSTER_STRATEGY = 'none';
    try {
      const app = await boot([
        ConfigModule.forRoot({ ignoreEnvFile: true }),
        ClusterModule.forRootFromEnv(),
      ]);
      expect(app.get(ClusterService).self.name).toBe('env@127.0.0.1');
    } finally {
      delete process.env.NODE_NAME;
      delete process.env.LIBCLUSTER_STRATEGY;
    }
  });

  it('isGlobal makes ClusterService injectable in every module', async () => {
    @Injectable()
    class Consumer {
      constructor(readonly cluster: ClusterService) {}
    }
    @Module({ providers: [Consumer] })
    class FeatureModule {}
    const app = await boot([
      ClusterModule.forRoot({ nodeName: 'g@127.0.0.1', strategy: 'none', isGlobal: true }),
      FeatureModule,
    ]);
    expect(app.get(Consumer).cluster.self.name).toBe('g@127.0.0.1');
  });

  it('wrong configuration stops startup with one ClusterConfigError naming every variable', async () => {
    const compile = Test.createTestingModule({
      imports: [
        ClusterModule.forRoot(
          clusterOptionsFromEnv({ LIBCLUSTER_STRATEGY: 'foo', CLUSTER_PORT: '70000' }),
        ),
      ],
    }).compile();
    await expect(compile).rejects.toThrow(ClusterConfigError);
    await expect(compile).rejects.toThrow(/CLUSTER_PORT: "70000"[\s\S]*LIBCLUSTER_STRATEGY: "foo"/);
  });

  it('two apps in one process link through a custom strategy and never share state', async () => {
    const common = {
      cookie: 'e2e-cookie',
      bindAddress: '127.0.0.1',
      port: 0,
      heartbeatIntervalMs: 100,
      failureTimeoutMs: 1000,
    };
    const a = await boot([
      ClusterModule.forRoot({
        ...common,
        nodeName: 'a@127.0.0.1',
        strategy: HandDrivenStrategy,
        strategyConfig: { label: 'A' },
      }),
    ]);
    const b = await boot([
      ClusterModule.forRoot({
        ...common,
        nodeName: 'b@127.0.0.1',
        strategy: HandDrivenStrategy,
        strategyConfig: { label: 'B' },
      }),
    ]);
    const ca = a.get(ClusterService);
    const cb = b.get(ClusterService);
    expect(ca.self.endpoint).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(ca.self.endpoint).not.toBe(cb.self.endpoint);

    // The strategy instances are per app and got their own config.
    const strategyOf = (app: TestingModule) =>
      app.get<{ strategy: HandDrivenStrategy }[]>('CLUSTER:TOPOLOGIES')[0].strategy;
    expect(strategyOf(a).config.label).toBe('A');
    expect(strategyOf(b).config.label).toBe('B');
    expect(strategyOf(a).ctx?.topology).toBe('default');

    const joinedOnB = firstValueFrom(cb.events$);
    const [host, port] = cb.self.endpoint.split(':');
    strategyOf(a).ctx!.connect([{ host: host, port: Number(port) }]);
    await expect(ca.waitForMembers(2, { timeoutMs: 5000 })).resolves.toHaveLength(2);
    await expect(cb.waitForMembers(2, { timeoutMs: 5000 })).resolves.toHaveLength(2);
    expect((await joinedOnB).type).toBe('join');
    expect(ca.members().map((m) => m.name)).toEqual(['a@127.0.0.1', 'b@127.0.0.1']);
    expect(ca.leader()?.name).toBe(cb.leader()?.name);
    expect([ca.isLeader(), cb.isLeader()].filter(Boolean)).toHaveLength(1);

    // Graceful shutdown of B: A sees `leave` (shutdown) at once, not `down` later.
    const leaveOnA = firstValueFrom(ca.events$);
    const t0 = Date.now();
    await b.close();
    opened.splice(opened.indexOf(b), 1);
    const event = await leaveOnA;
    expect(event).toMatchObject({
      type: 'leave',
      reason: 'shutdown',
      member: { name: 'b@127.0.0.1' },
    });
    expect(Date.now() - t0).toBeLessThan(900);
    expect(ca.members().map((m) => m.name)).toEqual(['a@127.0.0.1']);
    expect(strategyOf(b).stopped).toBe(true);
  });

  it('shutdown completes the observables', async () => {
    const app = await boot([ClusterModule.forRoot({ nodeName: 'c@127.0.0.1', strategy: 'none' })]);
    const cluster = app.get(ClusterService);
    const members = firstValueFrom(cluster.members$.pipe(toArray()));
    const events = firstValueFrom(cluster.events$.pipe(toArray()));
    await app.close();
    opened.splice(opened.indexOf(app), 1);
    await expect(members).resolves.toHaveLength(1);
    await expect(events).resolves.toEqual([]);
  });
});
