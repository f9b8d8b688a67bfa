/**
 * The heartbeat ring: each node holds only its ring neighbours' links to the failure timeout,
 * so a large cluster's idle heartbeats grow with its size, not with its size squared — while a
 * freeze or a partition is still seen by every node (the neighbours report it, the others probe).
 * Frames are counted on the in-memory wire, so these nodes' links carry them unsealed.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WatchRing } from '../../../lib/membership/watch-ring.js';
import { seededRandom } from '../../../lib/runtime/random.js';
import { FrameType } from '../../../lib/transport/frame-types.js';
import { CoreWorld, type WorldNode } from '../../support/core-world.js';
import { countWireFrames } from '../../support/wire-frames.js';

const names = (n: number): string[] => Array.from({ length: n }, (_, i) => `app@10.0.0.${i + 1}`);

function ringOf(self: string, all: readonly string[], perSide: number): WatchRing {
  const ring = new WatchRing(self, perSide);
  for (const name of all) ring.add(name);
  return ring;
}

async function meshOf(world: CoreWorld, n: number, perSide: number): Promise<WorldNode[]> {
  const nodes: WorldNode[] = [];
  for (let i = 0; i < n; i++) {
    nodes.push(
      await world.spawn(`n${i}@h${i}`, `h${i}`, {}, { sealLinks: false, watchedPerSide: perSide }),
    );
  }
  for (const node of nodes)
    node.discovery.set(nodes.filter((m) => m !== node).map((m) => m.endpoint));
  await world.run(8000);
  const all = nodes.map((node) => node.name).sort();
  for (const node of nodes) expect(node.view()).toEqual(all);
  return nodes;
}

describe('WatchRing', () => {
  it('a cluster of at most 2 × perSide + 1 members watches every member', () => {
    const all = names(9);
    for (const self of all) {
      const ring = ringOf(self, all, 4);
      expect(ring.complete).toBe(true);
      expect([...ring.watched()].sort()).toEqual(all.filter((n) => n !== self).sort());
    }
  });

  it('beyond that, each member watches 2 × perSide others, symmetrically, and is watched by as many', () => {
    const all = names(100);
    const watched = new Map(all.map((self) => [self, ringOf(self, all, 4).watched()]));
    const watchers = new Map(all.map((n) => [n, 0]));
    for (const [self, set] of watched) {
      expect(set.size).toBe(8);
      expect(set.has(self)).toBe(false);
      for (const other of set) {
        expect(watched.get(other)!.has(self)).toBe(true);
        watchers.set(other, watchers.get(other)! + 1);
      }
    }
    for (const count of watchers.values()) expect(count).toBe(8);
  });

  it('every split into two non-empty sides leaves each side watching a member of the other', () => {
    const all = names(60);
    const rings = new Map(all.map((self) => [self, ringOf(self, all, 2)]));
    const random = seededRandom(5);
    for (let trial = 0; trial < 500; trial++) {
      const side = new Set(all.filter(() => random.next() < 0.5));
      if (side.size === 0 || side.size === all.length) continue;
      const crosses = (inSide: boolean): boolean =>
        all.some(
          (self) =>
            side.has(self) === inSide &&
            [...rings.get(self)!.watched()].some((other) => side.has(other) !== inSide),
        );
      expect(crosses(true)).toBe(true);
      expect(crosses(false)).toBe(true);
    }
  });

  it('adding and removing members leaves the ring a fresh ring of the rest would be', () => {
    const all = names(40);
    const ring = ringOf(all[0], all, 3);
    for (const gone of all.slice(10, 30)) ring.delete(gone);
    ring.delete(all[0]); // this node stays on its own ring
    const rest = [...all.slice(0, 10), ...all.slice(30)];
    expect(ring.size).toBe(rest.length);
    expect([...ring.watched()].sort()).toEqual([...ringOf(all[0], rest, 3).watched()].sort());
  });
});

describe('heartbeat ring between real nodes', () => {
  afterEach(() => vi.restoreAllMocks());

  it('an idle cluster of 16 with 2 neighbours a side sends under half the heartbeats of the full mesh', async () => {
    const idle = async (perSide: number): Promise<number> => {
      const world = new CoreWorld(41);
      await meshOf(world, 16, perSide);
      await world.run(10_000);
      const frames = countWireFrames();
      await world.run(30_000);
      const heartbeats = frames.get(FrameType.HEARTBEAT) ?? 0;
      vi.restoreAllMocks();
      await world.closeAll();
      return heartbeats;
    };
    const full = await idle(8);
    const ring = await idle(2);
    // Full mesh: 120 links, one probe and one answer per 3 s each: about 2,400 in 30 s.
    expect(full).toBeGreaterThan(2000);
    // Ring: 32 watched links at that pace, 88 others at one round trip per 15 s: about 1,000.
    expect(ring).toBeLessThan(full / 2);
  });

  it('a frozen member is down on every node within the failure timeout and one probe window, and nobody else goes down', async () => {
    const world = new CoreWorld(43);
    const nodes = await meshOf(world, 16, 2);
    const victim = nodes[7];
    const frozenAt = world.time.now;
    world.network.clockOf(victim.host).freeze();
    const others = nodes.filter((n) => n !== victim);
    const downAt = new Map<string, number>();
    for (let t = 0; t < 12_000 && downAt.size < others.length; t += 100) {
      await world.run(100);
      for (const n of others) {
        if (!downAt.has(n.name) && !n.view().includes(victim.name))
          downAt.set(n.name, world.time.now);
      }
    }
    expect(downAt.size).toBe(others.length);
    // Watchers close at 5 s (+ a tick); their report makes the others probe; 2 s later the
    // others close too (+ a tick, + a heartbeat interval for the reachability wait).
    for (const at of downAt.values()) expect(at - frozenAt).toBeLessThanOrEqual(5000 + 2000 + 2000);
    const survivors = others.map((n) => n.name).sort();
    for (const n of others) {
      expect(n.view()).toEqual(survivors);
      expect(n.events.filter((e) => e.type === 'down' && e.member.name !== victim.name)).toEqual(
        [],
      );
    }
    world.network.clockOf(victim.host).thaw();
    await world.closeAll();
  });

  it('a 7|9 partition: each side sees only itself within two failure windows, and the heal rejoins them', async () => {
    const world = new CoreWorld(47);
    const nodes = await meshOf(world, 16, 2);
    const a = nodes.slice(0, 7);
    const b = nodes.slice(7);
    world.network.partition(
      a.map((n) => n.host),
      b.map((n) => n.host),
    );
    await world.run(5000 + 2000 + 2000);
    for (const side of [a, b]) {
      const own = side.map((n) => n.name).sort();
      for (const n of side) expect(n.view()).toEqual(own);
    }
    world.network.heal();
    for (const n of nodes) n.discovery.set(nodes.filter((m) => m !== n).map((m) => m.endpoint));
    await world.run(15_000);
    const all = nodes.map((n) => n.name).sort();
    for (const n of nodes) expect(n.view()).toEqual(all);
    await world.closeAll();
  });
});
