import { Injectable, Module } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { firstValueFrom, take, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { MemberGoneError } from '../../../lib/errors/member-gone.error.js';
import { PayloadError } from '../../../lib/errors/payload.error.js';
import { RemoteHandlerError } from '../../../lib/errors/remote-handler.error.js';
import {
  ClusterHandle,
  ClusterModule,
  ClusterService,
  ClusterSubscribe,
  LeaderOnly,
  type ClusterMessage,
  type ClusterStrategy,
  type StrategyContext,
} from '../../../lib/index.js';

/** A strategy the test drives by hand: it exposes the context the core gave it. */
class HandDrivenStrategy implements ClusterStrategy {
  ctx?: StrategyContext;
  start(ctx: StrategyContext): void {
    this.ctx = ctx;
  }
  stop(): void {}
}

@Injectable()
class Inbox {
  received: ClusterMessage<{ seq: number }>[] = [];
  leaderRuns = 0;

  @ClusterSubscribe('seq')
  onSeq(message: ClusterMessage<{ seq: number }>): void {
    this.received.push(message);
  }

  @ClusterHandle('whoami')
  whoami(payload: { q: string }, from: string): string {
    return `${payload.q} from ${from}`;
  }

  @ClusterHandle('explode')
  explode(): never {
    throw new RangeError('out of range');
  }

  @ClusterHandle('hang')
  hang(): Promise<never> {
    return new Promise(() => undefined);
  }

  @LeaderOnly()
  leaderJob(): boolean {
    this.leaderRuns++;
    return true;
  }
}

@Module({ providers: [Inbox] })
class InboxModule {}

const opened: TestingModule[] = [];

async function node(name: string): Promise<TestingModule> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      ClusterModule.forRoot({
        nodeName: `${name}@127.0.0.1`,
        cookie: 'messaging-cookie',
        bindAddress: '127.0.0.1',
        port: 0,
        heartbeatIntervalMs: 100,
        failureTimeoutMs: 1000,
        strategy: HandDrivenStrategy,
      }),
      InboxModule,
    ],
  }).compile();
  opened.push(moduleRef);
  await moduleRef.init();
  return moduleRef;
}

async function close(moduleRef: TestingModule): Promise<void> {
  opened.splice(opened.indexOf(moduleRef), 1);
  await moduleRef.close();
}

/** Two nodes linked over real TCP links on loopback. */
async function pair(): Promise<[TestingModule, TestingModule]> {
  const a = await node('a');
  const b = await node('b');
  const strategy = a.get<{ strategy: HandDrivenStrategy }[]>('CLUSTER:TOPOLOGIES')[0].strategy;
  const [host, port] = b.get(ClusterService).self.endpoint.split(':');
  strategy.ctx!.connect([{ host: host, port: Number(port) }]);
  await a.get(ClusterService).waitForMembers(2, { timeoutMs: 5_000 });
  await b.get(ClusterService).waitForMembers(2, { timeoutMs: 5_000 });
  return [a, b];
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((m) => m.close()));
});

describe('messaging over real links (two apps in one process)', () => {
  it('publish reaches both nodes in order; request/reply and remote errors work', async () => {
    const [a, b] = await pair();
    const ca = a.get(ClusterService);
    const onB = firstValueFrom(
      b.get(ClusterService).subscribe<{ seq: number }>('seq').pipe(take(1000), toArray()),
    );
    const onA = firstValueFrom(ca.subscribe<{ seq: number }>('seq').pipe(take(1000), toArray()));

    for (let seq = 0; seq < 1000; seq++) {
      expect(ca.publish('seq', { seq }).failed).toEqual([]);
    }
    const expected = Array.from({ length: 1000 }, (_, i) => i);
    expect((await onB).map((m) => m.payload.seq)).toEqual(expected);
    expect((await onA).map((m) => m.payload.seq)).toEqual(expected);
    expect(b.get(Inbox).received).toHaveLength(1000);
    expect(b.get(Inbox).received[0].from).toBe('a@127.0.0.1');

    await expect(ca.request('b@127.0.0.1', 'whoami', { q: 'hello' })).resolves.toBe(
      'hello from a@127.0.0.1',
    );
    const error = await ca.request('b@127.0.0.1', 'explode', {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteHandlerError);
    expect(error).toMatchObject({ remoteName: 'RangeError', remoteMessage: 'out of range' });
    expect(() => ca.publish('seq', { big: 'x'.repeat(2 * 1024 * 1024) })).toThrow(PayloadError);

    // Exactly one of the two apps runs a leader-only job.
    const runs = [a.get(Inbox).leaderJob(), b.get(Inbox).leaderJob()];
    expect(runs.filter((r) => r === true)).toHaveLength(1);
  });

  it('a request pending on a node that shuts down rejects at once with MemberGoneError', async () => {
    const [a, b] = await pair();
    const pending = a
      .get(ClusterService)
      .request('b@127.0.0.1', 'hang', {}, { timeoutMs: 10_000 })
      .catch((e: unknown) => e);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const t0 = performance.now();
    await close(b);
    const error = await pending;
    expect(error).toBeInstanceOf(MemberGoneError);
    expect(performance.now() - t0).toBeLessThan(1_000);
  });
});
