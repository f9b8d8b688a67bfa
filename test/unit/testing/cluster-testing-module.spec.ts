import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ClusterHandle,
  ClusterModule,
  ClusterService,
  ClusterSubscribe,
  LeaderOnly,
  OnClusterEvent,
  clusterOptionsFromEnv,
  type ClusterEvent,
  type ClusterMessage,
} from '../../../lib/index.js';
import { ClusterTestingModule, type TestingCluster } from '../../../lib/testing/index.js';

/** An app as a user writes it: options from ConfigService, decorated handlers. */
@Injectable()
class Inventory {
  readonly seen: { topic: string; payload: unknown; from: string }[] = [];
  readonly events: string[] = [];
  runs = 0;

  constructor(private readonly cluster: ClusterService) {}

  @ClusterSubscribe('stock')
  onStock({ topic, payload, from }: ClusterMessage): void {
    this.seen.push({ topic, payload, from });
  }

  @ClusterHandle('count')
  count(items: number[], from: string): { total: number; by: string; asked: string } {
    return { total: items.reduce((a, b) => a + b, 0), by: this.cluster.self.name, asked: from };
  }

  @OnClusterEvent('join', 'leave', 'down')
  onEvent(event: ClusterEvent): void {
    this.events.push(`${event.type} ${event.member.name}`);
  }

  @LeaderOnly()
  nightly(): string {
    this.runs += 1;
    return this.cluster.self.name;
  }
}

@Module({
  imports: [
    ConfigModule.forRoot({ ignoreEnvFile: true }),
    ClusterModule.forRootAsync({
      imports: [ConfigModule],
      inject: [ConfigService],
      useFactory: (config: ConfigService) => ({
        ...clusterOptionsFromEnv(config),
        appName: 'shop',
        messaging: { defaultRequestTimeoutMs: 2_000 },
      }),
    }),
  ],
  providers: [Inventory],
})
class ShopModule {}

const names = (cluster: TestingCluster): string[] => cluster.nodes.map((n) => n.name);

describe('ClusterTestingModule', () => {
  let cluster: TestingCluster | undefined;
  afterEach(async () => {
    await cluster?.close();
    // No timer callback of any node threw.
    expect(cluster?.time.uncaught ?? []).toEqual([]);
    cluster = undefined;
  });

  it('starts N apps that converge to one membership with one leader', async () => {
    cluster = await ClusterTestingModule.create({ nodes: 3, imports: [ShopModule], seed: 1 });
    await cluster.converged();
    expect(names(cluster)).toEqual(['shop@10.0.0.1', 'shop@10.0.0.2', 'shop@10.0.0.3']);
    for (let i = 0; i < 3; i++) {
      expect(
        cluster
          .service(i)
          .members()
          .map((m) => m.name),
      ).toEqual(names(cluster));
      expect(cluster.service(i).leader()?.name).toBe('shop@10.0.0.1');
      expect(cluster.service(i).mode).toBe('cluster');
    }
    expect(cluster.leader()?.index).toBe(0);
  });

  it('reports a crash as down and a graceful close as leave, on every other node', async () => {
    cluster = await ClusterTestingModule.create({ nodes: 3, imports: [ShopModule] });
    await cluster.converged();
    const [a, b, c] = cluster.nodes;
    cluster.crash(2);
    await cluster.converged();
    expect(a.view()).toEqual([a.name, b.name]);
    expect(c.state).toBe('crashed');
    expect(b.events.at(-1)).toMatchObject({
      type: 'down',
      reason: 'connection-closed',
      member: { name: c.name },
    });

    await b.close();
    await cluster.converged();
    expect(b.state).toBe('closed');
    expect(a.view()).toEqual([a.name]);
    expect(a.events.at(-1)).toMatchObject({ type: 'leave', member: { name: b.name } });
    // @OnClusterEvent methods of the app saw the same.
    expect(a.get(Inventory).events).toEqual([
      `join ${b.name}`,
      `join ${c.name}`,
      `down ${c.name}`,
      `leave ${b.name}`,
    ]);
  });

  it('delivers publish to @ClusterSubscribe methods of every node, the sender included', async () => {
    cluster = await ClusterTestingModule.create({ nodes: 3, imports: [ShopModule] });
    await cluster.converged();
    const result = cluster.service(1).publish('stock', { sku: 'A-1', left: 4 });
    expect(result.failed).toEqual([]);
    await cluster.until(() => cluster!.nodes.every((n) => n.get(Inventory).seen.length === 1));
    for (const node of cluster.nodes) {
      expect(node.get(Inventory).seen).toEqual([
        { topic: 'stock', payload: { sku: 'A-1', left: 4 }, from: 'shop@10.0.0.2' },
      ]);
    }
  });

  it('answers request/reply through @ClusterHandle on the target node', async () => {
    cluster = await ClusterTestingModule.create({ nodes: 3, imports: [ShopModule] });
    await cluster.converged();
    const reply = await cluster.run(
      cluster.service(0).request('shop@10.0.0.3', 'count', [1, 2, 3]),
    );
    expect(reply).toEqual({ total: 6, by: 'shop@10.0.0.3', asked: 'shop@10.0.0.1' });
  });

  it('runs @LeaderOnly on exactly one node, and on the next oldest once the leader crashes', async () => {
    cluster = await ClusterTestingModule.create({ nodes: 3, imports: [ShopModule] });
    await cluster.converged();
    const ran = (): (string | undefined)[] =>
      cluster!.running.map((n) => n.get(Inventory).nightly());
    expect(ran()).toEqual(['shop@10.0.0.1', undefined, undefined]);

    cluster.crash(0);
    await cluster.converged();
    expect(cluster.leader()?.name).toBe('shop@10.0.0.2');
    expect(ran()).toEqual(['shop@10.0.0.2', undefined]);
    expect(cluster.nodes.map((n) => n.get(Inventory).runs)).toEqual([1, 1, 0]);
  });

  it('splits on a partition (each side its own leader) and merges on heal', async () => {
    cluster = await ClusterTestingModule.create({ nodes: 3, imports: [ShopModule] });
    await cluster.converged();
    const [a, b, c] = cluster.nodes;
    cluster.partition([0], [1, 2]);
    await cluster.until(
      () => a.view().length === 1 && b.view().length === 2 && c.view().length === 2,
      {
        what: 'the split',
      },
    );
    expect(a.service.isLeader()).toBe(true);
    expect(b.service.leader()?.name).toBe(b.name);
    expect(c.view()).toEqual([b.name, c.name]);
    expect(b.events.at(-1)).toMatchObject({ type: 'down', member: { name: a.name } });

    cluster.heal();
    await cluster.converged();
    expect(c.view()).toEqual([a.name, b.name, c.name]);
    expect(cluster.leader()).toBe(a);
  });

  it('is deterministic: the same seed gives the same events at the same virtual times', async () => {
    const script = async (seed: number): Promise<string[]> => {
      const run = await ClusterTestingModule.create({ nodes: 4, imports: [ShopModule], seed });
      try {
        await run.converged();
        run.partition([0, 1], [2, 3]);
        await run.advance(8_000);
        run.heal();
        await run.converged();
        run.crash(1, { silent: true });
        await run.converged();
        await run.node(3).close();
        await run.advance(1_000);
        return run.nodes.flatMap((n) =>
          n.events.map(
            (e) => `${n.name} ${e.at} ${e.type} ${e.member.name}/${e.member.incarnation}`,
          ),
        );
      } finally {
        await run.close();
      }
    };
    const first = await script(7);
    expect(first.length).toBeGreaterThan(10);
    expect(await script(7)).toEqual(first);
  });

  it('never starts the app’s own discovery nor opens a socket: forRoot with gossip works', async () => {
    @Module({
      imports: [ClusterModule.forRoot({ cookie: 'prod-cookie', strategy: 'gossip', port: 1 })],
    })
    class GossipApp {}
    cluster = await ClusterTestingModule.create({ nodes: 2, imports: [GossipApp] });
    await cluster.converged();
    expect(cluster.service(0).discovery()).toEqual([
      { topology: 'testing', strategy: 'in-memory', ok: true },
    ]);
    expect(cluster.nodes.map((n) => n.name)).toEqual(['app@10.0.0.1', 'app@10.0.0.2']);
  });

  it('keeps the app’s option validation: an invalid option fails create with its name', async () => {
    @Module({ imports: [ClusterModule.forRoot({ heartbeatIntervalMs: -5 })] })
    class BadApp {}
    await expect(ClusterTestingModule.create({ nodes: 1, imports: [BadApp] })).rejects.toThrow(
      /heartbeatIntervalMs/,
    );
  });

  it('rejects a bad node count, naming the option', async () => {
    await expect(ClusterTestingModule.create({ nodes: 0, imports: [ShopModule] })).rejects.toThrow(
      'nodes must be an integer from 1 to 250 (got 0)',
    );
  });

  it('spawns a node later; it joins and does not take the lead', async () => {
    cluster = await ClusterTestingModule.create({ nodes: 2, imports: [ShopModule] });
    await cluster.converged();
    const late = await cluster.spawn();
    await cluster.converged();
    expect(late.view()).toEqual(['shop@10.0.0.1', 'shop@10.0.0.2', 'shop@10.0.0.3']);
    expect(cluster.leader()?.index).toBe(0);
    expect(() => cluster!.node(5)).toThrow('no node 5 (the cluster has 3: 0 to 2)');
  });

  it('notices a silent crash by missed heartbeats, after the failure timeout', async () => {
    cluster = await ClusterTestingModule.create({
      nodes: 2,
      imports: [ShopModule],
      heartbeatIntervalMs: 500,
      failureTimeoutMs: 2_000,
    });
    await cluster.converged();
    const crashedAt = cluster.time.now;
    cluster.crash(1, { silent: true });
    await cluster.converged();
    const down = cluster.node(0).events.at(-1);
    expect(down).toMatchObject({ type: 'down', reason: 'heartbeat-timeout' });
    expect(cluster.time.now - crashedAt).toBeGreaterThanOrEqual(2_000);
    expect(cluster.time.now - crashedAt).toBeLessThan(3_000);
  });

  it('restarts a crashed node as a new incarnation of the same name, which rejoins as the youngest', async () => {
    cluster = await ClusterTestingModule.create({ nodes: 3, imports: [ShopModule] });
    await cluster.converged();
    const before = cluster.service(0).self.incarnation;
    cluster.crash(0);
    await cluster.converged();
    await expect(cluster.restart(1)).rejects.toThrow('node 1 (shop@10.0.0.2) is running');

    const again = await cluster.restart(0);
    await cluster.converged();
    expect([again.index, again.name, again.host]).toEqual([3, 'shop@10.0.0.1', '10.0.0.1']);
    expect(again.service.self.incarnation).not.toBe(before);
    expect(
      cluster
        .service(2)
        .members()
        .map((m) => m.name),
    ).toEqual(names(cluster).slice(0, 3));
    expect(cluster.leader()?.name).toBe('shop@10.0.0.2');
    expect(cluster.node(2).events.slice(-2)).toMatchObject([
      { type: 'down', member: { name: 'shop@10.0.0.1', incarnation: before } },
      { type: 'join', member: { name: 'shop@10.0.0.1' } },
    ]);
  });
});
