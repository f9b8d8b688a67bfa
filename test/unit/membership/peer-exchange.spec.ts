/**
 * Peer exchange and membership publication at scale: digest-first exchange, learned endpoints
 * kept while a member lists them, bounded work on hostile lists, one `members$` emission per
 * turn. Real `ClusterNode`s on the in-memory network and virtual time.
 */
import { describe, expect, it } from 'vitest';
import type { Member } from '../../../lib/interfaces/member.interface.js';
import { pickLeader } from '../../../lib/membership/leader.js';
import { FrameType } from '../../../lib/transport/frame-types.js';
import { CoreWorld, type WorldNode } from '../../support/core-world.js';

function countLearned(node: WorldNode): { frames: number; endpoints: number } {
  const seen = { frames: 0, endpoints: 0 };
  node.node.membership.changes.subscribe((c) => {
    if (c.type !== 'learned') return;
    seen.frames++;
    seen.endpoints += c.endpoints.length;
  });
  return seen;
}

describe('peer exchange', () => {
  it('a chain of nodes, each discovering only the next, becomes a full mesh', async () => {
    const world = new CoreWorld(41);
    const nodes: WorldNode[] = [];
    for (let i = 0; i < 6; i++) nodes.push(await world.spawn(`n${i}@h${i}`, `h${i}`));
    for (let i = 0; i + 1 < nodes.length; i++) nodes[i].discovery.set([nodes[i + 1].endpoint]);
    await world.run(20_000);
    const names = nodes.map((n) => n.name).sort();
    for (const n of nodes) expect(n.view()).toEqual(names);
    expect(world.time.uncaught).toEqual([]);
    await world.closeAll();
  });

  it('a start-up storm in which discovery lists everyone exchanges digests only, no member lists', async () => {
    // Before: every join sent the whole member list (N joins × N members on every node).
    const world = new CoreWorld(43);
    const nodes: WorldNode[] = [];
    for (let i = 0; i < 16; i++) nodes.push(await world.spawn(`n${i}@h${i}`, `h${i}`));
    const learned = nodes.map(countLearned);
    for (const n of nodes) n.discovery.set(nodes.filter((m) => m !== n).map((m) => m.endpoint));
    await world.run(15_000);
    const names = nodes.map((n) => n.name).sort();
    for (const n of nodes) expect(n.view()).toEqual(names);
    expect(learned.reduce((sum, l) => sum + l.frames, 0)).toBe(0);
    await world.closeAll();
  });

  it('an endpoint learned from a member is kept while the member lists it, past the learned TTL', async () => {
    // Before: a learned endpoint was dialled 3 times within 30 s and then forgotten, although
    // the member that listed it still had it: a and c, cut apart for a minute, never linked.
    const world = new CoreWorld(47);
    const a = await world.spawn('a@h1', 'h1');
    const b = await world.spawn('b@h2', 'h2');
    const c = await world.spawn('c@h3', 'h3');
    world.network.partition(['h1'], ['h3']);
    a.discovery.set([b.endpoint]);
    b.discovery.set([a.endpoint, c.endpoint]);
    c.discovery.set([b.endpoint]);
    await world.run(60_000);
    expect(a.view()).toEqual(['a@h1', 'b@h2']);
    world.network.heal();
    await world.run(30_000);
    expect(a.view()).toEqual(['a@h1', 'b@h2', 'c@h3']);
    expect(c.view()).toEqual(['a@h1', 'b@h2', 'c@h3']);
    await world.closeAll();
  });

  it('what a member no longer lists is forgotten at the next exchange with it', async () => {
    const world = new CoreWorld(53);
    const a = await world.spawn('a@h1', 'h1');
    const b = await world.spawn('b@h2', 'h2');
    a.discovery.set([b.endpoint]);
    b.discovery.set([a.endpoint]);
    await world.run(3000);
    const ghosts = Array.from({ length: 50 }, (_, i) => ({
      name: `ghost${i}@x`,
      incarnation: 'g',
      endpoint: `10.201.0.${i + 1}:45893`,
    }));
    b.node.membership.sendFrame('a@h1', FrameType.PEERS, Buffer.from(JSON.stringify(ghosts)));
    await world.run(1000);
    expect(a.node.membership.stateSize().listed).toBe(50);
    // b's real view equals a's: the next exchange clears what b was said to list.
    await world.run(25_000);
    expect(a.node.membership.stateSize().listed).toBe(0);
    await world.run(60_000);
    expect(a.node.reconcilerStats()).toMatchObject({ learned: 0, queued: 0, dialing: 0 });
    expect(a.view()).toEqual(['a@h1', 'b@h2']);
    await world.closeAll();
  });

  it('a peer list of 10,000 entries is refused whole, with one log line a minute', async () => {
    const world = new CoreWorld(59);
    const a = await world.spawn('a@h1', 'h1');
    const b = await world.spawn('b@h2', 'h2');
    a.discovery.set([b.endpoint]);
    b.discovery.set([a.endpoint]);
    await world.run(3000);
    const learned = countLearned(a);
    const list = Array.from({ length: 10_000 }, (_, i) => ({
      name: `ghost${i}@x`,
      incarnation: 'g',
      endpoint: `10.202.${i >> 8}.${i & 255}:45893`,
    }));
    for (const frame of [list, { b: [1, 2], p: list }]) {
      b.node.membership.sendFrame('a@h1', FrameType.PEERS, Buffer.from(JSON.stringify(frame)));
      await world.run(1000);
    }
    expect(learned).toEqual({ frames: 0, endpoints: 0 });
    expect(a.logger.at('warn', /peer list from b@h2 has 10000 entries/)).toHaveLength(1);
    expect(a.node.reconcilerStats()).toMatchObject({ learned: 0, dialing: 0 });
    expect(a.view()).toEqual(['a@h1', 'b@h2']);
    // A garbled digest is dropped the same way.
    b.node.membership.sendFrame('a@h1', FrameType.PEERS_DIGEST, Buffer.from('nonsense'));
    await world.run(1000);
    expect(a.logger.at('warn', /malformed peer digest from b@h2/)).toHaveLength(1);
    expect(a.view()).toEqual(['a@h1', 'b@h2']);
    await world.closeAll();
  });
});

describe('membership publication', () => {
  it('members$ emits once per turn; the leader is current first; changes reports every join in order', async () => {
    const world = new CoreWorld(61);
    const nodes: WorldNode[] = [];
    for (let i = 0; i < 12; i++) nodes.push(await world.spawn(`n${i}@h${i}`, `h${i}`));
    const watched = nodes[5];
    const m = watched.node.membership;
    const emissions: Member[][] = [];
    const consistent: boolean[] = [];
    m.members$.subscribe((list) => {
      emissions.push(list);
      const leader = m.leader();
      consistent.push(leader?.name === pickLeader(list)?.name);
    });
    const joins: string[] = [];
    const currentAtJoin: boolean[] = [];
    m.changes.subscribe((c) => {
      if (c.type !== 'join') return;
      joins.push(c.member.name);
      currentAtJoin.push(m.members().some((x) => x.name === c.member.name));
    });
    for (const n of nodes) n.discovery.set(nodes.filter((x) => x !== n).map((x) => x.endpoint));
    await world.run(10_000);
    expect(watched.view()).toEqual(nodes.map((n) => n.name).sort());
    expect([...joins].sort()).toEqual(
      nodes
        .filter((n) => n !== watched)
        .map((n) => n.name)
        .sort(),
    );
    expect(watched.events.filter((e) => e.type === 'join').map((e) => e.member.name)).toEqual(
      joins,
    );
    expect(currentAtJoin.every(Boolean)).toBe(true);
    expect(consistent.every(Boolean)).toBe(true);
    // The first emission is the subscription's; then at most one per batch of joins.
    expect(emissions.length).toBeLessThanOrEqual(1 + joins.length);
    expect(emissions.at(-1)!.map((x) => x.name)).toEqual(watched.view());
    expect(m.leader()?.name).toBe('n0@h0');
    await world.closeAll();
  });
});
