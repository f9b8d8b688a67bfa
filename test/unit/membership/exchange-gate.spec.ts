/**
 * The quiet gate of the digest exchange: while membership keeps changing (a start-up storm),
 * due digest exchanges wait for a quiet moment instead of comparing views that differ
 * everywhere. Frames are counted on the in-memory wire (every frame every node writes), so
 * these nodes' links carry them unsealed (`sealLinks: false`, the benchmarks' seam): sealing
 * sits below membership and changes no frame it sends.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { dialsFirst } from '../../../lib/identity/identity.js';
import { decodeHave, encodeHave } from '../../../lib/membership/peer-digest.js';
import { FrameType } from '../../../lib/transport/frame-types.js';
import { CoreWorld, type WorldNode } from '../../support/core-world.js';
import { countWireFrames, watchWireFrames } from '../../support/wire-frames.js';

type Counts = Record<'digest' | 'have' | 'peers', number>;

/** Links in the clear, so that the wire shows the frames. */
const UNSEALED = { sealLinks: false } as const;
const UNSEALED_CAP = (cap: number) => ({
  sealLinks: false,
  peerExchange: { exchangeQuietCapMs: cap },
});

/** Counts the membership frames every in-memory wire carries from now on. */
function countFrames(): Counts {
  const frames = countWireFrames();
  return {
    get digest() {
      return frames.get(FrameType.PEERS_DIGEST) ?? 0;
    },
    get have() {
      return frames.get(FrameType.PEERS_HAVE) ?? 0;
    },
    get peers() {
      return frames.get(FrameType.PEERS) ?? 0;
    },
  };
}

/**
 * A storm that lasts: `n` nodes start 250 ms apart, and each start is discovered by every
 * node already running (as gossip would hear it), so membership changes on every node about
 * four times a second for `n / 4` seconds. Returns the frames counted once all are linked
 * and the exchanges due have run.
 */
async function slowStorm(
  seed: number,
  n: number,
  peerExchange: { exchangeQuietCapMs: number },
): Promise<{ counts: Counts; views: string[][]; names: string[] }> {
  const world = new CoreWorld(seed);
  const counts = countFrames();
  const nodes: WorldNode[] = [];
  for (let i = 0; i < n; i++) {
    nodes.push(await world.spawn(`n${i}@h${i}`, `h${i}`, {}, { peerExchange, sealLinks: false }));
    for (const node of nodes) {
      node.discovery.set(nodes.filter((m) => m !== node).map((m) => m.endpoint));
    }
    await world.run(250);
  }
  await world.run(5000);
  const result = {
    counts: { ...counts },
    views: nodes.map((node) => node.view()),
    names: nodes.map((node) => node.name).sort(),
  };
  vi.restoreAllMocks();
  await world.closeAll();
  return result;
}

describe('digest exchange quiet gate', () => {
  afterEach(() => vi.restoreAllMocks());

  it('a 10 s start-up storm sends digests only after it, and no member lists; without the gate, digests race the storm and ship lists', async () => {
    const n = 40;
    const gated = await slowStorm(71, n, { exchangeQuietCapMs: 30_000 });
    const ungated = await slowStorm(71, n, { exchangeQuietCapMs: 0 });
    for (const run of [gated, ungated]) {
      for (const view of run.views) expect(view).toEqual(run.names);
    }
    // Gated: one digest per link (the first of the pair sends it once the storm is over);
    // the views are equal by then, so nothing answers it.
    // (Plus the periodic exchange with one random member every 10 s.)
    expect(gated.counts.digest).toBeGreaterThanOrEqual((n * (n - 1)) / 2);
    expect(gated.counts.digest).toBeLessThanOrEqual((n * (n - 1)) / 2 + 2 * n);
    expect(gated.counts.have).toBe(0);
    expect(gated.counts.peers).toBe(0);
    // Without waiting, each digest meets a view that moved on: hashes and lists go back.
    expect(ungated.counts.have).toBeGreaterThan(n * 5);
    expect(ungated.counts.peers).toBeGreaterThan(n * 5);
    const total = (c: Counts): number => c.digest + c.have + c.peers;
    expect(total(ungated.counts)).toBeGreaterThan(1.5 * total(gated.counts));
  });

  it('an exchange still runs within the cap while membership never quiets', async () => {
    // c is only known to b; a learns it through the exchange a starts with b (a is first in
    // the pair's order) — which the gate delays while a's membership is busy, but not past the
    // cap: a discovers a newcomer every 600 ms, so it is never quiet for a second.
    const world = new CoreWorld(73);
    const cap = 4000;
    const aName = Array.from({ length: 50 }, (_, k) => `a${k}@h1`).find((name) =>
      dialsFirst(name, 'b@h2'),
    )!;
    const a = await world.spawn(aName, 'h1', {}, UNSEALED_CAP(cap));
    const b = await world.spawn('b@h2', 'h2', {}, UNSEALED_CAP(cap));
    const c = await world.spawn('c@h3', 'h3', {}, UNSEALED_CAP(cap));
    b.discovery.set([c.endpoint]);
    await world.run(4000); // linked, and their own exchange done
    expect(b.view()).toEqual(['b@h2', 'c@h3']);
    const newcomers: WorldNode[] = [];
    a.discovery.set([b.endpoint]);
    let joinedC = -1;
    const start = world.time.now;
    for (let i = 0; i < 20 && joinedC < 0; i++) {
      const f = await world.spawn(`f${i}@g${i}`, `g${i}`, {}, UNSEALED);
      f.discovery.set([a.endpoint]); // both know each other: the first in the pair's order dials at once
      newcomers.push(f);
      a.discovery.set([b.endpoint, ...newcomers.map((f) => f.endpoint)]);
      await world.run(600);
      if (a.view().includes('c@h3')) joinedC = world.time.now - start;
    }
    // Linked to b within a few ms (a dials first); the exchange is due 1 s later and waits for
    // the cap, not for the quiet moment that never comes; then the dial to c (at most the
    // 1.5 s grace of the second in the pair's order) and the 600 ms step of this loop.
    expect(joinedC).toBeGreaterThanOrEqual(cap);
    expect(joinedC).toBeLessThanOrEqual(1000 + cap + 1500 + 600);
    expect(a.view().length).toBeGreaterThan(3 + 5);
    await world.closeAll();
  });
});

describe('PEERS_HAVE', () => {
  afterEach(() => vi.restoreAllMocks());

  it('round-trips and rejects malformed, oversized and unknown-version frames', () => {
    const buckets = [
      { bucket: 0, hashes: [1, 0xffffffff] },
      { bucket: 63, hashes: [] },
    ];
    const frame = encodeHave(true, buckets);
    expect(decodeHave(frame)).toEqual({ reply: true, buckets });
    expect(decodeHave(frame.subarray(0, frame.length - 1))).toBeUndefined();
    expect(decodeHave(Buffer.concat([frame, Buffer.alloc(1)]))).toBeUndefined();
    const version = Buffer.from(frame);
    version[0] = 9;
    expect(decodeHave(version)).toBeUndefined();
    expect(decodeHave(encodeHave(false, [{ bucket: 64, hashes: [] }]))).toBeUndefined();
    const huge = encodeHave(false, [
      { bucket: 1, hashes: Array.from({ length: 60_000 }, (_, i) => i) },
    ]);
    expect(decodeHave(huge)).toBeUndefined();
  });

  it('a newcomer that discovers half of a 40-node cluster is sent only the members it lacks', async () => {
    // Before: every exchange sent all members of every differing bucket — mostly members the
    // newcomer had already (here about 20 of the 40 at every exchange).
    const world = new CoreWorld(79);
    const old: WorldNode[] = [];
    for (let i = 0; i < 40; i++) old.push(await world.spawn(`m${i}@k${i}`, `k${i}`, {}, UNSEALED));
    for (const n of old) n.discovery.set(old.filter((m) => m !== n).map((m) => m.endpoint));
    await world.run(5000);
    const newcomer = await world.spawn('z@k99', 'k99', {}, UNSEALED);
    let learned = 0;
    newcomer.node.membership.changes.subscribe((c) => {
      if (c.type === 'learned') learned += c.endpoints.length;
    });
    let listedToNewcomer = 0;
    watchWireFrames((wire, f) => {
      if (f.type !== FrameType.PEERS || wire.remoteAddress !== 'k99') return;
      const body = JSON.parse(f.payload.toString('utf8')) as { p: unknown[] };
      listedToNewcomer += body.p.length;
    });
    for (const n of old.slice(0, 20))
      n.discovery.set([...old, newcomer].filter((m) => m !== n).map((m) => m.endpoint));
    newcomer.discovery.set(old.slice(0, 20).map((n) => n.endpoint));
    await world.run(40_000);
    const names = [...old.map((n) => n.name), newcomer.name].sort();
    for (const n of [...old, newcomer]) expect(n.view()).toEqual(names);
    // The 20 members it did not discover, each sent to it about once.
    expect(learned).toBeGreaterThanOrEqual(20);
    expect(learned).toBeLessThanOrEqual(2 * 20);
    // Nothing it had: what was listed to it is what it learned.
    expect(listedToNewcomer).toBe(learned);
    vi.restoreAllMocks();
    await world.closeAll();
  });
});
