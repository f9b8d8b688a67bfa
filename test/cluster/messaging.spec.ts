import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  pollUntil,
  randomCookie,
  startNode,
  useNodeCleanup,
  type ClusterView,
  type HttpErrorBody,
  type NodeProcess,
} from '../support/node-process.js';
import type { SseCollector } from '../support/sse.js';

/**
 * Messaging across three sample-app processes (static strategy, 127.0.0.2 … 127.0.0.4, one
 * link port): pub/sub through `POST /messages`, request/reply through `POST /requests`
 * (`@ClusterHandle()` handlers `echo`, `slow`, `fail`), and the `@LeaderOnly()` job of
 * `GET /jobs` — as a user sees them over HTTP and SSE.
 *
 * Nodes start one after the other, so node 1 is the oldest (the leader) and node 2 the next.
 * The leader test kills node 1; the last test kills node 3 while node 2 waits on it.
 */
const HEARTBEAT_MS = 300;
const FAILURE_TIMEOUT_MS = 1500;
/** The sample app's digest job interval (sample-app/jobs/digest.job.ts). */
const JOB_INTERVAL_MS = 2000;
const INDEXES = [1, 2, 3] as const;
const hostOf = (i: number) => `127.0.0.${i + 1}`;
const nameOf = (i: number) => `app@${hostOf(i)}`;

/** Answer of POST /messages. */
interface PublishAnswer {
  delivered: string[];
  failed: { node: string; reason: string }[];
}

/** Answer of POST /requests: the reply, or an error. */
interface RequestAnswer extends HttpErrorBody {
  reply?: unknown;
  ms?: number;
}

interface ReceivedMessage {
  topic: string;
  payload: unknown;
  from: string;
  at: string | null;
  receivedAt: string;
}

interface JobRun {
  job: string;
  node: string;
  run: number;
  members: number;
  at: string;
}

useNodeCleanup();

describe('messaging between three processes', () => {
  const cookie = randomCookie();
  const nodes = new Map<number, NodeProcess>();
  const node = (i: number) => nodes.get(i)!;
  let linkPort = 0;
  /** When every node showed the full mesh. */
  let meshAt = 0;
  let views: ClusterView[] = [];

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
      CLUSTER_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
      CLUSTER_FAILURE_TIMEOUT_MS: String(FAILURE_TIMEOUT_MS),
    };
  }

  beforeAll(async () => {
    // One port on three addresses; free on 127.0.0.1 means no other test file picked it.
    linkPort = await freePort();
    for (const i of INDEXES) nodes.set(i, await startNode({ name: nameOf(i), env: envFor(i) }));
    const all = INDEXES.map(nameOf);
    views = await Promise.all(INDEXES.map((i) => node(i).waitForMembers(all, 15_000)));
    meshAt = Date.now();
  }, 60_000);

  it('forms one mesh whose leader is the oldest node', () => {
    expect(new Set(views.map((v) => v.leader))).toEqual(new Set([nameOf(1)]));
  });

  describe('pub/sub (POST /messages)', () => {
    const streams = new Map<number, SseCollector>();
    const PER_SENDER = 200;

    beforeAll(async () => {
      for (const i of INDEXES) streams.set(i, await node(i).events('/messages/events'));
    });

    afterAll(() => {
      for (const stream of streams.values()) stream.close();
    });

    it(`${PER_SENDER} messages from each node, concurrently: each arrives exactly once on every node, in order per sender`, async () => {
      const topic = `numbers-${cookie.slice(0, 8)}`;
      const notDelivered: string[] = [];
      // The three senders run concurrently; each publishes its messages one after the other.
      await Promise.all(
        INDEXES.map(async (i) => {
          for (let seq = 0; seq < PER_SENDER; seq++) {
            const { status, body } = await node(i).http<PublishAnswer>('POST', '/messages', {
              topic,
              payload: { sender: nameOf(i), seq },
            });
            expect(status, JSON.stringify(body)).toBe(201);
            const missing = INDEXES.map(nameOf).filter((n) => !body.delivered.includes(n));
            if (missing.length || body.failed.length) {
              notDelivered.push(
                `${nameOf(i)} #${seq}: delivered ${body.delivered.join(',')}, failed ${JSON.stringify(body.failed)}`,
              );
            }
          }
        }),
      );
      expect(notDelivered).toEqual([]);

      const total = PER_SENDER * INDEXES.length;
      const received = (i: number) =>
        streams
          .get(i)!
          .ofType<ReceivedMessage>('message')
          .map((e) => e.data)
          .filter((m) => m.topic === topic);
      const complete = await pollUntil(
        () => INDEXES.every((i) => received(i).length >= total),
        10_000,
      );
      const counts = INDEXES.map((i) => `${nameOf(i)}: ${received(i).length}`).join(', ');
      expect(
        complete,
        `every node should receive ${total} messages within 10 s; got ${counts}`,
      ).toBe(true);
      // Late duplicates would show up here.
      await new Promise((r) => setTimeout(r, 300));

      const expectedSeqs = Array.from({ length: PER_SENDER }, (_, seq) => seq);
      for (const receiver of INDEXES) {
        const messages = received(receiver);
        expect(messages, `${nameOf(receiver)} received`).toHaveLength(total);
        for (const sender of INDEXES) {
          const fromSender = messages.filter((m) => m.from === nameOf(sender));
          for (const m of fromSender)
            expect((m.payload as { sender: string }).sender).toBe(nameOf(sender));
          // Exactly once and in publish order: the sequence numbers, as received, are 0 … 199.
          expect(
            fromSender.map((m) => (m.payload as { seq: number }).seq),
            `messages from ${nameOf(sender)} as received by ${nameOf(receiver)}`,
          ).toEqual(expectedSeqs);
        }
      }
    });
  });

  describe('request/reply (POST /requests)', () => {
    it('echo from node 1 to node 2 is answered by node 2; to itself, by node 1', async () => {
      const remote = await node(1).http<RequestAnswer>('POST', '/requests', {
        node: nameOf(2),
        topic: 'echo',
        payload: { hello: 'world', n: [1, 2, 3] },
      });
      expect(remote.status).toBe(200);
      expect(remote.body.reply).toEqual({ echo: { hello: 'world', n: [1, 2, 3] }, by: nameOf(2) });
      expect(typeof remote.body.ms).toBe('number');

      const local = await node(1).http<RequestAnswer>('POST', '/requests', {
        node: nameOf(1),
        topic: 'echo',
        payload: 'me',
      });
      expect(local.status).toBe(200);
      expect(local.body.reply).toEqual({ echo: 'me', by: nameOf(1) });
    });

    it('a handler slower than the timeout: 504 RequestTimeoutError after the timeout, not the handler', async () => {
      const started = Date.now();
      const { status, body } = await node(1).http<RequestAnswer>('POST', '/requests', {
        node: nameOf(2),
        topic: 'slow',
        payload: { ms: 2000 },
        timeoutMs: 300,
      });
      const elapsed = Date.now() - started;
      expect(status, JSON.stringify(body)).toBe(504);
      expect(body.error).toBe('RequestTimeoutError');
      expect(body.message).toContain('300 ms');
      expect(elapsed).toBeGreaterThanOrEqual(300);
      expect(elapsed).toBeLessThan(1000);
    });

    it('a handler that throws: 502 RemoteHandlerError carrying the remote message', async () => {
      const { status, body } = await node(1).http<RequestAnswer>('POST', '/requests', {
        node: nameOf(3),
        topic: 'fail',
        payload: { message: 'disk quota exceeded on purpose' },
      });
      expect(status, JSON.stringify(body)).toBe(502);
      expect(body.error).toBe('RemoteHandlerError');
      expect(body.message).toContain('disk quota exceeded on purpose');
      expect(body.message).toContain(nameOf(3));
    });

    it('unknown topic: 404 NoHandlerError; unknown node: 503 NotAMemberError; bad body: 400', async () => {
      const noHandler = await node(1).http<RequestAnswer>('POST', '/requests', {
        node: nameOf(2),
        topic: 'nobody-handles-this',
        payload: 1,
      });
      expect(noHandler.status).toBe(404);
      expect(noHandler.body.error).toBe('NoHandlerError');

      const stranger = await node(1).http<RequestAnswer>('POST', '/requests', {
        node: 'app@127.0.0.99',
        topic: 'echo',
        payload: 1,
      });
      expect(stranger.status).toBe(503);
      expect(stranger.body.error).toBe('NotAMemberError');

      const bad = await node(1).http<RequestAnswer>('POST', '/requests', {
        topic: '',
        timeoutMs: -5,
      });
      expect(bad.status).toBe(400);
      const problems = JSON.stringify(bad.body.message);
      expect(problems).toContain('node is required');
      expect(problems).toContain('topic must be a non-empty string');
      expect(problems).toContain('payload is required');
      expect(problems).toContain('timeoutMs must be an integer');
    });
  });

  describe('@LeaderOnly job (GET /jobs)', () => {
    const runsOf = async (i: number) =>
      (await node(i).json<JobRun[]>('/jobs')).filter((r) => r.job === 'digest');
    const runsSince = async (i: number, since: number) =>
      (await runsOf(i)).filter((r) => Date.parse(r.at) >= since);

    it('runs on exactly one of the three nodes, the leader; after kill -9 of the leader, only on the oldest survivor', async () => {
      const leader = nameOf(1);
      // Over a few intervals, every node hears runs, and all of them come from the leader.
      const watchFrom = Date.now();
      const heard = await pollUntil(
        async () =>
          (await Promise.all(INDEXES.map((i) => runsSince(i, watchFrom)))).every(
            (runs) => runs.length >= 2,
          ),
        2 * JOB_INTERVAL_MS + 2000,
      );
      expect(heard, 'every node should hear at least two runs within two intervals').toBe(true);
      const lists = await Promise.all(INDEXES.map((i) => runsSince(i, meshAt)));
      for (const [k, runs] of lists.entries()) {
        expect(
          new Set(runs.map((r) => r.node)),
          `runs heard by ${nameOf(k + 1)} since the mesh formed`,
        ).toEqual(new Set([leader]));
        expect(runs.every((r) => r.members === 3)).toBe(true);
        // One run per interval: consecutive run numbers, none twice.
        const numbers = runs.map((r) => r.run);
        expect(numbers).toEqual(numbers.map((_, n) => numbers[0] + n));
      }

      // The next leader is the oldest survivor, as every node's GET /cluster shows it.
      const view = await node(2).cluster();
      const successor = view.members
        .filter((m) => m.name !== leader)
        .sort(
          (a, b) =>
            Date.parse(a.startedAt) - Date.parse(b.startedAt) || a.name.localeCompare(b.name),
        )[0].name;
      expect(successor).toBe(nameOf(2));

      const killedAt = Date.now();
      node(1).kill('SIGKILL');
      const survivors = [2, 3];
      const takeOver = FAILURE_TIMEOUT_MS + JOB_INTERVAL_MS + 1500;
      const moved = await pollUntil(
        async () =>
          (await Promise.all(survivors.map((i) => runsSince(i, killedAt)))).every(
            (runs) => runs.length >= 1,
          ),
        takeOver,
      );
      const firstRunAt = Date.now();
      expect(moved, `both survivors should hear a run within ${takeOver} ms of the kill`).toBe(
        true,
      );
      expect(firstRunAt - killedAt).toBeLessThan(takeOver);
      for (const i of survivors) expect((await node(i).cluster()).leader).toBe(successor);

      // One more interval: still only the new leader runs it.
      await pollUntil(
        async () =>
          (await Promise.all(survivors.map((i) => runsSince(i, killedAt)))).every(
            (runs) => runs.length >= 2,
          ),
        JOB_INTERVAL_MS + 1500,
      );
      for (const i of survivors) {
        const after = await runsSince(i, killedAt);
        expect(after.length, `runs heard by ${nameOf(i)} after the kill`).toBeGreaterThanOrEqual(2);
        expect(
          new Set(after.map((r) => r.node)),
          `runs heard by ${nameOf(i)} after the kill`,
        ).toEqual(new Set([successor]));
        expect(after.every((r) => r.members === 2)).toBe(true);
      }
    });
  });

  describe('request/reply when the member dies', () => {
    it('a request pending on a node killed with -9 fails at once with 503 MemberGoneError', async () => {
      // Nodes 2 and 3 are left; node 2 asks node 3 for a reply that takes 5 s.
      await node(2).waitForMembers([nameOf(2), nameOf(3)], 5000);
      const answer = node(2)
        .http<RequestAnswer>('POST', '/requests', {
          node: nameOf(3),
          topic: 'slow',
          payload: { ms: 5000 },
          timeoutMs: 5000,
        })
        .then((response) => ({ ...response, at: Date.now() }));
      // Let the request reach node 3.
      await new Promise((r) => setTimeout(r, 300));
      const killedAt = Date.now();
      node(3).kill('SIGKILL');
      const { status, body, at } = await answer;
      expect(status, JSON.stringify(body)).toBe(503);
      expect(body.error).toBe('MemberGoneError');
      expect(body.message).toContain(nameOf(3));
      expect(at - killedAt).toBeLessThan(1500);
    });
  });
});
