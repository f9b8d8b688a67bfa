import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeKubeApi, type FakeSliceEndpoint } from '../support/fake-kube-api.js';
import {
  pollUntil,
  randomCookie,
  startNode,
  useNodeCleanup,
  type NodeProcess,
} from '../support/node-process.js';
import type { SseCollector } from '../support/sse.js';

/**
 * Three sample-app processes on the Kubernetes strategy, each playing one pod on its own
 * loopback address (127.0.20.1 … 127.0.20.3, one link port), all reaching one local API
 * server stand-in over HTTPS with its own CA and a service-account directory (token, ca.crt,
 * namespace). A fourth process plays a pod the three only learn about from the API: it runs
 * the static strategy with nobody to dial, so it can join only when the others dial it.
 */
const APP = 'myapp';
const PORT = 45993;
const hostOf = (i: number) => `127.0.20.${i}`;
const nameOf = (i: number) => `${APP}@${hostOf(i)}`;
const LABELS = { app: APP, 'kubernetes.io/service-name': APP };
const ALL = [1, 2, 3];
/** The claim: a pod added or removed through a watch event is linked / unlinked within this. */
const WATCH_CLAIM_MS = 1000;

interface EventView {
  type: string;
  member: string;
  reason: string;
}

interface HealthBody {
  status: string;
  details?: { cluster?: { status: string; members?: number; errors?: string[] } };
}

useNodeCleanup();

describe('Kubernetes strategy: pods found through the API server (EndpointSlices + watch)', () => {
  let api: FakeKubeApi;
  const nodes = new Map<number, NodeProcess>();
  const streams = new Map<number, SseCollector>();
  const node = (i: number) => nodes.get(i)!;
  const cookie = randomCookie();
  const endpoints = new Map<number, FakeSliceEndpoint>();

  function publishSlice(): void {
    api.setSlice(`${APP}-x7k2p`, LABELS, [...endpoints.values()]);
  }

  function env(i: number): Record<string, string> {
    return {
      NODE_COOKIE: cookie,
      LIBCLUSTER_STRATEGY: 'Cluster.Strategy.Kubernetes',
      LIBCLUSTER_KUBERNETES_SELECTOR: `app=${APP}`,
      LIBCLUSTER_KUBERNETES_NODE_BASENAME: APP,
      CLUSTER_PORT: String(PORT),
      CLUSTER_BIND_ADDRESS: hostOf(i),
      CLUSTER_HEARTBEAT_INTERVAL_MS: '250',
      CLUSTER_FAILURE_TIMEOUT_MS: '2000',
      ...api.env(),
    };
  }

  async function health(i: number): Promise<{ status: number; body: HealthBody }> {
    return await node(i).http('GET', '/health');
  }

  /** Waits for node `i`'s `/health` to satisfy `predicate`; fails with the last body. */
  async function waitForHealth(
    i: number,
    predicate: (s: number, b: HealthBody) => boolean,
    what: string,
    timeoutMs = 10_000,
  ) {
    let last: { status: number; body: HealthBody } | undefined;
    const ok = await pollUntil(async () => {
      last = await health(i);
      return predicate(last.status, last.body);
    }, timeoutMs);
    if (!ok || !last)
      throw new Error(
        `${nameOf(i)}: no ${what} in /health within ${timeoutMs} ms; last ${JSON.stringify(last)}`,
      );
    return last;
  }

  /** Waits until every API client of the three nodes has a watch open. */
  async function allWatching(timeoutMs = 10_000): Promise<void> {
    const ok = await pollUntil(() => api.openWatches() >= ALL.length, timeoutMs);
    if (!ok)
      throw new Error(
        `only ${api.openWatches()} of ${ALL.length} watches open after ${timeoutMs} ms`,
      );
  }

  /** Time from `since` until node `i` saw `type` of `member`, from its SSE stream. */
  async function eventAfter(
    i: number,
    since: number,
    type: string,
    member: string,
    timeoutMs = 10_000,
  ) {
    const e = await streams
      .get(i)!
      .waitFor<EventView>(
        (ev) => ev.receivedAt >= since && ev.type === type && ev.data.member === member,
        `${type} of ${member} on ${nameOf(i)}`,
        timeoutMs,
      );
    return { ms: e.receivedAt - since, reason: e.data.reason };
  }

  beforeAll(async () => {
    api = await FakeKubeApi.start({ namespace: 'shop' });
    for (const i of ALL) endpoints.set(i, { ip: hostOf(i), ready: true, pod: `${APP}-${i}` });
    publishSlice();
    await Promise.all(
      ALL.map(async (i) => {
        const n = await startNode({ name: nameOf(i), env: env(i) });
        nodes.set(i, n);
        streams.set(i, await n.events());
      }),
    );
  }, 60_000);

  afterAll(async () => {
    for (const s of streams.values()) s.close();
    await api?.close();
  });

  it('three pods form one mesh from one list each, then only watch', async () => {
    const all = ALL.map(nameOf);
    await Promise.all(ALL.map((i) => node(i).waitForMembers(all, 15_000)));
    await allWatching();
    for (const i of ALL) {
      const view = await node(i).cluster();
      expect(view.topologies).toEqual([{ name: 'default', strategy: 'kubernetes', ok: true }]);
      await node(i).waitForOutput(
        /watching EndpointSlices with labels app=myapp in namespace shop at 127\.0\.0\.1:/,
        1000,
      );
    }
    const lists = api.requestsOf('endpointslices', false);
    expect(lists.length).toBe(3);
    for (const r of api.requestsOf('endpointslices')) {
      expect(r.query.get('labelSelector')).toBe('app=myapp');
      expect(r.token).toBe('token-1');
    }
  });

  it('a pod added through a watch event is linked within a second, and unlinked when removed; not-ready is excluded', async () => {
    // Pod 4 exists but cannot find anyone itself.
    const four = await startNode({
      name: nameOf(4),
      env: { ...env(4), LIBCLUSTER_STRATEGY: 'static', LIBCLUSTER_HOSTS: `${hostOf(4)}:${PORT}` },
    });
    nodes.set(4, four);
    streams.set(4, await four.events());

    // Not ready yet: listed in the slice with ready=false — nobody dials it.
    endpoints.set(4, { ip: hostOf(4), ready: false, pod: `${APP}-4` });
    publishSlice();
    await new Promise((r) => setTimeout(r, 1500));
    for (const i of ALL) expect(await node(i).memberNames()).toEqual(ALL.map(nameOf).sort());
    expect(await four.memberNames()).toEqual([nameOf(4)]);

    // Ready: the MODIFIED event reaches the three watches; they dial it.
    const added = Date.now();
    endpoints.set(4, { ip: hostOf(4), ready: true, pod: `${APP}-4` });
    publishSlice();
    const joins = await Promise.all(ALL.map((i) => eventAfter(i, added, 'join', nameOf(4))));
    await four.waitForMembers([...ALL, 4].map(nameOf), 5000);

    // Removed from the slice: the three close their links (leave, reason discovery).
    const removed = Date.now();
    endpoints.delete(4);
    publishSlice();
    const leaves = await Promise.all(ALL.map((i) => eventAfter(i, removed, 'leave', nameOf(4))));
    console.log(
      `kubernetes watch: pod added → linked on ${joins.map((j) => j.ms).join('/')} ms; ` +
        `removed → unlinked on ${leaves.map((l) => l.ms).join('/')} ms (3 nodes)`,
    );
    for (const j of joins) expect(j.ms).toBeLessThan(WATCH_CLAIM_MS);
    for (const l of leaves) {
      expect(l.reason).toBe('discovery');
      expect(l.ms).toBeLessThan(WATCH_CLAIM_MS);
    }
    // Still no polling: three lists in all.
    expect(api.requestsOf('endpointslices', false).length).toBe(3);
  });

  it('410 Gone: every node lists again and gets the change its watch missed; nobody else leaves', async () => {
    await allWatching();
    const since = Date.now();
    const lists = api.requestsOf('endpointslices', false).length;
    api.stall = true; // the change below is never sent on the open watches
    endpoints.set(4, { ip: hostOf(4), ready: true, pod: `${APP}-4` });
    publishSlice();
    api.stall = false;
    api.expireResourceVersions();
    // Pod 4's process runs already and may have dialled in before (a node not discovered
    // yet is accepted inbound), so the outcome is membership, not necessarily a new join.
    await Promise.all(ALL.map((i) => node(i).waitForMembers([...ALL, 4].map(nameOf), 10_000)));
    for (const i of ALL) {
      await node(i).waitForOutput(
        /watch of EndpointSlices expired \(410 Gone\): listing again/,
        2000,
      );
      const lost = streams
        .get(i)!
        .events.filter((e) => e.receivedAt >= since && ['leave', 'down'].includes(e.type));
      expect(lost).toEqual([]);
    }
    expect(api.requestsOf('endpointslices', false).length).toBe(lists + 3);
  });

  it('403: members kept, the Role rule in the log and in /health; healthy again once allowed', async () => {
    await allWatching();
    const since = Date.now();
    api.forbidden.add('list');
    api.forbidden.add('watch');
    api.closeWatches();
    const rule =
      '{ apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["list", "watch"] }';
    try {
      for (const i of ALL) {
        const h = await waitForHealth(
          i,
          (_, b) => (b.details?.cluster?.errors ?? []).some((e) => e.includes('403 Forbidden')),
          '403 error',
        );
        expect(h.status).toBe(503);
        expect(h.body.details!.cluster!.members).toBe(4);
        expect(h.body.details!.cluster!.errors!.join('\n')).toContain(rule);
        const line = await node(i).waitForOutput(
          /Kubernetes discovery failed: not allowed to (list|watch)/,
          2000,
        );
        expect(line).toContain(rule);
        expect(line).toContain('keeping the current members');
      }
      await new Promise((r) => setTimeout(r, 1000));
      for (const i of ALL)
        expect(await node(i).memberNames()).toEqual([...ALL, 4].map(nameOf).sort());
    } finally {
      api.forbidden.clear();
    }
    for (const i of ALL) {
      await waitForHealth(i, (s, b) => s === 200 && b.status === 'ok', 'healthy report', 15_000);
      const lost = streams
        .get(i)!
        .events.filter((e) => e.receivedAt >= since && ['leave', 'down'].includes(e.type));
      expect(lost).toEqual([]);
    }
  });

  it('the token file replaced mid-run (old token revoked) is picked up', async () => {
    await allWatching();
    const at = api.requests.length;
    api.rotateToken('token-2'); // also ends the watches opened with token-1
    await allWatching();
    const since = Date.now();
    endpoints.delete(4);
    publishSlice();
    await Promise.all(ALL.map((i) => eventAfter(i, since, 'leave', nameOf(4))));
    const after = api.requests.slice(at);
    expect(after.length).toBeGreaterThanOrEqual(3);
    expect(after.every((r) => r.token === 'token-2' && r.status === 200)).toBe(true);
  });
});
