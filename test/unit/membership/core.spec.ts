/**
 * The membership core (transport, handshake admission, membership, reconciler, peer exchange,
 * leader) as real `ClusterNode`s on the in-memory network and virtual time. Each case is a
 * defect the previous core had; the comment says what it did.
 */
import { describe, expect, it } from 'vitest';
import { FrameType } from '../../../lib/transport/frame-types.js';
import { CoreWorld, type WorldNode } from '../../support/core-world.js';

function types(node: WorldNode, about: string): string[] {
  return node.events.filter((e) => e.member.name === about).map((e) => `${e.type}:${e.reason}`);
}

async function mesh(world: CoreWorld, nodes: WorldNode[], ms = 3000): Promise<void> {
  for (const n of nodes) n.discovery.set(nodes.filter((m) => m !== n).map((m) => m.endpoint));
  await world.run(ms);
  const names = nodes.map((n) => n.name).sort();
  for (const n of nodes) expect(n.view()).toEqual(names);
}

describe('membership core', () => {
  it('a process whose name a newer one took is refused in the handshake: no flap, no leadership, one error naming NODE_NAME', async () => {
    // Before: the old process passed the handshake, was refused by membership, counted that
    // as a successful dial and redialled every 100–200 ms: 257 joins and 259 downs in 22 s,
    // and it led alone.
    const world = new CoreWorld(7);
    const old = await world.spawn('a@h1', 'h1');
    const b = await world.spawn('b@h2', 'h2');
    const c = await world.spawn('c@h3', 'h3');
    await mesh(world, [old, b, c]);
    expect(old.node.isLeader()).toBe(true);

    world.network.clockOf('h1').freeze();
    await world.run(12_000);
    expect(b.view()).toEqual(['b@h2', 'c@h3']);
    const fresh = await world.spawn('a@h1', 'h4');
    fresh.discovery.set([b.endpoint, c.endpoint]);
    b.discovery.set([c.endpoint, fresh.endpoint, old.endpoint]);
    c.discovery.set([b.endpoint, fresh.endpoint, old.endpoint]);
    await world.run(3000);
    expect(b.node.membership.member('a@h1')?.incarnation).toBe(fresh.node.self.incarnation);

    world.network.clockOf('h1').thaw();
    const before = old.events.length;
    await world.run(10_000);
    const after = old.events.slice(before);
    expect(after.filter((e) => e.type === 'join')).toEqual([]);
    expect(after.length).toBeLessThanOrEqual(2); // the two links it had, lost once each
    expect(old.view()).toEqual(['a@h1']);
    expect(old.node.membership.superseded).toBe(true);
    expect(old.node.isLeader()).toBe(false);
    expect(old.node.membership.leader()).toBeNull();
    expect(old.logger.at('error', /NODE_NAME a@h1 is taken by a newer process/)).toHaveLength(1);
    // Its peers keep their view and say so at most once a minute per address.
    await world.run(60_000);
    for (const peer of [b, c]) {
      expect(peer.view()).toEqual(['a@h1', 'b@h2', 'c@h3']);
      expect(peer.node.membership.member('a@h1')?.incarnation).toBe(fresh.node.self.incarnation);
      expect(types(peer, 'a@h1').filter((t) => t.startsWith('join')).length).toBe(2);
      expect(peer.logger.at('warn', /refused a link/).length).toBeLessThanOrEqual(2);
    }
    expect(world.time.uncaught).toEqual([]);
    await world.closeAll();
  });

  it('a discovery drop closes only the member advertising that endpoint, never a newer incarnation elsewhere', async () => {
    // Before: release() matched the name, so a stale endpoint closed the new incarnation's link.
    const world = new CoreWorld(3);
    const a = await world.spawn('a@h1', 'h1');
    const b = await world.spawn('b@h2', 'h2');
    await mesh(world, [a, b]);
    world.network.crash('h2');
    const b2 = await world.spawn('b@h2', 'h2', { port: 45894 });
    b2.discovery.set([a.endpoint]);
    await world.run(8000);
    expect(a.node.membership.member('b@h2')?.endpoint).toBe('h2:45894');
    a.discovery.set([]); // the stale h2:45893 is no longer discovered
    await world.run(3000);
    expect(a.view()).toEqual(['a@h1', 'b@h2']);
    expect(a.node.membership.member('b@h2')?.incarnation).toBe(b2.node.self.incarnation);
    expect(types(a, 'b@h2').filter((t) => t === 'leave:discovery')).toEqual([]);
    await world.closeAll();
  });

  it('a discovery drop is a leave on both ends; the dropped node is refused until discovery lists it again', async () => {
    // Before: the drop closed without LEAVE; the dropped node recorded a down, redialled at
    // once and was accepted — one leave/down/join cycle per poll.
    const world = new CoreWorld(5);
    const a = await world.spawn('a@h1', 'h1');
    const b = await world.spawn('b@h2', 'h2');
    await mesh(world, [a, b]);
    a.discovery.set([]);
    await world.run(30_000);
    expect(types(a, 'b@h2')).toEqual(['join:linked', 'leave:discovery']);
    expect(types(b, 'a@h1')).toEqual(['join:linked', 'leave:discovery']);
    expect(a.view()).toEqual(['a@h1']);
    expect(b.view()).toEqual(['b@h2']);
    // b still discovers a: it tries at the slow pace only (≤ one dial per 5 s), and is refused.
    expect(world.network.connects.get('h1:45893') ?? 0).toBeLessThanOrEqual(1 + 30_000 / 5000);
    a.discovery.set([b.endpoint]);
    await world.run(3000);
    expect(a.view()).toEqual(['a@h1', 'b@h2']);
    expect(b.view()).toEqual(['a@h1', 'b@h2']);
    await world.closeAll();
  });

  it('after a graceful leave nobody redials that incarnation, even when discovery still announces it', async () => {
    // Before: peers redialled the departed node every 2.5–5 s until gossip forgot it.
    const world = new CoreWorld(11);
    const a = await world.spawn('a@h1', 'h1');
    const b = await world.spawn('b@h2', 'h2');
    const c = await world.spawn('c@h3', 'h3');
    const withIncarnation = (n: WorldNode) => ({
      ...n.endpoint,
      incarnation: n.node.self.incarnation,
    });
    for (const n of [a, b, c])
      n.discovery.set([a, b, c].filter((m) => m !== n).map(withIncarnation));
    await world.run(3000);
    expect(a.view()).toEqual(['a@h1', 'b@h2', 'c@h3']);
    await world.during(b.node.leave());
    const dialsBefore = world.network.connects.get('h2:45893') ?? 0;
    // Gossip still announces b for a while (or a replayed packet does).
    for (const n of [a, c]) n.discovery.set([a, b, c].filter((m) => m !== n).map(withIncarnation));
    await world.run(30_000);
    expect(world.network.connects.get('h2:45893') ?? 0).toBe(dialsBefore);
    expect(types(a, 'b@h2')).toEqual(['join:linked', 'leave:shutdown']);
    expect(types(c, 'b@h2')).toEqual(['join:linked', 'leave:shutdown']);
    await world.closeAll();
  });

  it('endpoints learned from peers are forgotten once linked or unreachable: 10,000 churned through, constant state after', async () => {
    // Before: learned endpoints stayed in the map for ever (1,000 joined-and-left → 1,000 entries).
    const world = new CoreWorld(13);
    const a = await world.spawn('a@h1', 'h1');
    const b = await world.spawn('b@h2', 'h2');
    const c = await world.spawn('c@h3', 'h3');
    a.discovery.set([b.endpoint]);
    b.discovery.set([a.endpoint, c.endpoint]);
    c.discovery.set([b.endpoint]);
    await world.run(5000);
    expect(a.view()).toEqual(['a@h1', 'b@h2', 'c@h3']); // c learned through b
    expect(a.node.reconcilerStats()).toMatchObject({ targets: 1, learned: 0 });

    // A peer lists 10,000 endpoints nobody listens on, in frames of 2,500.
    for (let batch = 0; batch < 4; batch++) {
      const list = Array.from({ length: 2500 }, (_, i) => ({
        name: `ghost${batch * 2500 + i}@x`,
        incarnation: 'g',
        endpoint: `10.200.${batch}.${i % 250}:${40000 + Math.floor(i / 250)}`,
      }));
      b.node.membership.sendFrame('a@h1', FrameType.PEERS, Buffer.from(JSON.stringify(list)));
      await world.run(1000);
      expect(a.node.reconcilerStats()!.learned).toBeLessThanOrEqual(4096);
    }
    await world.run(120_000);
    expect(a.node.reconcilerStats()).toMatchObject({
      targets: 1,
      learned: 0,
      queued: 0,
      dialing: 0,
    });
    expect(a.view()).toEqual(['a@h1', 'b@h2', 'c@h3']);
    expect(world.time.uncaught).toEqual([]);
    await world.closeAll();
  });

  it('two nodes dialling each other at once keep one link and lose no frame sent right after the join', async () => {
    // Before: frames on the link that lost the tie-break were dropped silently.
    const world = new CoreWorld(17);
    // No jitter: both dial in the same millisecond.
    const a = await world.spawn('a@h1', 'h1', { reconnectBaseMs: 1 });
    const b = await world.spawn('b@h2', 'h2', { reconnectBaseMs: 1 });
    const received = { a: 0, b: 0 };
    a.node.membership.onFrame(40, () => received.a++);
    b.node.membership.onFrame(40, () => received.b++);
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      from.node.membership.changes.subscribe((change) => {
        if (change.type !== 'join') return;
        for (let i = 0; i < 5; i++) from.node.membership.sendFrame(to.name, 40, Buffer.from([i]));
      });
    }
    // No names in discovery: neither knows who sorts first, so both dial at once.
    a.discovery.set([{ host: 'h2', port: 45893 }]);
    b.discovery.set([{ host: 'h1', port: 45893 }]);
    await world.run(5000);
    expect(world.network.connects.get('h1:45893')).toBeGreaterThanOrEqual(1);
    expect(world.network.connects.get('h2:45893')).toBeGreaterThanOrEqual(1);
    expect([types(a, 'b@h2'), types(b, 'a@h1')]).toEqual([['join:linked'], ['join:linked']]);
    expect(received).toEqual({ a: 5, b: 5 });
    expect(types(a, 'b@h2')).toEqual(['join:linked']);
    expect(world.network.openWires('h1')).toBe(1);
    await world.closeAll();
  });

  it('connections reset at every stage of the start-up storm end no process', async () => {
    // Before: 22 of 100 nodes died on an unhandled 'error' (read ECONNRESET) during start-up.
    const world = new CoreWorld(19);
    const nodes: WorldNode[] = [];
    for (let i = 0; i < 12; i++) nodes.push(await world.spawn(`n${i}@h${i}`, `h${i}`));
    for (const n of nodes) n.discovery.set(nodes.filter((m) => m !== n).map((m) => m.endpoint));
    for (let t = 1; t <= 6; t++) {
      await world.run(2); // mid-connect, mid-handshake, right after the join
      world.network.crash(nodes[t].host);
    }
    const survivors = [nodes[0], ...nodes.slice(7)];
    for (const n of survivors)
      n.discovery.set(survivors.filter((m) => m !== n).map((m) => m.endpoint));
    await world.run(15_000);
    expect(world.time.uncaught).toEqual([]);
    const names = survivors.map((n) => n.name).sort();
    for (const n of survivors) expect(n.view()).toEqual(names);
    for (const n of survivors) await world.during(n.node.close());
  });

  it('discovery that returns this node under another name costs one dial and no log noise', async () => {
    const world = new CoreWorld(23);
    const a = await world.spawn('a@h1', 'h1');
    a.discovery.set([{ host: 'h1', port: 45893, name: 'someone-else@h1' }]);
    await world.run(30_000);
    expect(world.network.connects.get('h1:45893') ?? 0).toBeLessThanOrEqual(1);
    expect(a.events).toEqual([]);
    expect(a.logger.at('warn')).toEqual([]);
    expect(a.logger.at('error')).toEqual([]);
    await world.closeAll();
  });
});
