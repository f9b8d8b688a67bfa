import { Controller, Injectable, Logger, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Interval, ScheduleModule } from '@nestjs/schedule';
import { Test, type TestingModule } from '@nestjs/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ClusterExplorer } from '../../../lib/cluster.explorer.js';
import { ClusterModule } from '../../../lib/cluster.module.js';
import { ClusterService } from '../../../lib/cluster.service.js';
import { ClusterHandle } from '../../../lib/decorators/cluster-handle.decorator.js';
import { ClusterSubscribe } from '../../../lib/decorators/cluster-subscribe.decorator.js';
import { LeaderOnly } from '../../../lib/decorators/leader-only.decorator.js';
import { OnClusterEvent } from '../../../lib/decorators/on-cluster-event.decorator.js';
import { DuplicateHandlerError } from '../../../lib/errors/duplicate-handler.error.js';
import type { ClusterEvent } from '../../../lib/interfaces/member.interface.js';
import type { ClusterMessage } from '../../../lib/messaging/cluster-message.interface.js';
import { ClusterTestingModule, type TestingCluster } from '../../../lib/testing/index.js';
import { StubClusterService, stubMember } from '../../support/stub-cluster-service.js';

function event(type: 'join' | 'leave' | 'down', name: string): ClusterEvent {
  const member = stubMember(name);
  if (type === 'join') return { type, member, at: Date.now(), reason: 'linked' };
  if (type === 'leave') return { type, member, at: Date.now(), reason: 'shutdown' };
  return { type, member, at: Date.now(), reason: 'heartbeat-timeout' };
}

@Injectable()
class Worker {
  joins: string[] = [];
  gone: string[] = [];
  jobs: ClusterMessage<{ id: number }>[] = [];
  leaderJobs: number[] = [];
  leaderRuns = 0;
  failNextEvent = false;

  @OnClusterEvent('join')
  onJoin(e: ClusterEvent): void {
    if (this.failNextEvent) {
      this.failNextEvent = false;
      throw new Error('event handler failure');
    }
    this.joins.push(e.member.name);
  }

  @OnClusterEvent('leave', 'down')
  onGone(e: ClusterEvent): void {
    this.gone.push(`${e.type}:${e.member.name}`);
  }

  @ClusterSubscribe('jobs')
  onJob(message: ClusterMessage<{ id: number }>): Promise<void> {
    this.jobs.push(message);
    return Promise.resolve();
  }

  @ClusterHandle('sum')
  sum(payload: number[], from: string): { total: number; from: string } {
    return { total: payload.reduce((a, b) => a + b, 0), from };
  }

  @ClusterHandle('fail')
  fail(): never {
    throw new Error('handler refused');
  }

  @LeaderOnly()
  leaderTask(): string {
    this.leaderRuns++;
    return 'ran';
  }

  @LeaderOnly()
  asyncLeaderTask(): Promise<string> {
    this.leaderRuns++;
    return Promise.resolve('ran');
  }

  // Both decorator orders: the subscription must find the wrapper either way.
  @LeaderOnly()
  @ClusterSubscribe('leader-jobs')
  onLeaderJobAbove(message: ClusterMessage<number>): void {
    this.leaderJobs.push(message.payload);
  }

  @ClusterSubscribe('leader-jobs')
  @LeaderOnly()
  onLeaderJobBelow(message: ClusterMessage<number>): void {
    this.leaderJobs.push(message.payload * 100);
  }
}

@Controller('work')
class WorkController {
  joins: string[] = [];
  jobs: number[] = [];

  @OnClusterEvent('join')
  onJoin(e: ClusterEvent): void {
    this.joins.push(e.member.name);
  }

  @ClusterSubscribe('jobs')
  onJob(message: ClusterMessage<{ id: number }>): void {
    this.jobs.push(message.payload.id);
  }
}

/** A base class with a cluster decorator, not itself a provider. */
class SubscribingBase {
  received: number[] = [];

  @ClusterSubscribe('inherited')
  onInherited(message: ClusterMessage<number>): void {
    this.received.push(message.payload);
  }
}

/** A provider whose only cluster decorator is on a method it inherits. */
@Injectable()
class InheritedWorker extends SubscribingBase {
  plain(): string {
    return 'not decorated';
  }
}

async function createApp(
  stub: StubClusterService,
  extraProviders: unknown[] = [],
): Promise<TestingModule> {
  const moduleRef = await Test.createTestingModule({
    imports: [DiscoveryModule],
    controllers: [WorkController],
    providers: [
      ClusterExplorer,
      { provide: ClusterService, useValue: stub },
      Worker,
      ...(extraProviders as []),
    ],
  }).compile();
  await moduleRef.init();
  return moduleRef;
}

describe('cluster decorators', () => {
  const open: TestingModule[] = [];
  async function app(stub: StubClusterService, extra: unknown[] = []): Promise<TestingModule> {
    const moduleRef = await createApp(stub, extra);
    open.push(moduleRef);
    return moduleRef;
  }

  afterEach(async () => {
    for (const moduleRef of open.splice(0)) await moduleRef.close();
    vi.restoreAllMocks();
  });

  it('@OnClusterEvent delivers the matching events to providers and controllers', async () => {
    const stub = new StubClusterService();
    const moduleRef = await app(stub);
    const worker = moduleRef.get(Worker);
    const controller = moduleRef.get(WorkController);

    stub.emitEvent(event('join', 'b@h'));
    stub.emitEvent(event('leave', 'c@h'));
    stub.emitEvent(event('down', 'd@h'));

    expect(worker.joins).toEqual(['b@h']);
    expect(worker.gone).toEqual(['leave:c@h', 'down:d@h']);
    expect(controller.joins).toEqual(['b@h']);
  });

  it('@ClusterSubscribe delivers messages of the topic only', async () => {
    const stub = new StubClusterService();
    const moduleRef = await app(stub);
    const worker = moduleRef.get(Worker);
    const controller = moduleRef.get(WorkController);

    stub.deliver('jobs', { id: 1 }, 'b@h');
    stub.deliver('other', { id: 2 }, 'b@h');
    stub.deliver('jobs', { id: 3 }, 'c@h');

    expect(worker.jobs.map((m) => [m.payload.id, m.from, m.topic])).toEqual([
      [1, 'b@h', 'jobs'],
      [3, 'c@h', 'jobs'],
    ]);
    expect(controller.jobs).toEqual([1, 3]);
  });

  it('a method that throws is logged and does not stop later deliveries', async () => {
    const errors = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const stub = new StubClusterService();
    const worker = (await app(stub)).get(Worker);
    worker.failNextEvent = true;

    stub.emitEvent(event('join', 'b@h'));
    stub.emitEvent(event('join', 'c@h'));

    expect(worker.joins).toEqual(['c@h']);
    expect(
      errors.mock.calls.some((call) =>
        String(call[0]).includes('Worker.onJoin failed: event handler failure'),
      ),
    ).toBe(true);
  });

  it('@LeaderOnly runs the method only while isLeader() is true', async () => {
    const debug = vi.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined);
    const stub = new StubClusterService();
    const worker = (await app(stub)).get(Worker);

    stub.leaderFlag = true;
    expect(worker.leaderTask()).toBe('ran');
    await expect(worker.asyncLeaderTask()).resolves.toBe('ran');
    expect(worker.leaderRuns).toBe(2);

    stub.leaderFlag = false;
    expect(worker.leaderTask()).toBeUndefined();
    expect(worker.asyncLeaderTask()).toBeUndefined();
    expect(worker.leaderRuns).toBe(2);
    expect(
      debug.mock.calls.some((call) => String(call[0]).includes('Worker.leaderTask skipped')),
    ).toBe(true);
  });

  it('@LeaderOnly composes with @ClusterSubscribe in either decorator order', async () => {
    const stub = new StubClusterService();
    const worker = (await app(stub)).get(Worker);

    stub.leaderFlag = false;
    stub.deliver('leader-jobs', 1);
    expect(worker.leaderJobs).toEqual([]);

    stub.leaderFlag = true;
    stub.deliver('leader-jobs', 2);
    expect(worker.leaderJobs.sort((a, b) => a - b)).toEqual([2, 200]);
  });

  it('@LeaderOnly without a wired cluster runs the method and warns once per instance', () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const plain = new Worker();
    expect(plain.leaderTask()).toBe('ran');
    expect(plain.leaderTask()).toBe('ran');
    expect(plain.leaderRuns).toBe(2);
    const lines = warn.mock.calls
      .map((call) => String(call[0]))
      .filter((l) => l.includes('no ClusterService'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('Worker.leaderTask');
    // The hidden flag is a non-enumerable symbol: it does not leak into spreads.
    expect(Object.getOwnPropertySymbols({ ...plain })).toEqual([]);
  });

  it('finds decorated methods a provider inherits from an undecorated-looking subclass', async () => {
    const stub = new StubClusterService();
    const moduleRef = await app(stub, [InheritedWorker]);
    stub.deliver('inherited', 7, 'b@h');
    expect(moduleRef.get(InheritedWorker).received).toEqual([7]);
  });

  it('wires an instance once even when it is also provided under an alias', async () => {
    const stub = new StubClusterService();
    const worker = (await app(stub, [{ provide: 'WORKER_ALIAS', useExisting: Worker }])).get(
      Worker,
    );
    stub.deliver('jobs', { id: 1 });
    expect(worker.jobs).toHaveLength(1);
  });

  it('fails at bootstrap when two methods handle the same topic', async () => {
    @Injectable()
    class SecondSum {
      @ClusterHandle('sum')
      sum(): number {
        return 0;
      }
    }
    await expect(createApp(new StubClusterService(), [SecondSum])).rejects.toBeInstanceOf(
      DuplicateHandlerError,
    );
  });

  it('unsubscribes and unregisters everything on shutdown', async () => {
    const stub = new StubClusterService();
    const moduleRef = await createApp(stub);
    const worker = moduleRef.get(Worker);
    expect(stub.hasObservers()).toBe(true);
    expect(stub.handledTopics().sort()).toEqual(['fail', 'sum']);

    await moduleRef.close();

    expect(stub.hasObservers()).toBe(false);
    expect(stub.handledTopics()).toEqual([]);
    stub.emitEvent(event('join', 'late@h'));
    expect(worker.joins).toEqual([]);
  });

  describe('on an in-memory cluster (nestjs-cluster/testing)', () => {
    @Module({
      imports: [ClusterModule.forRoot({ appName: 'work' })],
      controllers: [WorkController],
      providers: [Worker],
    })
    class WorkModule {}

    let cluster: TestingCluster | undefined;
    afterEach(async () => {
      await cluster?.close();
      cluster = undefined;
      vi.useRealTimers();
    });

    it('@ClusterHandle answers another node with the return value; a throw reaches the caller', async () => {
      cluster = await ClusterTestingModule.create({ nodes: 2, imports: [WorkModule] });
      await cluster.converged();
      const asker = cluster.service(0);
      await expect(cluster.run(asker.request('work@10.0.0.2', 'sum', [1, 2, 3]))).resolves.toEqual({
        total: 6,
        from: 'work@10.0.0.1',
      });
      await expect(cluster.run(asker.request('work@10.0.0.2', 'fail', null))).rejects.toThrow(
        'handler refused',
      );
    });

    it('two applications in one process do not see each other', async () => {
      cluster = await ClusterTestingModule.create({ nodes: 2, imports: [WorkModule] });
      await cluster.converged();
      const [one, two] = cluster.nodes.map((n) => n.get(Worker));

      expect(one.leaderTask()).toBe('ran');
      expect(two.leaderTask()).toBeUndefined();
      expect([one.leaderRuns, two.leaderRuns]).toEqual([1, 0]);
      expect(one.joins).toEqual(['work@10.0.0.2']);
      expect(two.joins).toEqual(['work@10.0.0.1']);

      // A message sent to one node reaches that node's subscribers only.
      cluster.service(0).send('work@10.0.0.2', 'jobs', { id: 7 });
      await cluster.until(() => two.jobs.length === 1);
      expect(one.jobs).toEqual([]);
      expect(two.jobs.map((m) => [m.payload.id, m.from])).toEqual([[7, 'work@10.0.0.1']]);

      // The leader leaves: leadership moves in the other application only.
      await cluster.node(0).close();
      await cluster.converged();
      expect(two.leaderTask()).toBe('ran');
      expect(two.gone).toEqual(['leave:work@10.0.0.1']);
    });

    it('@LeaderOnly composes with @ClusterSubscribe in either order: the leader alone handles', async () => {
      cluster = await ClusterTestingModule.create({ nodes: 3, imports: [WorkModule] });
      await cluster.converged();
      cluster.service(2).publish('leader-jobs', 4);
      const workers = cluster.nodes.map((n) => n.get(Worker));
      await cluster.until(() => workers[0].leaderJobs.length === 2);
      await cluster.advance(100);
      expect(workers.map((w) => w.leaderJobs.sort((a, b) => a - b))).toEqual([[4, 400], [], []]);
    });

    describe('with @nestjs/schedule', () => {
      @Injectable()
      class Ticker {
        above = 0;
        below = 0;

        @LeaderOnly()
        @Interval(10)
        tickAbove(): void {
          this.above++;
        }

        @Interval(10)
        @LeaderOnly()
        tickBelow(): void {
          this.below++;
        }
      }

      @Module({
        imports: [ScheduleModule.forRoot(), ClusterModule.forRoot({})],
        providers: [Ticker],
      })
      class TickerModule {}

      it('skips scheduled jobs on followers and runs them on the leader, whatever the decorator order', async () => {
        vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
        cluster = await ClusterTestingModule.create({ nodes: 2, imports: [TickerModule] });
        await cluster.converged();
        const [leader, follower] = cluster.nodes.map((n) => n.get(Ticker));

        vi.advanceTimersByTime(50);
        expect([leader.above, leader.below]).toEqual([5, 5]);
        expect([follower.above, follower.below]).toEqual([0, 0]);

        // The follower becomes the leader once the leader crashes.
        cluster.crash(0);
        await cluster.converged();
        vi.advanceTimersByTime(30);
        expect([follower.above, follower.below]).toEqual([3, 3]);
      });
    });
  });
});
