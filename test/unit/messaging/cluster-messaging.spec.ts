import { Logger } from '@nestjs/common';
import { firstValueFrom, take, toArray, type Observable } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BackpressureError } from '../../../lib/errors/backpressure.error.js';
import { DuplicateHandlerError } from '../../../lib/errors/duplicate-handler.error.js';
import { MemberGoneError } from '../../../lib/errors/member-gone.error.js';
import { MessagingClosedError } from '../../../lib/errors/messaging-closed.error.js';
import { NoHandlerError } from '../../../lib/errors/no-handler.error.js';
import { NotAMemberError } from '../../../lib/errors/not-a-member.error.js';
import { PayloadError } from '../../../lib/errors/payload.error.js';
import { RemoteHandlerError } from '../../../lib/errors/remote-handler.error.js';
import { RequestTimeoutError } from '../../../lib/errors/request-timeout.error.js';
import type { ClusterMessage } from '../../../lib/messaging/cluster-message.interface.js';
import { ClusterMessaging } from '../../../lib/messaging/cluster-messaging.js';
import { MessagingFrameType } from '../../../lib/messaging/message-codec.js';
import { FakePeerNetwork } from '../../support/fake-peer-channel.js';

/** Resolves with the first `n` values, or rejects with a clear message after `ms`. */
function collect<T>(source: Observable<T>, n: number, ms = 2_000): Promise<T[]> {
  return withDeadline(
    firstValueFrom(source.pipe(take(n), toArray())),
    ms,
    `expected ${n} messages`,
  );
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Lets every frame in flight on the fake network (setImmediate) and local delivery land. */
async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('ClusterMessaging', () => {
  let network: FakePeerNetwork;
  let nodes: Record<'a' | 'b' | 'c', ClusterMessaging>;

  beforeEach(() => {
    network = new FakePeerNetwork();
    nodes = {
      a: new ClusterMessaging(network.add('a')),
      b: new ClusterMessaging(network.add('b')),
      c: new ClusterMessaging(network.add('c')),
    };
  });

  afterEach(() => {
    for (const node of Object.values(nodes)) node.close();
    vi.restoreAllMocks();
  });

  describe('publish', () => {
    it('reaches every subscriber on every node, the publisher included, exactly once', async () => {
      const received: Record<string, ClusterMessage<{ n: number }>[]> = { a: [], b: [], c: [] };
      for (const [name, node] of Object.entries(nodes)) {
        node.subscribe<{ n: number }>('news').subscribe((m) => received[name].push(m));
      }
      const before = Date.now();
      const result = nodes.a.publish('news', { n: 1 });

      expect(result.delivered.sort()).toEqual(['a', 'b', 'c']);
      expect(result.failed).toEqual([]);
      // Local delivery is asynchronous: nothing has arrived when publish() returns.
      expect(received.a).toEqual([]);

      await settle();
      for (const name of ['a', 'b', 'c']) {
        expect(received[name]).toHaveLength(1);
        expect(received[name][0]).toMatchObject({ topic: 'news', payload: { n: 1 }, from: 'a' });
        expect(received[name][0].at).toBeGreaterThanOrEqual(before);
      }
    });

    it('delivers only to subscribers of the topic, and not after unsubscribing', async () => {
      const other: unknown[] = [];
      const news: unknown[] = [];
      nodes.b.subscribe('other').subscribe((m) => other.push(m.payload));
      const sub = nodes.b.subscribe('news').subscribe((m) => news.push(m.payload));
      nodes.a.publish('news', 1);
      await settle();
      sub.unsubscribe();
      nodes.a.publish('news', 2);
      await settle();
      expect(news).toEqual([1]);
      expect(other).toEqual([]);
    });

    it('gives local subscribers a decoded copy, as remote subscribers get', async () => {
      const payload = { when: new Date(0), list: [1, 2], gone: undefined };
      const local = collect(nodes.a.subscribe('copy'), 1);
      nodes.a.publish('copy', payload);
      const [message] = await local;
      expect(message.payload).toEqual({ when: '1970-01-01T00:00:00.000Z', list: [1, 2] });
      expect(message.payload).not.toBe(payload);
    });

    it('with includeSelf: false reaches the other members only', async () => {
      const received: Record<string, unknown[]> = { a: [], b: [], c: [] };
      for (const [name, node] of Object.entries(nodes)) {
        node.subscribe('others').subscribe((m) => received[name].push(m.payload));
      }
      const result = nodes.a.publish('others', 1, { includeSelf: false });
      nodes.a.publish('others', 2);
      expect(result.delivered.sort()).toEqual(['b', 'c']);
      await settle();
      expect(received).toEqual({ a: [2], b: [1, 2], c: [1, 2] });
    });

    it('keeps per-sender order over 1000 messages, locally and remotely', async () => {
      const count = 1000;
      const atC = collect(
        nodes.c.subscribe<{ from: string; seq: number }>('seq'),
        2 * count,
        10_000,
      );
      const atA = collect(
        nodes.a.subscribe<{ from: string; seq: number }>('seq'),
        2 * count,
        10_000,
      );
      for (let seq = 0; seq < count; seq++) {
        nodes.a.publish('seq', { from: 'a', seq });
        nodes.b.publish('seq', { from: 'b', seq });
      }
      for (const messages of [await atC, await atA]) {
        for (const sender of ['a', 'b']) {
          const seqs = messages.filter((m) => m.from === sender).map((m) => m.payload.seq);
          expect(seqs).toEqual(Array.from({ length: count }, (_, i) => i));
        }
      }
    });

    it('reports a member with a full write buffer as failed, and still delivers to the others', async () => {
      const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      const atB: unknown[] = [];
      const atC: unknown[] = [];
      nodes.b.subscribe('load').subscribe((m) => atB.push(m.payload));
      nodes.c.subscribe('load').subscribe((m) => atC.push(m.payload));
      network.channel('a').setBufferFull('b', true);

      const first = nodes.a.publish('load', 1);
      const second = nodes.a.publish('load', 2);

      for (const result of [first, second]) {
        expect(result.delivered.sort()).toEqual(['a', 'c']);
        expect(result.failed).toEqual([{ node: 'b', reason: 'backpressure' }]);
      }
      await settle();
      expect(atC).toEqual([1, 2]);
      expect(atB).toEqual([]);
      // The warning names the slow peer and is rate-limited: one line for two refusals.
      const lines = warn.mock.calls
        .map((call) => String(call[0]))
        .filter((l) => l.includes('write buffer'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain('b');

      network.channel('a').setBufferFull('b', false);
      nodes.a.publish('load', 3);
      await settle();
      expect(atB).toEqual([3]);
    });
  });

  describe('payload checks', () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    const notEncodable: [string, unknown][] = [
      ['a BigInt', 10n],
      ['a nested BigInt', { big: 10n }],
      ['a cycle', cycle],
      ['a function', () => 1],
      ['a symbol', Symbol('s')],
      ['undefined', undefined],
    ];

    it.each(notEncodable)(
      'refuses %s at the call, before anything reaches a link',
      async (_, payload) => {
        nodes.b.handle('t', () => 'ok');
        expect(() => nodes.a.publish('t', payload)).toThrow(PayloadError);
        expect(() => nodes.a.send('b', 't', payload)).toThrow(PayloadError);
        await expect(nodes.a.request('b', 't', payload)).rejects.toMatchObject({
          name: 'PayloadError',
          reason: 'not-encodable',
          topic: 't',
        });
        expect(network.sent).toEqual([]);
      },
    );

    it('refuses a payload larger than maxPayloadBytes at the call', async () => {
      const small = new ClusterMessaging(network.add('small'), { maxPayloadBytes: 1000 });
      try {
        const big = 'x'.repeat(2000);
        let thrown: unknown;
        try {
          small.publish('big', big);
        } catch (error) {
          thrown = error;
        }
        expect(thrown).toBeInstanceOf(PayloadError);
        expect(thrown).toMatchObject({
          reason: 'too-large',
          bytes: 2002,
          limitBytes: 1000,
          topic: 'big',
        });
        expect((thrown as Error).message).toContain('maxPayloadBytes');
        expect(() => small.send('a', 'big', big)).toThrow(PayloadError);
        await expect(small.request('a', 'big', big)).rejects.toBeInstanceOf(PayloadError);
        expect(network.sent).toEqual([]);
        // Just under the limit passes.
        expect(small.publish('big', 'x'.repeat(998)).delivered).toContain('a');
      } finally {
        small.close();
      }
    });

    it('uses a 1 MiB default limit', () => {
      expect(() => nodes.a.publish('big', 'x'.repeat(1024 * 1024))).toThrow(PayloadError);
      expect(() => nodes.a.publish('big', 'x'.repeat(1024 * 1024 - 2))).not.toThrow();
    });

    it('refuses an empty topic', () => {
      expect(() => nodes.a.publish('', 1)).toThrow(PayloadError);
    });
  });

  describe('send', () => {
    it('reaches the subscribers of one member only', async () => {
      const got: Record<string, unknown[]> = { a: [], b: [], c: [] };
      for (const [name, node] of Object.entries(nodes)) {
        node.subscribe('direct').subscribe((m) => got[name].push([m.from, m.payload]));
      }
      nodes.a.send('b', 'direct', 'hi b');
      nodes.a.send('a', 'direct', 'hi me');
      await settle();
      expect(got).toEqual({ a: [['a', 'hi me']], b: [['a', 'hi b']], c: [] });
    });

    it('throws NotAMemberError for an unknown node and BackpressureError on a full buffer', () => {
      expect(() => nodes.a.send('zed', 'direct', 1)).toThrow(NotAMemberError);
      network.channel('a').setBufferFull('c', true);
      expect(() => nodes.a.send('c', 'direct', 1)).toThrow(BackpressureError);
    });
  });

  describe('request / reply', () => {
    it('resolves with the remote handler reply and tells the handler who asked', async () => {
      nodes.b.handle<{ x: number }, { doubled: number; asker: string }>('double', (p, from) =>
        Promise.resolve({
          doubled: p.x * 2,
          asker: from,
        }),
      );
      await expect(nodes.a.request('b', 'double', { x: 21 })).resolves.toEqual({
        doubled: 42,
        asker: 'a',
      });
    });

    it('answers a request to self through the local handler', async () => {
      nodes.a.handle<number, number>('inc', (n) => n + 1);
      await expect(nodes.a.request('a', 'inc', 1)).resolves.toBe(2);
    });

    it('resolves undefined when the handler returns nothing', async () => {
      nodes.b.handle('void', () => undefined);
      await expect(nodes.a.request('b', 'void', {})).resolves.toBeUndefined();
    });

    it('matches concurrent replies to their requests', async () => {
      nodes.b.handle<number, number>(
        'slow-echo',
        (n) => new Promise((r) => setTimeout(() => r(n), 50 - n)),
      );
      const replies = await Promise.all(
        Array.from({ length: 20 }, (_, n) => nodes.a.request('b', 'slow-echo', n)),
      );
      expect(replies).toEqual(Array.from({ length: 20 }, (_, n) => n));
    });

    it('rejects with RequestTimeoutError naming node, topic and timeout', async () => {
      nodes.b.handle('never', () => new Promise(() => undefined));
      const started = Date.now();
      const error = await nodes.a
        .request('b', 'never', 1, { timeoutMs: 100 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RequestTimeoutError);
      expect(error).toMatchObject({ node: 'b', topic: 'never', timeoutMs: 100, retryable: true });
      expect(Date.now() - started).toBeGreaterThanOrEqual(95);
    });

    it('uses defaultRequestTimeoutMs when the call sets none', async () => {
      const quick = new ClusterMessaging(network.add('quick'), { defaultRequestTimeoutMs: 50 });
      try {
        nodes.b.handle('never', () => new Promise(() => undefined));
        await expect(quick.request('b', 'never', 1)).rejects.toMatchObject({ timeoutMs: 50 });
      } finally {
        quick.close();
      }
    });

    it('rejects with RemoteHandlerError carrying the remote message when the handler throws', async () => {
      nodes.b.handle('boom', () => {
        throw new TypeError('bad input');
      });
      nodes.c.handle('reject', async () => Promise.reject(new Error('async failure')));
      const error = await nodes.a.request('b', 'boom', 1).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RemoteHandlerError);
      expect(error).toMatchObject({
        node: 'b',
        topic: 'boom',
        remoteName: 'TypeError',
        remoteMessage: 'bad input',
      });
      expect((error as Error).message).toContain('bad input');
      await expect(nodes.a.request('c', 'reject', 1)).rejects.toMatchObject({
        remoteMessage: 'async failure',
      });
      // Same behaviour for a local handler.
      nodes.a.handle('boom', () => {
        throw new Error('local failure');
      });
      await expect(nodes.a.request('a', 'boom', 1)).rejects.toMatchObject({
        name: 'RemoteHandlerError',
        remoteMessage: 'local failure',
      });
    });

    it('rejects with RemoteHandlerError when the reply cannot be encoded', async () => {
      nodes.b.handle('bigint', () => 1n);
      await expect(nodes.a.request('b', 'bigint', 1)).rejects.toMatchObject({
        name: 'RemoteHandlerError',
        remoteName: 'PayloadError',
      });
    });

    it('rejects with NoHandlerError when the member has no handler for the topic', async () => {
      const error = await nodes.a.request('b', 'nobody', 1).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NoHandlerError);
      expect(error).toMatchObject({ node: 'b', topic: 'nobody' });
      await expect(nodes.a.request('a', 'nobody', 1)).rejects.toBeInstanceOf(NoHandlerError);
    });

    it('rejects at once, not at its timeout, when the member goes down mid-request', async () => {
      let handlerStarted!: () => void;
      const started = new Promise<void>((resolve) => (handlerStarted = resolve));
      nodes.b.handle('hang', () => {
        handlerStarted();
        return new Promise(() => undefined);
      });
      const pending = nodes.a
        .request('b', 'hang', 1, { timeoutMs: 5_000 })
        .catch((e: unknown) => e);
      await withDeadline(started, 2_000, 'handler on b to start');

      const removedAt = performance.now();
      network.remove('b');
      const error = await pending;
      const elapsed = performance.now() - removedAt;

      expect(error).toBeInstanceOf(MemberGoneError);
      expect(error).toMatchObject({ node: 'b', topic: 'hang', retryable: true });
      expect(elapsed).toBeLessThan(50);
    });

    it('rejects with NotAMemberError for a node that is not a member', async () => {
      await expect(nodes.a.request('zed', 't', 1)).rejects.toBeInstanceOf(NotAMemberError);
    });

    it('rejects with BackpressureError when the link buffer is full', async () => {
      nodes.b.handle('t', () => 1);
      network.channel('a').setBufferFull('b', true);
      await expect(nodes.a.request('b', 't', 1)).rejects.toBeInstanceOf(BackpressureError);
    });

    it('allows one handler per topic until it is unregistered', async () => {
      const off = nodes.b.handle('once', () => 'first');
      expect(() => nodes.b.handle('once', () => 'second')).toThrow(DuplicateHandlerError);
      off();
      nodes.b.handle('once', () => 'second');
      await expect(nodes.a.request('b', 'once', 1)).resolves.toBe('second');
    });
  });

  describe('malformed frames', () => {
    it('are dropped and logged, never thrown, and later frames still work', async () => {
      const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      const received: unknown[] = [];
      nodes.b.subscribe('ok').subscribe((m) => received.push(m.payload));
      const channel = network.channel('b');
      const garbage = [
        Buffer.alloc(0),
        Buffer.from([0xff]),
        Buffer.from([0x00, 0x10, 0x61]),
        Buffer.from([0x00, 0x00, 0x00, 0x00, 0x00, 0x00]),
        Buffer.concat([
          Buffer.from([0x00, 0x02]),
          Buffer.from('ok'),
          Buffer.alloc(8),
          Buffer.from('{not json'),
        ]),
        Buffer.concat([Buffer.from([0x00, 0x00, 0x00, 0x07, 0x02]), Buffer.from('[1,')]),
      ];
      for (const type of Object.values(MessagingFrameType)) {
        for (const frame of garbage) {
          expect(() => channel.receive('a', type, frame)).not.toThrow();
        }
      }
      expect(
        warn.mock.calls.some((call) => String(call[0]).includes('dropped a messaging frame')),
      ).toBe(true);

      nodes.a.publish('ok', 'still working');
      await settle();
      expect(received).toEqual(['still working']);
    });

    it('ignores replies for unknown requests and replies from the wrong node', async () => {
      nodes.b.handle(
        'slow',
        () => new Promise((resolve) => setTimeout(() => resolve('from b'), 30)),
      );
      const reply = nodes.a.request('b', 'slow', 1);
      const requestFrame = network.sent.find((f) => f.type === MessagingFrameType.REQUEST)!;
      const id = requestFrame.payload.readUInt32BE(0);
      const forged = Buffer.concat([Buffer.alloc(4), Buffer.from('"forged"')]);
      forged.writeUInt32BE(id, 0);
      network.channel('a').receive('c', MessagingFrameType.REPLY, forged);
      forged.writeUInt32BE(id + 1000, 0);
      network.channel('a').receive('b', MessagingFrameType.REPLY, forged);
      await expect(reply).resolves.toBe('from b');
    });
  });

  describe('close', () => {
    it('rejects pending requests, completes subscriptions and refuses further use', async () => {
      nodes.b.handle('hang', () => new Promise(() => undefined));
      const pending = nodes.a.request('b', 'hang', 1).catch((e: unknown) => e);
      let completed = false;
      nodes.a.subscribe('t').subscribe({ complete: () => (completed = true) });

      nodes.a.close();

      expect(await pending).toBeInstanceOf(MessagingClosedError);
      expect(completed).toBe(true);
      expect(network.channel('a').handlerCount()).toBe(0);
      expect(() => nodes.a.publish('t', 1)).toThrow(MessagingClosedError);
      await expect(nodes.a.request('b', 'hang', 1)).rejects.toBeInstanceOf(MessagingClosedError);
      let lateCompleted = false;
      nodes.a.subscribe('t').subscribe({ complete: () => (lateCompleted = true) });
      expect(lateCompleted).toBe(true);
      expect(() => nodes.a.close()).not.toThrow();
    });
  });
});
