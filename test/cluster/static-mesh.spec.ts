import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNode, useNodeCleanup, type NodeProcess } from '../support/node-process.js';
import type { SseCollector } from '../support/sse.js';

/**
 * Five sample-app processes on the static strategy, each on its own loopback address
 * (127.0.0.2 … 127.0.0.6, all on the default link port): a full mesh, then crash, freeze,
 * stall, restart, graceful leave and a wrong cookie — as a user sees them over HTTP and SSE.
 */
const HEARTBEAT_MS = 500;
const FAILURE_TIMEOUT_MS = 4000;
const PORT = 45893;
const hostOf = (i: number) => `127.0.0.${i + 1}`;
const nameOf = (i: number) => `app@${hostOf(i)}`;
const HOSTS = [1, 2, 3, 4, 5].map((i) => `${hostOf(i)}:${PORT}`).join(',');

interface EventView {
  type: string;
  member: string;
  incarnation: string;
  reason: string;
  at: string;
}

function envFor(i: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_COOKIE: 'static-mesh-cookie',
    NODE_NAME: nameOf(i),
    LIBCLUSTER_STRATEGY: 'Cluster.Strategy.Epmd',
    LIBCLUSTER_HOSTS: HOSTS,
    LIBCLUSTER_POLLING_INTERVAL: '1000',
    CLUSTER_BIND_ADDRESS: hostOf(i),
    CLUSTER_PORT: String(PORT),
    CLUSTER_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
    CLUSTER_FAILURE_TIMEOUT_MS: String(FAILURE_TIMEOUT_MS),
    ...extra,
  };
}

useNodeCleanup();

describe('static strategy: five processes, one full mesh', () => {
  const nodes = new Map<number, NodeProcess>();
  const streams = new Map<number, SseCollector>();
  const node = (i: number) => nodes.get(i)!;

  async function start(i: number, extra?: Record<string, string>): Promise<NodeProcess> {
    const n = await startNode({ name: nameOf(i), env: envFor(i, extra) });
    nodes.set(i, n);
    streams.set(i, await n.events());
    return n;
  }

  /** Membership events of `type` about `member` seen by node `i` since `since`. */
  const eventsAbout = (i: number, type: string, member: string, since = 0) =>
    streams
      .get(i)!
      .ofType<EventView>(type)
      .filter((e) => e.data.member === member && e.receivedAt >= since);

  const waitEvent = (i: number, type: string, member: string, since: number, timeoutMs: number) =>
    streams
      .get(i)!
      .waitFor<EventView>(
        (e) => e.type === type && e.data.member === member && e.receivedAt >= since,
        `${type} of ${member} on ${nameOf(i)}`,
        timeoutMs,
      );

  const allDowns = (since: number) =>
    [...streams.entries()].flatMap(([i, s]) =>
      s
        .ofType<EventView>('down')
        .filter((e) => e.receivedAt >= since)
        .map((e) => `${nameOf(i)} saw ${e.data.member} down (${e.data.reason})`),
    );

  beforeAll(async () => {
    await Promise.all([1, 2, 3, 4, 5].map((i) => start(i)));
  }, 60_000);

  afterAll(() => {
    for (const s of streams.values()) s.close();
  });

  it('forms a full mesh with one leader, the same on every node', async () => {
    const all = [1, 2, 3, 4, 5].map(nameOf);
    const views = await Promise.all(
      [1, 2, 3, 4, 5].map((i) => node(i).waitForMembers(all, 15_000)),
    );
    const leaders = new Set(views.map((v) => v.leader));
    expect(leaders.size).toBe(1);
    // The leader is the oldest member.
    const oldest = [...views[0].members].sort(
      (a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt) || a.name.localeCompare(b.name),
    )[0];
    expect(views[0].leader).toBe(oldest.name);
    for (const v of views) {
      expect(v.mode).toBe('cluster');
      expect(v.members.filter((m) => m.self)).toHaveLength(1);
    }
  });

  it('a node blocking its event loop for 2 s causes no down anywhere', async () => {
    const since = Date.now();
    const res = await node(2).http('POST', '/debug/stall', { ms: 2000 });
    expect(res.status).toBe(201);
    // Wait out a whole failure timeout after the stall, then look.
    await new Promise((r) => setTimeout(r, FAILURE_TIMEOUT_MS + 1000));
    expect(allDowns(since)).toEqual([]);
    await Promise.all([1, 2, 3, 4, 5].map((i) => node(i).waitForMembers(5, 1000)));
  });

  it('SIGSTOP: the other four see it down within the failure timeout; SIGCONT: it rejoins', async () => {
    const frozen = nameOf(3);
    const stoppedAt = Date.now();
    node(3).stop();
    const downs = await Promise.all(
      [1, 2, 4, 5].map((i) => waitEvent(i, 'down', frozen, stoppedAt, FAILURE_TIMEOUT_MS + 3000)),
    );
    for (const d of downs) {
      expect(d.data.reason).toBe('heartbeat-timeout');
      // Detected within the failure timeout plus one heartbeat and the checker tick.
      expect(d.receivedAt - stoppedAt).toBeLessThan(FAILURE_TIMEOUT_MS + 1000);
    }
    const contAt = Date.now();
    node(3).cont();
    await Promise.all([1, 2, 4, 5].map((i) => waitEvent(i, 'join', frozen, contAt, 10_000)));
    await Promise.all([1, 2, 3, 4, 5].map((i) => node(i).waitForMembers(5, 10_000)));
  });

  it('kill -9: the other four see it down within 1 s; restarted, it joins with a new incarnation', async () => {
    const victim = nameOf(4);
    const before = (await node(1).cluster()).members.find((m) => m.name === victim)!.incarnation;
    const killedAt = Date.now();
    node(4).kill('SIGKILL');
    const downs = await Promise.all(
      [1, 2, 3, 5].map((i) => waitEvent(i, 'down', victim, killedAt, 3000)),
    );
    for (const d of downs) {
      expect(d.data.reason).toBe('connection-closed');
      expect(d.receivedAt - killedAt).toBeLessThan(1000);
    }
    await node(4).exited;
    const restartedAt = Date.now();
    await start(4);
    await Promise.all([1, 2, 3, 5].map((i) => waitEvent(i, 'join', victim, restartedAt, 10_000)));
    const view = await node(1).waitForMembers(5, 10_000);
    const after = view.members.find((m) => m.name === victim)!.incarnation;
    expect(after).not.toBe(before);
  });

  it('a restarted process (same name, new incarnation) replaces the old one while it still holds its links', async () => {
    const name = nameOf(5);
    const old = node(5);
    const oldIncarnation = (await old.cluster()).self.incarnation;
    old.stop(); // frozen: its links are still open
    const since = Date.now();
    // The new process binds another port (the frozen one still holds 45893) and dials the list.
    const fresh = await startNode({
      name: `${name} (new)`,
      env: envFor(5, { CLUSTER_PORT: String(PORT + 1) }),
    });
    const replaced = await Promise.all(
      [1, 2, 3, 4].map((i) => waitEvent(i, 'leave', name, since, 10_000)),
    );
    for (const e of replaced) {
      expect(e.data.reason).toBe('replaced');
      expect(e.data.incarnation).toBe(oldIncarnation);
    }
    const joined = await Promise.all(
      [1, 2, 3, 4].map((i) => waitEvent(i, 'join', name, since, 10_000)),
    );
    const newIncarnation = (await fresh.cluster()).self.incarnation;
    for (const e of joined) expect(e.data.incarnation).toBe(newIncarnation);
    const view = await node(1).waitForMembers(5, 5000);
    expect(view.members.find((m) => m.name === name)!.incarnation).toBe(newIncarnation);

    // The old process wakes up (SIGCONT): refused in every handshake (superseded), it joins
    // nothing, loses each link it had once, runs alone with no leader and says why, once.
    const thawedAt = Date.now();
    old.cont();
    await new Promise((r) => setTimeout(r, 10_000));
    const oldEvents = ['join', 'leave', 'down'].flatMap((type) =>
      streams
        .get(5)!
        .ofType<EventView>(type)
        .filter((e) => e.receivedAt >= thawedAt)
        .map((e) => `${type} ${e.data.member}`),
    );
    expect(oldEvents.filter((e) => e.startsWith('join'))).toEqual([]);
    expect(new Set(oldEvents).size).toBe(oldEvents.length); // no member twice: no flap
    expect(oldEvents.length).toBeLessThanOrEqual(4);
    const oldView = await old.cluster();
    expect(oldView.members.map((m) => m.name)).toEqual([name]);
    expect(oldView.leader).toBeNull();
    expect(
      old.output().match(/NODE_NAME app@127\.0\.0\.6 is taken by a newer process/g)?.length,
    ).toBe(1);
    for (const i of [1, 2, 3, 4]) {
      const v = await node(i).cluster();
      expect(v.members.find((m) => m.name === name)!.incarnation).toBe(newIncarnation);
      expect(
        node(i)
          .output()
          .match(/refused a link with app@127\.0\.0\.6/g)?.length ?? 0,
      ).toBeLessThanOrEqual(1);
    }

    // The old process dies later: nobody reports the current member down.
    const killedAt = Date.now();
    old.kill('SIGKILL');
    await old.exited;
    await new Promise((r) => setTimeout(r, 1000));
    expect(allDowns(killedAt).filter((d) => d.includes(name))).toEqual([]);
    expect((await node(1).cluster()).members.map((m) => m.name)).toContain(name);
    await fresh.shutdown();
    nodes.delete(5);
  });

  it('a node with a wrong cookie never appears in anyone’s membership', async () => {
    const intruder = await startNode({
      name: nameOf(6),
      env: envFor(6, { NODE_COOKIE: 'not-the-cookie' }),
    });
    const mismatch = await node(1).waitForOutput(/cookie mismatch/, 10_000);
    expect(mismatch).toMatch(/cookie mismatch (from|with) .*127\.0\.0\.7/);
    await intruder.waitForOutput(/cookie mismatch/, 10_000);
    // Give it several polling rounds to try.
    await new Promise((r) => setTimeout(r, 3000));
    for (const i of [1, 2, 3, 4]) {
      expect((await node(i).cluster()).members.map((m) => m.name)).not.toContain(nameOf(6));
    }
    expect((await intruder.cluster()).members.map((m) => m.name)).toEqual([nameOf(6)]);
    // The cookie itself is never logged.
    for (const n of [node(1), intruder]) {
      expect(n.output()).not.toContain('static-mesh-cookie');
      expect(n.output()).not.toContain('not-the-cookie');
    }
    await intruder.shutdown();
  });

  it('SIGTERM: the others see leave (shutdown) at once, never down', async () => {
    const leaving = nameOf(1);
    const since = Date.now();
    const exit = node(1).shutdown();
    const leaves = await Promise.all(
      [2, 3, 4].map((i) => waitEvent(i, 'leave', leaving, since, 5000)),
    );
    for (const e of leaves) {
      expect(e.data.reason).toBe('shutdown');
      expect(e.receivedAt - since).toBeLessThan(1000);
    }
    // Nest's shutdown hooks close the app, then re-raise the signal: a clean exit by SIGTERM.
    const status = await exit;
    expect(status.code === 0 || status.signal === 'SIGTERM').toBe(true);
    expect(node(1).output()).not.toMatch(/\bERROR\b/);
    await new Promise((r) => setTimeout(r, 500));
    expect(allDowns(since).filter((d) => d.includes(leaving))).toEqual([]);
    const survivors = [2, 3, 4].map(nameOf);
    await Promise.all([2, 3, 4].map((i) => node(i).waitForMembers(survivors, 5000)));
    // Leadership moved to the oldest survivor, everywhere the same.
    const leaders = new Set(
      await Promise.all([2, 3, 4].map(async (i) => (await node(i).cluster()).leader)),
    );
    expect(leaders.size).toBe(1);
    expect(eventsAbout(2, 'down', leaving, since)).toEqual([]);
  });
});
