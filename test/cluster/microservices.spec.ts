import { beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  pollUntil,
  randomCookie,
  startNode,
  useNodeCleanup,
  type HttpErrorBody,
  type NodeProcess,
} from '../support/node-process.js';

/** Answer of GET /rpc/sum: the sum and the member that computed it, or an error. */
interface SumAnswer extends HttpErrorBody {
  sum: number;
  node: string;
}

/** Answer of POST /rpc/send: the values the handler emitted, or an error. */
interface SendAnswer extends HttpErrorBody {
  responses?: { node: string }[];
}

/**
 * The `@nestjs/microservices` transport across three sample-app processes (static strategy,
 * 127.0.0.2 … 127.0.0.4): `ClientProxy.send()` through `GET /rpc/sum` and `POST /rpc/send`
 * is answered by `@MessagePattern()` handlers spread over the members; `emit()` through
 * `POST /rpc/events` reaches every member's `@EventPattern()` once; handler errors, unknown
 * patterns, timeouts, oversized and bad payloads give the caller a clear error; a member
 * killed mid-call fails the call at once. The last test kills node 3.
 */
const INDEXES = [1, 2, 3] as const;
const hostOf = (i: number) => `127.0.0.${i + 1}`;
const nameOf = (i: number) => `app@${hostOf(i)}`;
const RPC_TIMEOUT_MS = 1500;

useNodeCleanup();

describe('@nestjs/microservices over the cluster, three processes', () => {
  const cookie = randomCookie();
  const nodes = new Map<number, NodeProcess>();
  const node = (i: number) => nodes.get(i)!;
  let linkPort = 0;

  function envFor(i: number): Record<string, string> {
    return {
      NODE_COOKIE: cookie,
      NODE_NAME: nameOf(i),
      LIBCLUSTER_STRATEGY: 'static',
      LIBCLUSTER_HOSTS: INDEXES.map((n) => `${hostOf(n)}:${linkPort}`).join(','),
      LIBCLUSTER_POLLING_INTERVAL: '500',
      CLUSTER_PORT: String(linkPort),
      CLUSTER_BIND_ADDRESS: hostOf(i),
      CLUSTER_ADVERTISE_ADDRESS: hostOf(i),
      CLUSTER_HEARTBEAT_INTERVAL_MS: '300',
      CLUSTER_FAILURE_TIMEOUT_MS: '1500',
      RPC_TIMEOUT_MS: String(RPC_TIMEOUT_MS),
    };
  }

  beforeAll(async () => {
    linkPort = await freePort();
    await Promise.all(
      INDEXES.map(async (i) => nodes.set(i, await startNode({ name: nameOf(i), env: envFor(i) }))),
    );
    await Promise.all(INDEXES.map((i) => node(i).waitForMembers(INDEXES.map(nameOf), 15_000)));
  }, 90_000);

  it('GET /rpc/sum on every node is answered, and 30 calls from one node are spread over all three members', async () => {
    for (const i of INDEXES) {
      const { status, body } = await node(i).http<SumAnswer>('GET', '/rpc/sum?a=1&b=2');
      expect(status, JSON.stringify(body)).toBe(200);
      expect(body.sum).toBe(3);
      expect(INDEXES.map(nameOf)).toContain(body.node);
    }
    const counts = new Map<string, number>();
    for (let k = 0; k < 30; k++) {
      const { status, body } = await node(1).http<SumAnswer>('GET', `/rpc/sum?a=${k}&b=0.5`);
      expect(status, JSON.stringify(body)).toBe(200);
      expect(body.sum).toBe(k + 0.5);
      counts.set(body.node, (counts.get(body.node) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(INDEXES.map(nameOf).sort());
    for (const [name, count] of counts) expect(count, `calls answered by ${name}`).toBe(10);
  });

  it('GET /rpc/sum with bad query: 400; a handler that throws RpcException: the caller gets its error', async () => {
    const bad = await node(1).http<SumAnswer>('GET', '/rpc/sum?a=x');
    expect(bad.status).toBe(400);
    expect(bad.body.message).toEqual(['a must be a number', 'b must be a number']);

    const failed = await node(2).http<SendAnswer>('POST', '/rpc/send', {
      pattern: 'fail',
      data: { message: 'quota exceeded on purpose' },
    });
    expect(failed.status, JSON.stringify(failed.body)).toBe(502);
    // What Nest's built-in transports deliver for RpcException('…'): { status: 'error', message }.
    expect(failed.body).toEqual({
      error: 'RpcException',
      remote: { status: 'error', message: 'quota exceeded on purpose' },
    });

    const sumRejects = await node(2).http<SendAnswer>('POST', '/rpc/send', {
      pattern: 'sum',
      data: { a: 'one' },
    });
    expect(sumRejects.status).toBe(502);
    expect(sumRejects.body.remote).toEqual({
      status: 'error',
      message: 'sum: a and b must be finite numbers',
    });
  });

  it('a pattern nobody handles: 404 NoPatternHandlerError at once', async () => {
    const started = Date.now();
    const { status, body } = await node(1).http<SendAnswer>('POST', '/rpc/send', {
      pattern: 'nobody-handles-this',
      data: 1,
    });
    expect(status, JSON.stringify(body)).toBe(404);
    expect(body.error).toBe('NoPatternHandlerError');
    expect(body.message).toContain('"nobody-handles-this"');
    expect(Date.now() - started).toBeLessThan(RPC_TIMEOUT_MS);
  });

  it('a handler that never answers: 504 RequestTimeoutError naming the pattern after the client timeout', async () => {
    const started = Date.now();
    const { status, body } = await node(1).http<SendAnswer>('POST', '/rpc/send', {
      pattern: 'never',
      data: {},
    });
    expect(status, JSON.stringify(body)).toBe(504);
    expect(body.error).toBe('RequestTimeoutError');
    expect(body.message).toContain('"never"');
    expect(body.message).toContain(`${RPC_TIMEOUT_MS} ms`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(RPC_TIMEOUT_MS);
  });

  it('a 10 MB body is refused with 413 (the transport limit itself is tested in test/e2e); the nodes keep answering', async () => {
    const huge = await node(1).http<SendAnswer>('POST', '/rpc/send', {
      pattern: 'sum',
      data: 'x'.repeat(10 * 1024 * 1024),
    });
    expect(huge.status).toBe(413);
    for (const i of INDEXES) {
      const ok = await node(i).http<SumAnswer>('GET', '/rpc/sum?a=2&b=2');
      expect(ok.status).toBe(200);
      expect(ok.body.sum).toBe(4);
    }
  });

  it('emit reaches the @EventPattern handler of every member exactly once', async () => {
    const tag = `evt-${Date.now()}`;
    const COUNT = 20;
    for (let k = 0; k < COUNT; k++) {
      const { status } = await node(2).http('POST', '/rpc/events', { payload: { tag, k } });
      expect(status).toBe(202);
    }
    const mine = async (i: number) =>
      (
        await node(i).json<{ payload: { tag?: string; k: number }; from: string }[]>('/rpc/events')
      ).filter((e) => e.payload?.tag === tag);
    const all = await pollUntil(
      async () => (await Promise.all(INDEXES.map(mine))).every((l) => l.length >= COUNT),
      5_000,
    );
    expect(all).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    for (const i of INDEXES) {
      const events = await mine(i);
      expect(
        events.map((e) => e.payload.k),
        nameOf(i),
      ).toEqual(Array.from({ length: COUNT }, (_, k) => k));
      for (const e of events) expect(e.from).toBe(nameOf(2));
    }
  });

  it('a member killed while it handles a request: the call fails at once with 503 MemberGoneError, and calls go on over the others', async () => {
    // Round-robin: find a call that lands on node 3 by asking "slow" until node 3 is picked.
    let pending: Promise<{ status: number; body: SendAnswer; at: number }> | undefined;
    for (let k = 0; k < 6 && !pending; k++) {
      const probe = await node(1).http<SendAnswer>('POST', '/rpc/send', {
        pattern: 'slow',
        data: { ms: 0 },
      });
      expect(probe.status).toBe(200);
      // The next call goes to the member after this one in name order.
      const answered = probe.body.responses![0].node;
      if (answered === nameOf(2)) {
        pending = node(1)
          .http<SendAnswer>('POST', '/rpc/send', { pattern: 'slow', data: { ms: 5_000 } })
          .then((r) => ({ ...r, at: Date.now() }));
      }
    }
    expect(pending, 'node 3 should be next in the rotation at some point').toBeDefined();
    await new Promise((r) => setTimeout(r, 300));
    const killedAt = Date.now();
    node(3).kill('SIGKILL');
    const { status, body, at } = await pending!;
    expect(status, JSON.stringify(body)).toBe(503);
    expect(body.error).toBe('MemberGoneError');
    // Down, or unreachable for a moment when node 1's link fails before node 2's: a race.
    expect([
      `${nameOf(3)} left the cluster before replying to "slow"`,
      `the link to ${nameOf(3)} went down before it replied to "slow" (other members still reach it)`,
    ]).toContain(body.message);
    expect(at - killedAt).toBeLessThan(1_000);

    await node(1).waitForMembers([nameOf(1), nameOf(2)], 5_000);
    const seen = new Set<string>();
    for (let k = 0; k < 6; k++) {
      const { status: s, body: b } = await node(1).http<SumAnswer>('GET', '/rpc/sum?a=1&b=1');
      expect(s, JSON.stringify(b)).toBe(200);
      seen.add(b.node);
    }
    expect([...seen].sort()).toEqual([nameOf(1), nameOf(2)]);
  });
});
