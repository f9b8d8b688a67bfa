import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  pollUntil,
  startNode,
  useNodeCleanup,
  type NodeProcess,
  type PublishAnswer,
} from '../support/node-process.js';
import type { SseCollector } from '../support/sse.js';
import { TamperProxy, type Fault } from '../support/tamper-proxy.js';

/**
 * Sealed records under attack: node A reaches node B only through a proxy that flips a byte of
 * a record, replays one, drops one or cuts the stream inside one. B closes that link with one
 * `integrity failure from <A> (<address>)` line, keeps serving (HTTP, and its link to a third
 * node C stays up), and A's reconnect logic brings the link back through the proxy.
 */
const PORT = 45893;
const A = { name: 'a@127.0.0.2', host: '127.0.0.2' };
const B = { name: 'b@127.0.0.3', host: '127.0.0.3' };
const C = { name: 'c@127.0.0.5', host: '127.0.0.5' };
const PROXY_HOST = '127.0.0.4';
const COOKIE = 'sealed-links-test-cookie';

function envFor(node: { name: string; host: string }, hosts: string): Record<string, string> {
  return {
    NODE_COOKIE: COOKIE,
    NODE_NAME: node.name,
    LIBCLUSTER_STRATEGY: 'static',
    LIBCLUSTER_HOSTS: hosts,
    LIBCLUSTER_POLLING_INTERVAL: '500',
    CLUSTER_BIND_ADDRESS: node.host,
    CLUSTER_PORT: String(PORT),
    CLUSTER_HEARTBEAT_INTERVAL_MS: '250',
    CLUSTER_FAILURE_TIMEOUT_MS: '2000',
  };
}

interface EventView {
  type: string;
  member: string;
  reason: string;
}

useNodeCleanup();

describe('sealed links: a record damaged on the path closes the link, which comes back', () => {
  let a: NodeProcess;
  let b: NodeProcess;
  let c: NodeProcess;
  let proxy: TamperProxy;
  let eventsAtB: SseCollector;
  const integrityLine = /integrity failure from a@127\.0\.0\.2 \(127\.0\.0\.4:\d+\)/;

  beforeAll(async () => {
    proxy = await TamperProxy.start(PROXY_HOST, PORT, { host: B.host, port: PORT });
    // B only listens; A knows B only as the proxy's address; C links to B directly.
    // B is advertised as the proxy's address, so A reaches it through the proxy however it
    // learns about B (discovery or membership).
    b = await startNode({
      name: B.name,
      env: { ...envFor(B, `${B.host}:${PORT}`), CLUSTER_ADVERTISE_ADDRESS: PROXY_HOST },
    });
    c = await startNode({ name: C.name, env: envFor(C, `${B.host}:${PORT}`) });
    a = await startNode({ name: A.name, env: envFor(A, `${PROXY_HOST}:${PORT}`) });
    await Promise.all([b, a].map((n) => n.waitForMembers([A.name, B.name, C.name], 30_000)));
    eventsAtB = await b.events();
  }, 90_000);

  afterAll(async () => {
    eventsAtB?.close();
    await proxy?.close();
  });

  /** A publishes (POST /messages) until `done()` or the deadline; returns what B received last. */
  async function publishUntil(done: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    let seq = 0;
    while (Date.now() < deadline) {
      if (done()) return true;
      await a.http<PublishAnswer>('POST', '/messages', {
        topic: 'sealed',
        payload: { seq: seq++ },
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return done();
  }

  async function deliveredToB(): Promise<boolean> {
    const { status, body } = await a.http<PublishAnswer>('POST', '/messages', {
      topic: 'sealed',
      payload: { probe: true },
    });
    return status === 201 && body.delivered.includes(B.name);
  }

  for (const fault of ['flip', 'replay', 'drop', 'truncate'] as Fault[]) {
    it(`${fault}: one integrity line at B naming A, B keeps serving, the link comes back`, async () => {
      const linesBefore = b.lines(integrityLine).length;
      const connectionsBefore = proxy.connections;
      const cDownsBefore = eventsAtB
        .ofType<EventView>('down')
        .filter((e) => e.data.member === C.name);

      proxy.arm(fault, A.name);
      const detected = await publishUntil(
        () => b.lines(integrityLine).length > linesBefore,
        15_000,
      );
      expect(detected, `no integrity line at B after ${fault}\n${b.tail()}`).toBe(true);
      expect(proxy.applied.at(-1)).toBe(fault);
      const line = b.lines(integrityLine)[linesBefore];
      expect(line).toContain(
        fault === 'truncate' ? 'the stream ended inside record' : 'failed authentication',
      );

      // B keeps serving: its HTTP API answers and it still has its direct link to C.
      const view = await b.cluster();
      expect(view.self.name).toBe(B.name);
      expect(view.members.map((m) => m.name)).toContain(C.name);

      // A dials again through the proxy and messages from A reach B once more.
      const back = await pollUntil(
        async () => proxy.connections > connectionsBefore && (await deliveredToB()),
        20_000,
      );
      expect(back, `link A→B did not come back after ${fault}\n${a.tail()}`).toBe(true);
      await b.waitForMembers([A.name, B.name, C.name], 20_000);

      // Exactly one line for the one damaged record; the link to C never went down.
      expect(b.lines(integrityLine).length).toBe(linesBefore + 1);
      const cDowns = eventsAtB.ofType<EventView>('down').filter((e) => e.data.member === C.name);
      expect(cDowns.length).toBe(cDownsBefore.length);
      expect(b.running && a.running && c.running).toBe(true);
    }, 60_000);
  }
});
