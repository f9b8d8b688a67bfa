/**
 * Shared reachability: the report table (versions, stale and bogus reports), the leader rule
 * over the merged view, and what a node shows under one-way loss — real `ClusterNode`s on the
 * in-memory network and virtual time.
 */
import { describe, expect, it } from 'vitest';
import { MemberGoneError } from '../../../lib/errors/member-gone.error.js';
import { MemberUnreachableError } from '../../../lib/errors/member-unreachable.error.js';
import { NotAMemberError } from '../../../lib/errors/not-a-member.error.js';
import type { NodeIdentity } from '../../../lib/interfaces/member.interface.js';
import { leaderOf, pickLeader } from '../../../lib/membership/leader.js';
import {
  MAX_REACHABILITY_ENTRIES,
  ReachabilityTable,
  decodeReachability,
  encodeReachability,
  markKey,
  type ReachabilityRow,
} from '../../../lib/membership/reachability.js';
import { FrameType } from '../../../lib/transport/frame-types.js';
import { CoreWorld, type WorldNode } from '../../support/core-world.js';

const id = (name: string, startedAt: number, incarnation = `${name}-1`): NodeIdentity => ({
  name,
  incarnation,
  startedAt,
  endpoint: `${name}:45893`,
});

const row = (
  observer: string,
  version: number,
  unreachable: NodeIdentity[] = [],
  incarnation = `${observer}-1`,
): ReachabilityRow => ({ observer, incarnation, version, unreachable, answers: [] });

describe('reachability table', () => {
  const a = id('a', 1);
  const b = id('b', 2);
  const c = id('c', 3);

  it('keeps the highest version per observer incarnation and ignores stale ones', () => {
    const table = new ReachabilityTable();
    expect(table.merge(row('a', 2, [b]))).toBe('newer');
    expect(table.merge(row('a', 1, []))).toBe('stale');
    expect(table.merge(row('a', 2, []))).toBe('stale');
    expect(table.get('a')?.unreachable).toEqual([b]);
    expect(table.merge(row('a', 3, []))).toBe('newer');
    expect(table.get('a')?.unreachable).toEqual([]);
  });

  it('a new incarnation of the observer starts over; a report of another incarnation is foreign', () => {
    const table = new ReachabilityTable();
    table.merge(row('a', 9, [b]));
    expect(table.merge(row('a', 1, [], 'a-2'), 'a-1')).toBe('foreign');
    expect(table.get('a')?.version).toBe(9);
    expect(table.merge(row('a', 1, [c], 'a-2'), 'a-2')).toBe('newer');
    expect(table.get('a')).toMatchObject({ incarnation: 'a-2', version: 1, unreachable: [c] });
  });

  it('counts marks only from the given observers, per member incarnation', () => {
    const table = new ReachabilityTable();
    table.merge(row('a', 1, [b]));
    table.merge(row('c', 1, [b, id('d', 4)]));
    table.merge(row('ghost', 1, [a]));
    const marks = table.marks([a, b, c]);
    expect(marks.get(markKey(b))).toBe(2);
    expect(marks.get(markKey(a))).toBeUndefined();
    // An older incarnation of b is a different member.
    expect(marks.get(markKey(id('b', 2, 'b-0')))).toBeUndefined();
  });

  it('answers, for every member others mark, whether this node has a link to it', () => {
    const table = new ReachabilityTable();
    table.merge(row('a', 1, [b]));
    table.merge(row('b', 1, [a, c]));
    const answers = table.answers([a, b, c], 'c', (name) => name === 'a');
    expect(answers).toEqual([
      { name: 'a', incarnation: 'a-1', linked: true },
      { name: 'b', incarnation: 'b-1', linked: false },
    ]);
  });

  it('decodes what it encodes; refuses malformed and oversized reports, saying why', () => {
    const r: ReachabilityRow = {
      ...row('a', 4, [b]),
      answers: [{ name: 'c', incarnation: 'c-1', linked: true }],
    };
    expect(decodeReachability(encodeReachability(r))).toEqual(r);
    expect(decodeReachability(Buffer.from('{'))).toBe('not JSON');
    expect(decodeReachability(Buffer.from(JSON.stringify({ v: 2 })))).toMatch(/unknown format/);
    const huge = Array.from({ length: 10_000 }, (_, i) => [`ghost${i}@x`, 'g', 0, '']);
    expect(
      decodeReachability(
        Buffer.from(JSON.stringify({ v: 1, o: 'a', i: 'a-1', n: 1, u: huge, a: [] })),
      ),
    ).toBe(`10000 entries (at most ${MAX_REACHABILITY_ENTRIES})`);
    expect(
      decodeReachability(
        Buffer.from(JSON.stringify({ v: 1, o: 'a', i: 'a-1', n: 0, u: [], a: [] })),
      ),
    ).toBe('bad version');
    expect(
      decodeReachability(
        Buffer.from(
          JSON.stringify({ v: 1, o: 'a', i: 'a-1', n: 1, u: [['a', 'a-1', 1, '']], a: [] }),
        ),
      ),
    ).toMatch(/its own observer/);
  });
});

describe('leader of the merged view', () => {
  const [h1, h2, h3, h4] = [id('h1', 1), id('h2', 2), id('h3', 3), id('h4', 4)];

  it('with no marks is the oldest member', () => {
    const view = { members: [h3, h1, h4, h2], unreachableBy: () => 0 };
    expect(leaderOf(view)).toBe(h1);
    expect(leaderOf(view)).toBe(pickLeader(view.members));
  });

  it('under one-way loss between h1 and h2 (each marks the other) is h3', () => {
    const marks = new Map([
      ['h1', 1],
      ['h2', 1],
    ]);
    expect(
      leaderOf({ members: [h1, h2, h3, h4], unreachableBy: (m) => marks.get(m.name) ?? 0 }),
    ).toBe(h3);
  });

  it('when every member is marked, is the least-marked oldest (a connected view always has one)', () => {
    const marks = new Map([
      ['h1', 2],
      ['h2', 1],
      ['h3', 1],
      ['h4', 1],
    ]);
    expect(
      leaderOf({ members: [h4, h3, h2, h1], unreachableBy: (m) => marks.get(m.name) ?? 0 }),
    ).toBe(h2);
    expect(leaderOf({ members: [], unreachableBy: () => 0 })).toBeNull();
  });
});

async function meshOf(world: CoreWorld, count: number): Promise<WorldNode[]> {
  const nodes: WorldNode[] = [];
  for (let i = 1; i <= count; i++) {
    nodes.push(await world.spawn(`h${i}@10.0.0.${i}`, `10.0.0.${i}`));
    await world.run(10); // h1 is the oldest, h2 the next
  }
  for (const n of nodes) n.discovery.set(nodes.filter((m) => m !== n).map((m) => m.endpoint));
  await world.run(3000);
  const names = nodes.map((n) => n.name).sort();
  for (const n of nodes) expect(n.view()).toEqual(names);
  return nodes;
}

/** Lets the link's write batch (uncorked on the next tick) leave before virtual time runs. */
const flushWrites = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const leaders = (nodes: WorldNode[]): string[] =>
  nodes.map((n) => n.node.membership.leader()?.name ?? 'none');
const unreachableSeenBy = (n: WorldNode): string[] =>
  n.node.membership
    .members()
    .filter((m) => m.state === 'unreachable')
    .map((m) => m.name);

describe('shared reachability between real nodes', () => {
  it('one-way loss h1 → h2: within the failure timeout + 1 s everyone agrees on one leader, h1 and h2 show each other unreachable; the heal brings both back', async () => {
    const world = new CoreWorld(101);
    const nodes = await meshOf(world, 4);
    const [h1, h2, h3, h4] = nodes;
    expect(new Set(leaders(nodes))).toEqual(new Set([h1.name]));

    world.network.block(h1.host, h2.host);
    await world.run(5000 + 1000);
    expect(leaders(nodes)).toEqual([h3.name, h3.name, h3.name, h3.name]);
    expect(nodes.filter((n) => n.node.isLeader())).toEqual([h3]);
    expect(unreachableSeenBy(h1)).toEqual([h2.name]);
    expect(unreachableSeenBy(h2)).toEqual([h1.name]);
    expect(unreachableSeenBy(h3)).toEqual([]);
    expect(unreachableSeenBy(h4)).toEqual([]);
    for (const n of nodes) expect(n.view()).toHaveLength(4);
    const ev = h1.events.filter((e) => e.member.name === h2.name).map((e) => e.type);
    expect(ev).toEqual(['join', 'unreachable']);
    expect(h1.node.membership.reachableCount()).toBe(3);
    expect(h1.node.membership.view().unreachableBy(h1.node.membership.self)).toBe(1);

    // Messaging to the unreachable member fails at once, with a clear error.
    expect(() => h1.node.messaging.send(h2.name, 'work', { n: 1 })).toThrow(MemberUnreachableError);
    expect(() => h1.node.messaging.send(h2.name, 'work', { n: 1 })).toThrow(
      /h2@10\.0\.0\.2 is unreachable from this node/,
    );
    const error = await h1.node.messaging.request(h2.name, 'sum', {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MemberUnreachableError);
    expect(error).toBeInstanceOf(NotAMemberError);
    const published = h1.node.messaging.publish('news', 'hello');
    expect(published.failed).toEqual([{ node: h2.name, reason: 'unreachable' }]);
    expect(published.delivered.sort()).toEqual([h1.name, h3.name, h4.name].sort());

    // It lasts as long as the loss does.
    await world.run(20_000);
    expect(leaders(nodes)).toEqual([h3.name, h3.name, h3.name, h3.name]);
    expect(unreachableSeenBy(h2)).toEqual([h1.name]);

    world.network.heal();
    await world.run(12_000);
    for (const n of nodes) {
      expect(unreachableSeenBy(n)).toEqual([]);
      expect(n.view()).toHaveLength(4);
    }
    expect(new Set(leaders(nodes))).toEqual(new Set([h1.name]));
    expect(h1.events.filter((e) => e.member.name === h2.name).map((e) => e.type)).toEqual([
      'join',
      'unreachable',
      'reachable',
    ]);
    expect(world.time.uncaught).toEqual([]);
    await world.closeAll();
  }, 30_000);

  it('a request waiting on a member that becomes unreachable is rejected at once with MemberGoneError (unreachable)', async () => {
    const world = new CoreWorld(102);
    const nodes = await meshOf(world, 3);
    const [h1, h2] = nodes;
    h2.node.messaging.handle('slow', () => new Promise(() => undefined));
    const pending = h1.node.messaging
      .request(h2.name, 'slow', {}, { timeoutMs: 600_000 })
      .catch((e: unknown) => e);
    await flushWrites();
    await world.run(100);
    world.network.block(h1.host, h2.host);
    await world.run(5000 + 1000);
    expect(unreachableSeenBy(h1)).toEqual([h2.name]);
    const error = await pending;
    expect(error).toBeInstanceOf(MemberGoneError);
    expect(error).toMatchObject({ node: h2.name, topic: 'slow', unreachable: true });
    expect((error as Error).message).toBe(
      `the link to ${h2.name} went down before it replied to "slow" (other members still reach it)`,
    );
    await world.closeAll();
  });

  it('a crashed member is only down (no unreachable step) on every other node', async () => {
    const world = new CoreWorld(103);
    const nodes = await meshOf(world, 4);
    const [, h2, ...rest] = nodes;
    world.network.crash(h2.host);
    await world.run(2000);
    for (const n of [nodes[0], ...rest]) {
      expect(n.events.filter((e) => e.member.name === h2.name).map((e) => e.type)).toEqual([
        'join',
        'down',
      ]);
      expect(n.view()).not.toContain(h2.name);
    }
    await world.closeAll();
  });

  it('a stale report is ignored: the newest version of an observer decides', async () => {
    const world = new CoreWorld(107);
    const nodes = await meshOf(world, 3);
    const [h1, h2, h3] = nodes;
    const self = h1.node.membership.self;
    const send = (version: number, marks: NodeIdentity[]): Promise<void> => {
      h2.node.membership.sendFrame(
        h1.name,
        FrameType.REACHABILITY,
        encodeReachability({
          observer: h2.name,
          incarnation: h2.node.membership.self.incarnation,
          version,
          unreachable: marks,
          answers: [],
        }),
      );
      return flushWrites();
    };
    await send(5, [self]);
    await world.run(100);
    expect(h1.node.membership.view().unreachableBy(self)).toBe(1);
    expect(h1.node.membership.leader()?.name).toBe(h2.name);
    await send(3, []); // older than 5
    await world.run(100);
    expect(h1.node.membership.leader()?.name).toBe(h2.name);
    await send(6, []);
    await world.run(100);
    expect(h1.node.membership.view().unreachableBy(self)).toBe(0);
    expect(h1.node.membership.leader()?.name).toBe(h1.name);
    expect(h3.node.membership.leader()?.name).toBe(h1.name);
    await world.closeAll();
  });

  it('a report claiming 10,000 members, or naming members that do not exist, is ignored and logged once', async () => {
    const world = new CoreWorld(109);
    const nodes = await meshOf(world, 3);
    const [h1, h2] = nodes;
    const before = h1.view();
    const huge = Array.from({ length: 10_000 }, (_, i) => [`ghost${i}@x`, 'g', 0, `10.9.0.1:${i}`]);
    const inc = h2.node.membership.self.incarnation;
    for (let version = 1; version <= 3; version++) {
      h2.node.membership.sendFrame(
        h1.name,
        FrameType.REACHABILITY,
        Buffer.from(JSON.stringify({ v: 1, o: h2.name, i: inc, n: version, u: huge, a: [] })),
      );
      await flushWrites();
      await world.run(100);
    }
    expect(
      h1.logger.at('warn', /malformed reachability report from h2@10\.0\.0\.2 \(10000 entries/),
    ).toHaveLength(1);
    // Members that do not exist: left out, and logged once.
    for (let version = 4; version <= 6; version++) {
      h2.node.membership.sendFrame(
        h1.name,
        FrameType.REACHABILITY,
        encodeReachability({
          observer: h2.name,
          incarnation: inc,
          version,
          unreachable: [id('ghost1@x', 0), id('ghost2@x', 0)],
          answers: [{ name: 'ghost1@x', incarnation: 'ghost1@x-1', linked: true }],
        }),
      );
      await flushWrites();
      await world.run(100);
    }
    expect(
      h1.logger.at('warn', /names 2 members unknown here \(ghost1@x, ghost2@x\)/),
    ).toHaveLength(1);
    // A report about an observer that is no member here.
    h2.node.membership.sendFrame(
      h1.name,
      FrameType.REACHABILITY,
      encodeReachability(row('ghost3@x', 1, [h1.node.membership.self])),
    );
    await flushWrites();
    await world.run(100);
    expect(
      h1.logger.at('warn', /about ghost3@x, which is not a member here; ignored/),
    ).toHaveLength(1);
    expect(h1.view()).toEqual(before);
    expect(h1.node.membership.members().every((m) => m.state === 'up')).toBe(true);
    expect(new Set(leaders(nodes))).toEqual(new Set([h1.name]));
    expect(h1.node.membership.stateSize()).toMatchObject({ unreachable: 0, members: 2 });
    await world.closeAll();
  });
});
