/**
 * The sample app as a 3-node gossip cluster on loopback: membership, live events, pub/sub
 * messages, the feature-flag cache and the leader-only job, through the HTTP API only.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  gossipEnv,
  type NodeProcess,
  randomCookie,
  startNode,
  useNodeCleanup,
  type FlagView,
  type HealthAnswer,
  type JobRunView,
  type PublishAnswer,
} from '../support/node-process.js';

const NAMES = ['c1@127.0.0.1', 'c2@127.0.0.1', 'c3@127.0.0.1'];
const LATE = 'c4@127.0.0.1';

describe('sample app, 3 nodes over gossip', () => {
  useNodeCleanup();
  let nodes: NodeProcess[];
  let cookie: string;
  let gossipPort: number;

  beforeAll(async () => {
    cookie = randomCookie();
    gossipPort = await freePort();
    nodes = await Promise.all(
      NAMES.map((name) => startNode({ name, env: gossipEnv(cookie, gossipPort) })),
    );
    await Promise.all(nodes.map((node) => node.waitForMembers(NAMES)));
  }, 60_000);

  it('every node shows all members, with link addresses, and the same leader', async () => {
    const views = await Promise.all(nodes.map((node) => node.cluster()));
    const leaders = new Set(views.map((view) => view.leader));
    expect(leaders.size).toBe(1);
    for (const [i, view] of views.entries()) {
      expect(view).toMatchObject({ mode: 'cluster', strategy: 'gossip' });
      expect(view.self.name).toBe(NAMES[i]);
      expect(view.members.filter((m) => m.self).map((m) => m.name)).toEqual([NAMES[i]]);
      expect(view.members.filter((m) => m.leader).map((m) => m.name)).toEqual([...leaders]);
      for (const member of view.members) expect(member.address).toMatch(/^127\.0\.0\.1:\d+$/);
    }
    const health = await nodes[0].http<HealthAnswer>('GET', '/health');
    expect(health.status).toBe(200);
    expect(health.body.details.cluster).toMatchObject({ status: 'up', members: 3 });
  });

  it('delivers a message posted to one node to every node, with its sender', async () => {
    const topic = `greetings-${Date.now()}`;
    const published = await nodes[0].http<PublishAnswer>('POST', '/messages', {
      topic,
      payload: { n: 1 },
    });
    expect(published.status).toBe(201);
    expect([...published.body.delivered].sort()).toEqual(NAMES);
    expect(published.body.failed).toEqual([]);

    for (const node of nodes) {
      await expect
        .poll(() => node.json(`/messages?topic=${topic}`), { timeout: 5_000 })
        .toEqual([expect.objectContaining({ topic, payload: { n: 1 }, from: NAMES[0] })]);
    }
  });

  it('keeps every feature-flag cache coherent through feature_rollouts invalidations', async () => {
    const set = await nodes[1].http('PUT', '/flags/new_ui', { enabled: true });
    expect(set.status).toBe(200);
    for (const node of nodes) {
      await expect
        .poll(() => node.json('/flags'), { timeout: 5_000 })
        .toEqual([expect.objectContaining({ name: 'new_ui', enabled: true, updatedBy: NAMES[1] })]);
    }
    await nodes[2].http('PUT', '/flags/new_ui', { enabled: false });
    for (const node of nodes) {
      await expect
        .poll(async () => (await node.json<FlagView>('/flags/new_ui')).enabled, { timeout: 5_000 })
        .toBe(false);
    }
  });

  it('runs the leader-only job on the leader alone; every node hears of each run', async () => {
    const { leader } = await nodes[0].cluster();
    for (const node of nodes) {
      // Runs while the node still saw all three members (a node alone at boot is its own leader).
      const clusterRuns = async () =>
        (await node.json<JobRunView[]>('/jobs')).filter((run) => run.members === 3);
      await expect
        .poll(async () => (await clusterRuns()).length, { timeout: 8_000 })
        .toBeGreaterThanOrEqual(2);
      expect(new Set((await clusterRuns()).map((run) => run.node))).toEqual(new Set([leader]));
    }
  });

  it('a node that joins later gets the flags and shows up live on the others', async () => {
    const events = await nodes[0].events();
    const late = await startNode({ name: LATE, env: gossipEnv(cookie, gossipPort) });
    nodes.push(late);

    const join = await events.waitFor<{ member: string; address: string }>(
      (e) => e.type === 'join' && e.data.member === LATE,
      `a join event for ${LATE}`,
      15_000,
    );
    expect(join.data).toMatchObject({ type: 'join', member: LATE });
    expect(join.data.address).toMatch(/^127\.0\.0\.1:\d+$/);
    await events.waitFor<{ members: { name: string }[] }>(
      (e) => e.type === 'members' && e.data.members.length === 4,
      'a members snapshot with 4 members',
    );
    await late.waitForMembers([...NAMES, LATE]);
    await expect
      .poll(() => late.json('/flags'), { timeout: 5_000 })
      .toEqual([expect.objectContaining({ name: 'new_ui', enabled: false, updatedBy: NAMES[2] })]);
  });

  it('shows a graceful leave at once, and the next oldest node takes the leader job over', async () => {
    const before = await nodes[0].cluster();
    const leader = nodes.find((node) => node.name === before.leader)!;
    const watcher = nodes.find((node) => node !== leader)!;
    const events = await watcher.events();

    const left = Date.now();
    await leader.shutdown();
    const leave = await events.waitFor<{ member: string; reason: string }>(
      (e) => e.type === 'leave' && e.data.member === leader.name,
      `a leave event for ${leader.name}`,
      5_000,
    );
    expect(leave.data.reason).toBe('shutdown');
    expect(leave.receivedAt - left).toBeLessThan(3_000);
    expect(
      events.ofType<{ member: string }>('down').filter((e) => e.data.member === leader.name),
    ).toEqual([]);

    const remaining = nodes.filter((node) => node !== leader);
    const after = await watcher.waitForMembers(remaining.map((node) => node.name));
    expect(after.leader).not.toBe(leader.name);
    expect(after.leader).not.toBeNull();

    await expect
      .poll(async () => (await watcher.json<JobRunView[]>('/jobs')).at(-1)?.node, {
        timeout: 8_000,
      })
      .toBe(after.leader);
  });

  it('shows a crashed node as down', async () => {
    const [watcher, , victim] = nodes.filter((node) => node.running);
    const events = await watcher.events();
    victim.kill('SIGKILL');
    const down = await events.waitFor<{ member: string; reason: string }>(
      (e) => e.type === 'down' && e.data.member === victim.name,
      `a down event for ${victim.name}`,
      10_000,
    );
    expect(down.data.reason).toMatch(/connection-closed|heartbeat-timeout|error/);
    await watcher.waitForCluster(
      (view) => !view.members.some((m) => m.name === victim.name),
      `${victim.name} gone`,
    );
  });
});
