import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterModule, LeaderOnly, type ClusterModuleOptions } from '../../../lib/index.js';
import { ClusterTestingModule, type TestingCluster } from '../../../lib/testing/index.js';
import { FrameType } from '../../../lib/transport/frame-types.js';
import { CoreWorld } from '../../support/core-world.js';

/**
 * The quorum guard and the fencing term on the real core (in-memory network, virtual time).
 * Heartbeat 500 ms, failure timeout 2 s, as in the partition lab.
 */
@Injectable()
class Job {
  runs = 0;
  @LeaderOnly()
  tick(): void {
    this.runs += 1;
  }
}

function appWith(options: ClusterModuleOptions): new () => unknown {
  @Module({ imports: [ClusterModule.forRoot(options)], providers: [Job] })
  class App {}
  return App;
}

const TIMING = { heartbeatIntervalMs: 500, failureTimeoutMs: 2000 };

describe('quorum guard and fencing term (in-memory cluster)', () => {
  let cluster: TestingCluster | undefined;
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  const start = async (nodes: number, options: ClusterModuleOptions) => {
    cluster = await ClusterTestingModule.create({
      nodes,
      imports: [appWith(options)],
      ...TIMING,
    });
    await cluster.converged();
    return cluster;
  };
  const leaders = (c: TestingCluster, nodes: number[]) =>
    nodes.filter((i) => c.service(i).isLeader()).map((i) => c.node(i).name);
  const leaderNames = (c: TestingCluster, nodes: number[]) =>
    nodes.map((i) => c.service(i).leader()?.name ?? null);
  /** Ticks every node's @LeaderOnly job once; returns who ran it. */
  const tickAll = (c: TestingCluster, nodes: number[]) => {
    const ran: string[] = [];
    for (const i of nodes) {
      const job = c.node(i).get(Job);
      const before = job.runs;
      job.tick();
      if (job.runs > before) ran.push(c.node(i).name);
    }
    return ran;
  };

  it('without a guard, quorum reports required null and ok true, and every side of a split leads', async () => {
    const c = await start(4, {});
    expect(c.service(2).quorum).toEqual({ required: null, reachable: 4, ok: true });
    c.partition([0, 1], [2, 3]);
    await c.until(() => c.service(2).members().length === 2, { timeoutMs: 5000 });
    await c.until(() => c.service(3).members().length === 2, { timeoutMs: 5000 });
    expect(leaders(c, [0, 1, 2, 3])).toEqual([c.node(0).name, c.node(2).name]);
  });

  it('CLUSTER_QUORUM=3 of 5, 3|2 split: the minority has no leader, the majority exactly one, @LeaderOnly runs once', async () => {
    const c = await start(5, { quorum: 3 });
    expect(c.service(4).quorum).toEqual({ required: 3, reachable: 5, ok: true });
    const before = c.service(0).leadership();
    expect(before.leader?.name).toBe(c.node(0).name);
    // The leader is in the minority: the majority must elect a new one with a larger term.
    c.partition([0, 1], [2, 3, 4]);
    await c.until(() => [0, 1].every((i) => c.service(i).leader() === null), {
      timeoutMs: 2000 + 500 + 500,
    });
    for (const i of [0, 1]) {
      expect(c.service(i).quorum).toEqual({ required: 3, reachable: 2, ok: false });
      expect(c.service(i).isLeader()).toBe(false);
      expect(c.service(i).leadership().leader).toBeNull();
    }
    await c.until(
      () => [2, 3, 4].every((i) => c.service(i).leadership().leader?.name === c.node(2).name),
      { timeoutMs: 3000 },
    );
    expect(leaders(c, [0, 1, 2, 3, 4])).toEqual([c.node(2).name]);
    const terms = [2, 3, 4].map((i) => c.service(i).leadership().term);
    expect(new Set(terms).size).toBe(1);
    expect(terms[0]).toBeGreaterThan(before.term);
    expect(tickAll(c, [0, 1, 2, 3, 4])).toEqual([c.node(2).name]);

    // Heal: node 0 (the oldest) leads everywhere again, with a term above both.
    c.heal();
    await c.converged({ timeoutMs: 5000 });
    await c.until(
      () =>
        [0, 1, 2, 3, 4].every((i) => c.service(i).leadership().leader?.name === c.node(0).name) &&
        new Set([0, 1, 2, 3, 4].map((i) => c.service(i).leadership().term)).size === 1,
      { timeoutMs: 3000, what: 'one agreed leader and term' },
    );
    expect(c.service(3).leadership().term).toBeGreaterThan(terms[0]);
    expect(c.service(1).quorum).toEqual({ required: 3, reachable: 5, ok: true });
    expect(tickAll(c, [0, 1, 2, 3, 4])).toEqual([c.node(0).name]);
  });

  it('CLUSTER_QUORUM=3 of 5, 2|2|1 split: no leader anywhere; heal: one leader', async () => {
    const c = await start(5, { quorum: 3 });
    c.partition([0, 1], [2, 3, 4]);
    c.partition([2, 3], [4]);
    await c.until(() => [0, 1, 2, 3, 4].every((i) => c.service(i).leader() === null), {
      timeoutMs: 3000,
    });
    expect(tickAll(c, [0, 1, 2, 3, 4])).toEqual([]);
    expect(leaderNames(c, [0, 1, 2, 3, 4])).toEqual([null, null, null, null, null]);
    c.heal();
    await c.converged({ timeoutMs: 5000 });
    expect(leaders(c, [0, 1, 2, 3, 4])).toEqual([c.node(0).name]);
  });

  it('majority of 4, 2|2 split: the side with the lowest-ordered name keeps the leader', async () => {
    const c = await start(4, { quorum: 'majority' });
    // The side holding the reference's lowest-ordered name needs half of it, the other more than half.
    expect(c.service(3).quorum).toEqual({ required: 2, reachable: 4, ok: true });
    c.partition([1, 3], [0, 2]);
    await c.until(() => [1, 3].every((i) => c.service(i).members().length === 2), {
      timeoutMs: 3000,
    });
    await c.until(() => [0, 2].every((i) => c.service(i).members().length === 2), {
      timeoutMs: 3000,
    });
    // app@10.0.0.1 (node 0) sorts first: its side holds the tie.
    expect(c.service(0).quorum).toEqual({ required: 2, reachable: 2, ok: true });
    expect(c.service(1).quorum).toEqual({ required: 3, reachable: 2, ok: false });
    expect(leaderNames(c, [0, 1, 2, 3])).toEqual([c.node(0).name, null, c.node(0).name, null]);
  });

  it('majority: a minority that stays cut off never rebases; graceful leaves shrink the reference', async () => {
    const c = await start(5, { quorum: 'majority', quorumStableMs: 5000 });
    c.partition([0, 1, 2], [3, 4]);
    await c.until(() => c.service(3).members().length === 2, { timeoutMs: 3000 });
    await c.advance(20_000);
    expect(c.service(3).quorum).toEqual({ required: 3, reachable: 2, ok: false });
    expect(leaderNames(c, [3, 4])).toEqual([null, null]);
    // The majority side rebased after 5 s stable: 2 of its 3 are a majority now.
    expect(c.service(0).quorum).toEqual({ required: 2, reachable: 3, ok: true });
    c.heal();
    await c.converged({ timeoutMs: 5000 });
    expect(c.service(4).quorum).toEqual({ required: 3, reachable: 5, ok: true });
    // Two nodes shut down gracefully: the other three keep their leader.
    await c.node(3).close();
    await c.node(4).close();
    await c.converged({ timeoutMs: 5000 });
    expect(c.service(0).quorum).toEqual({ required: 2, reachable: 3, ok: true });
    expect(leaders(c, [0, 1, 2])).toEqual([c.node(0).name]);
  });

  it('the term rises on every change of leader and is the same on every follower', async () => {
    const c = await start(4, {});
    const agreed = (nodes: number[]) => {
      const views = nodes.map((i) => c.service(i).leadership());
      const names = new Set(views.map((v) => v.leader?.name ?? null));
      const terms = new Set(views.map((v) => v.term));
      return names.size === 1 && terms.size === 1 && !names.has(null) ? views[0] : undefined;
    };
    await c.until(() => agreed([0, 1, 2, 3]) !== undefined, { timeoutMs: 2000 });
    const first = agreed([0, 1, 2, 3])!;
    expect(first.leader?.name).toBe(c.node(0).name);
    const seen: { leader: string | null; term: number }[] = [];
    const sub = c.service(3).leadership$.subscribe(({ leader, term }) => {
      seen.push({ leader: leader?.name ?? null, term });
    });
    c.crash(0, { silent: true });
    await c.until(() => agreed([1, 2, 3])?.leader?.name === c.node(1).name, { timeoutMs: 5000 });
    const second = agreed([1, 2, 3])!;
    expect(second.term).toBeGreaterThan(first.term);
    await c.node(1).close();
    await c.until(() => agreed([2, 3])?.leader?.name === c.node(2).name, { timeoutMs: 5000 });
    const third = agreed([2, 3])!;
    expect(third.term).toBeGreaterThan(second.term);
    sub.unsubscribe();
    // Node 3's view: each leader it followed came with a larger term.
    const followed = seen.filter((s) => s.leader !== null);
    expect(followed.map((s) => s.leader)).toEqual([c.node(0).name, c.node(1).name, c.node(2).name]);
    for (let i = 1; i < followed.length; i++)
      expect(followed[i].term).toBeGreaterThan(followed[i - 1].term);
  });

  it('two sides that led apart (no guard) meet: one leader, a term above both', async () => {
    const c = await start(4, {});
    c.partition([0, 1], [2, 3]);
    await c.until(() => c.service(3).leadership().leader?.name === c.node(2).name, {
      timeoutMs: 5000,
    });
    const left = c.service(1).leadership().term;
    const right = c.service(3).leadership().term;
    c.heal();
    await c.converged({ timeoutMs: 5000 });
    await c.until(
      () =>
        [0, 1, 2, 3].every((i) => c.service(i).leadership().leader?.name === c.node(0).name) &&
        new Set([0, 1, 2, 3].map((i) => c.service(i).leadership().term)).size === 1,
      { timeoutMs: 3000, what: 'one agreed leader and term' },
    );
    expect(c.service(2).leadership().term).toBeGreaterThan(Math.max(left, right));
  });
});

describe('LEADERSHIP frames from a member (core world)', () => {
  it('garbage is ignored and logged once per 10 s; the leader and its term stay', async () => {
    const world = new CoreWorld(5);
    const a = await world.spawn('a@h1', 'h1');
    await world.run(1);
    const b = await world.spawn('b@h2', 'h2');
    a.discovery.set([b.endpoint]);
    b.discovery.set([a.endpoint]);
    await world.run(3000);
    const before = b.node.leadership.leadership();
    expect(before.leader?.name).toBe('a@h1');
    expect(a.node.leadership.leadership().term).toBe(before.term);
    const garbage = [
      Buffer.from('not json'),
      Buffer.from(JSON.stringify({ t: -1, o: null, oi: null, f: false })),
      Buffer.from(JSON.stringify({ t: 1.5, o: 'a@h1', oi: 'x', f: true })),
      Buffer.from(JSON.stringify({ t: 2 ** 60, o: 'a@h1', oi: 'x', f: true })),
      Buffer.from(JSON.stringify({ t: 5, o: 'a@h1', f: true })),
      Buffer.alloc(4096, 0x7b),
    ];
    for (const payload of garbage)
      a.node.membership.sendFrame('b@h2', FrameType.LEADERSHIP, payload);
    await world.run(1000);
    expect(b.logger.at('warn', /malformed leadership state from a@h1; ignored/)).toHaveLength(1);
    expect(b.node.leadership.leadership()).toEqual(before);
    expect(b.view()).toEqual(['a@h1', 'b@h2']);
    expect(world.time.uncaught).toEqual([]);
    await world.closeAll();
  });

  it('a leader that hears a larger term takes one above it; its follower adopts it', async () => {
    const world = new CoreWorld(6);
    const a = await world.spawn('a@h1', 'h1');
    await world.run(1);
    const b = await world.spawn('b@h2', 'h2');
    a.discovery.set([b.endpoint]);
    b.discovery.set([a.endpoint]);
    await world.run(3000);
    const before = a.node.leadership.leadership().term;
    // b reports a term far above, taken by some leader c it followed before.
    const high = before + 1_000_000;
    b.node.membership.sendFrame(
      'a@h1',
      FrameType.LEADERSHIP,
      Buffer.from(JSON.stringify({ t: high, o: 'c@h3', oi: 'c1', f: false })),
    );
    await world.run(2000);
    const after = a.node.leadership.leadership();
    expect(after.leader?.name).toBe('a@h1');
    expect(after.term).toBeGreaterThan(high);
    expect(after.leader?.endpoint).toBe('h1:45893');
    const follower = b.node.leadership.leadership();
    expect({ leader: follower.leader?.name, term: follower.term }).toEqual({
      leader: 'a@h1',
      term: after.term,
    });
    await world.closeAll();
  });
});

describe('majority reference on a graceful leave', () => {
  it('the last two of a majority cluster: the lowest-named one shuts down, the other leads with no "quorum lost" on the way', async () => {
    const cluster = await ClusterTestingModule.create({
      nodes: 2,
      imports: [appWith({ quorum: 'majority' })],
      ...TIMING,
    });
    try {
      await cluster.converged();
      const seen: (string | null)[] = [];
      const sub = cluster.service(1).leader$.subscribe((l) => seen.push(l?.name ?? null));
      await cluster.node(0).close();
      await cluster.until(() => cluster.service(1).isLeader(), { timeoutMs: 2000 });
      sub.unsubscribe();
      expect(seen).toEqual([cluster.node(0).name, cluster.node(1).name]);
      expect(cluster.service(1).quorum).toEqual({ required: 1, reachable: 1, ok: true });
      expect(cluster.node(1).logs.filter((l) => /quorum lost/.test(l.message))).toEqual([]);
    } finally {
      await cluster.close();
    }
  });
});
