import { randomBytes, randomUUID } from 'node:crypto';
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { GossipSocketError } from '../../../lib/errors/gossip-socket.error.js';
import {
  GOSSIP_MAGIC,
  GossipKeyring,
  createGossipNonce,
  deriveGossipKey,
  formatKeyId,
  openHeartbeat,
  sealHeartbeat,
  type GossipHeartbeat,
} from '../../../lib/strategies/gossip/gossip-packet.js';
import {
  GossipStrategy,
  type GossipStrategyConfig,
} from '../../../lib/strategies/gossip.strategy.js';
import { gossipGroupScale } from '../../../lib/strategies/gossip/gossip-session.js';
import { FakeStrategyContext, fakeMember } from './fake-context.js';

/** Matches any incarnation token (a string). */
const ANY_INCARNATION: unknown = expect.any(String);

/**
 * Real UDP. Inside the private network namespace of scripts/in-netns.sh multicast stays on
 * `lo` and 127.0.0.2, 127.0.0.3 … act as separate hosts. Outside it every socket is pinned
 * to 127.0.0.1 for multicast and the test with production defaults is skipped.
 */
const NETNS = process.env.CLUSTER_TEST_NETNS === '1';
const GROUP = '233.252.1.32';
const SECRET = 'gossip-test-secret';
const KEY = deriveGossipKey(SECRET);
// Every secret of this file, derived once up front (scrypt, memoised per process): a strategy
// whose keys are derived already opens its socket within `start()`, so each node's first
// heartbeat finds the nodes started before it listening — what these tests script. (A node
// started with a secret new to its process opens once the keys are ready, off the event loop.)
for (const secret of [
  'cookie-a',
  'cookie-b',
  'the-cookie',
  'cluster-one',
  'cluster-two',
  'new',
  'old',
  'own-secret',
  'secret-a',
  'secret-b',
])
  deriveGossipKey(secret);

let nextPort = 20_000 + Math.floor(Math.random() * 20_000);
const freshPort = (): number => nextPort++;
const hostOf = (i: number): string => (NETNS ? `127.0.0.${i}` : '127.0.0.1');

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

interface TestNode {
  readonly strategy: GossipStrategy;
  readonly ctx: FakeStrategyContext;
  readonly name: string;
}

/** A strategy on "host" 127.0.0.i with a recording context; stopped after the test. */
function node(
  i: number,
  config: GossipStrategyConfig,
  self: { name?: string; linkPort?: number; debug?: boolean } = {},
): TestNode {
  const host = `127.0.0.${i}`;
  const name = self.name ?? `app${i}@${host}`;
  const ctx = new FakeStrategyContext(
    { name, endpoint: `${host}:${self.linkPort ?? 45893}` },
    { debug: self.debug ?? true },
  );
  const strategy = new GossipStrategy({ secret: SECRET, multicastIf: hostOf(i), ...config });
  cleanups.push(() => strategy.stop());
  return { strategy, ctx, name };
}

/** A plain UDP socket for the test itself (multicast pinned to loopback). */
async function rawSocket(
  options: { port?: number; address?: string; join?: boolean } = {},
): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  cleanups.push(() => socket.close());
  await new Promise<void>((resolve) =>
    socket.bind({ port: options.port ?? 0, address: options.address ?? '0.0.0.0' }, resolve),
  );
  socket.setMulticastInterface('127.0.0.1');
  socket.setMulticastLoopback(true);
  if (options.join) socket.addMembership(GROUP, '127.0.0.1');
  return socket;
}

function sendTo(
  socket: dgram.Socket,
  packet: Buffer,
  port: number,
  address = '127.0.0.1',
): Promise<void> {
  return new Promise((resolve, reject) =>
    socket.send(packet, port, address, (error) => (error ? reject(error) : resolve())),
  );
}

function packet(overrides: Partial<GossipHeartbeat> = {}, key = KEY): Buffer {
  return sealHeartbeat(key, {
    kind: 'heartbeat',
    sentAt: Date.now(),
    nonce: createGossipNonce(),
    protocolVersion: 1,
    name: `forged-${randomUUID().slice(0, 8)}@127.0.0.99`,
    incarnation: randomUUID(),
    startedAt: Date.now(),
    endpoint: '127.0.0.99:45893',
    ...overrides,
  });
}

/**
 * Sends `packets` in batches of 50 and waits for `receiver` to read each batch: on loopback,
 * whatever overflows the receiving socket's buffer is silently lost. With `exact`, every
 * packet must arrive; otherwise a batch that does not fully arrive within 500 ms is let go.
 */
async function sendPaced(
  socket: dgram.Socket,
  packets: readonly Buffer[],
  port: number,
  receiver: GossipStrategy,
  options: { address?: string; exact?: boolean } = {},
): Promise<void> {
  for (let i = 0; i < packets.length; i += 50) {
    const batch = packets.slice(i, i + 50);
    const expected = receiver.stats().packetsReceived + batch.length;
    await Promise.all(batch.map((p) => sendTo(socket, p, port, options.address)));
    const arrived = until(
      () => receiver.stats().packetsReceived >= expected,
      options.exact ? 2000 : 500,
      `batch ${i / 50 + 1}`,
    );
    await (options.exact ? arrived : arrived.catch(() => undefined));
  }
}

/** Polls `condition` every 5 ms; rejects with `description` after `timeoutMs`. */
async function until(
  condition: () => boolean,
  timeoutMs: number,
  description: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Predicate: the last set `n` handed to the core contains every one of `names`. */
const sees =
  (_n: TestNode, ...names: string[]) =>
  (c: FakeStrategyContext) =>
    names.every((name) => c.lastConnect.some((e) => e.name === name));

describe('GossipStrategy discovery (real UDP multicast)', () => {
  it('two nodes discover each other within milliseconds thanks to the immediate answer', async () => {
    const port = freshPort();
    // 60 s heartbeats: only the first heartbeat and the immediate answer can explain discovery.
    const a = node(2, { port, heartbeatMaxMs: 60_000 });
    const b = node(3, { port, heartbeatMaxMs: 60_000 });
    await a.strategy.start(a.ctx);
    const t0 = performance.now();
    await b.strategy.start(b.ctx);
    await Promise.all([
      a.ctx.waitFor(sees(a, b.name), 2000, `${b.name}`),
      b.ctx.waitFor(sees(b, a.name), 2000, `${a.name}`),
    ]);
    const elapsed = performance.now() - t0;
    console.info(`[gossip] 2 nodes discovered each other in ${elapsed.toFixed(1)} ms`);

    expect(a.ctx.lastConnect).toEqual([
      { host: '127.0.0.3', port: 45893, name: b.name, incarnation: ANY_INCARNATION },
    ]);
    expect(b.ctx.lastConnect).toEqual([
      { host: '127.0.0.2', port: 45893, name: a.name, incarnation: ANY_INCARNATION },
    ]);
    expect(a.strategy.stats()).toMatchObject({ open: true, heartbeatsSent: 1, repliesSent: 1 });
    expect(b.strategy.stats()).toMatchObject({ open: true, heartbeatsSent: 1, repliesSent: 0 });
    expect(a.ctx.oks).toHaveLength(1);
    expect(a.ctx.errors).toEqual([]);
  });

  it('three nodes started one after another all converge without waiting for a heartbeat round', async () => {
    const port = freshPort();
    const nodes = [2, 3, 4].map((i) =>
      node(i, { port, heartbeatMaxMs: 60_000 }, { linkPort: 40_000 + i }),
    );
    const t0 = performance.now();
    for (const n of nodes) await n.strategy.start(n.ctx);
    await Promise.all(
      nodes.map((n) => {
        const others = nodes.filter((o) => o !== n).map((o) => o.name);
        return n.ctx.waitFor(sees(n, ...others), 2000, others.join(', '));
      }),
    );
    const elapsed = performance.now() - t0;
    console.info(`[gossip] 3 nodes converged in ${elapsed.toFixed(1)} ms`);
    // One heartbeat each (the one start() sends; the next would come after 60 s): the
    // answers did the rest, so no node waited for a heartbeat round.
    for (const n of nodes) expect(n.strategy.stats().heartbeatsSent).toBe(1);
    expect(nodes[0].ctx.lastConnect).toEqual([
      { host: '127.0.0.3', port: 40_003, name: 'app3@127.0.0.3', incarnation: ANY_INCARNATION },
      { host: '127.0.0.4', port: 40_004, name: 'app4@127.0.0.4', incarnation: ANY_INCARNATION },
    ]);
    // no node ever hands itself to the core
    for (const n of nodes) expect(n.ctx.connects.flat().some((e) => e.name === n.name)).toBe(false);
  });

  it.skipIf(!NETNS)(
    'works with the production defaults (port 45892, group 233.252.1.32, no multicastIf)',
    async () => {
      const a = node(2, { multicastIf: undefined });
      const b = node(3, { multicastIf: undefined });
      await a.strategy.start(a.ctx);
      await b.strategy.start(b.ctx);
      await Promise.all([
        a.ctx.waitFor(sees(a, b.name), 2000, b.name),
        b.ctx.waitFor(sees(b, a.name), 2000, a.name),
      ]);
      expect(a.ctx.lastConnect[0]).toEqual({
        host: '127.0.0.3',
        port: 45893,
        name: b.name,
        incarnation: ANY_INCARNATION,
      });
    },
  );

  it('keys from the cookie when no secret is set, interoperating with an equal secret', async () => {
    const port = freshPort();
    const a = node(2, { port, secret: undefined, cookie: 'the-cookie', heartbeatMaxMs: 60_000 });
    const b = node(3, { port, secret: 'the-cookie', cookie: 'ignored', heartbeatMaxMs: 60_000 });
    await a.strategy.start(a.ctx);
    await b.strategy.start(b.ctx);
    await Promise.all([
      a.ctx.waitFor(sees(a, b.name), 2000, b.name),
      b.ctx.waitFor(sees(b, a.name), 2000, a.name),
    ]);
  });

  it('nodes with different secrets share the group but never see each other', async () => {
    const port = freshPort();
    const a = node(2, { port, secret: 'cluster-one', heartbeatMaxMs: 200 });
    const b = node(3, { port, secret: 'cluster-two', heartbeatMaxMs: 200 });
    const c = node(4, { port, secret: 'cluster-one', heartbeatMaxMs: 200 });
    await a.strategy.start(a.ctx);
    await b.strategy.start(b.ctx);
    await c.strategy.start(c.ctx);
    // several heartbeat rounds of the other cluster arrive and fail authentication
    await until(
      () => a.strategy.stats().dropped.key >= 5 && b.strategy.stats().dropped.key >= 5,
      5000,
      'foreign heartbeats',
    );
    expect(a.ctx.lastConnectNames).toEqual([c.name]);
    expect(b.ctx.connects).toEqual([]);
    expect(a.ctx.logger.at('warn').some((l) => l.includes('failed authentication'))).toBe(true);
  });

  it('forgets a silent peer, but never one that is a member', async () => {
    const port = freshPort();
    const a = node(2, { port, heartbeatMaxMs: 150 });
    const b = node(3, { port, heartbeatMaxMs: 150 });
    const c = node(4, { port, heartbeatMaxMs: 150 });
    for (const n of [a, b, c]) await n.strategy.start(n.ctx);
    await a.ctx.waitFor(sees(a, b.name, c.name), 2000, 'b and c');
    a.ctx.otherMembers = [fakeMember(b.name, '127.0.0.3:45893')];
    b.strategy.stop();
    c.strategy.stop();
    // c expires after 3 × 150 ms of silence; b is a member (its link is up) and stays
    await a.ctx.waitFor((ctx) => ctx.lastConnectNames.join() === b.name, 3000, 'c to expire');
    const expiredAt = Date.now();
    await until(() => Date.now() - expiredAt > 600, 1000, 'several more expiry rounds');
    expect(a.ctx.lastConnectNames).toEqual([b.name]);
    a.ctx.otherMembers = [];
    await a.ctx.waitFor(
      (ctx) => ctx.lastConnect.length === 0,
      3000,
      'b to expire once no longer a member',
    );
  });

  it('replaces a peer by its newer incarnation and ignores the older one', async () => {
    const port = freshPort();
    const a = node(2, { port, heartbeatMaxMs: 60_000 });
    await a.strategy.start(a.ctx);
    const raw = await rawSocket();
    const name = 'restarted@127.0.0.20';
    const t = Date.now();
    await sendTo(
      raw,
      packet({ name, incarnation: 'old', startedAt: t - 1000, endpoint: '127.0.0.20:1000' }),
      port,
    );
    await a.ctx.waitFor((c) => c.lastConnect.some((e) => e.port === 1000), 2000, 'old incarnation');
    await sendTo(
      raw,
      packet({ name, incarnation: 'new', startedAt: t, endpoint: '127.0.0.20:2000' }),
      port,
    );
    await a.ctx.waitFor((c) => c.lastConnect.some((e) => e.port === 2000), 2000, 'new incarnation');
    await sendTo(
      raw,
      packet({ name, incarnation: 'old', startedAt: t - 1000, endpoint: '127.0.0.20:1000' }),
      port,
    );
    await until(
      () => a.strategy.stats().dropped['older-incarnation'] === 1,
      2000,
      'older incarnation dropped',
    );
    expect(a.ctx.lastConnect).toEqual([
      { host: '127.0.0.20', port: 2000, name, incarnation: 'new' },
    ]);
    expect(a.ctx.connects).toHaveLength(2);
  });

  it('takes the sender address when the endpoint host is unspecified (0.0.0.0)', async () => {
    const port = freshPort();
    const a = node(2, { port, heartbeatMaxMs: 60_000 });
    await a.strategy.start(a.ctx);
    const raw = await rawSocket({ address: '127.0.0.7' });
    await sendTo(raw, packet({ name: 'wild@card', endpoint: '0.0.0.0:4000' }), port);
    await a.ctx.waitFor((c) => c.lastConnect.length === 1, 2000, 'wildcard endpoint');
    expect(a.ctx.lastConnect).toEqual([
      { host: '127.0.0.7', port: 4000, name: 'wild@card', incarnation: ANY_INCARNATION },
    ]);
  });

  it('answers a newly heard peer with one unicast heartbeat, rate-limited per peer', async () => {
    const port = freshPort();
    const a = node(2, { port, heartbeatMaxMs: 60_000 });
    await a.strategy.start(a.ctx);
    const raw = await rawSocket();
    const answers: Buffer[] = [];
    raw.on('message', (m) => answers.push(m));
    const name = 'chatty@127.0.0.30';
    const incarnation = randomUUID();
    for (let i = 0; i < 20; i++)
      await sendTo(raw, packet({ name, incarnation, endpoint: '127.0.0.30:1' }), port);
    await until(() => a.strategy.stats().heartbeatsAccepted === 20, 2000, '20 heartbeats');
    await until(() => answers.length >= 1, 2000, 'the answer');
    expect(a.strategy.stats().repliesSent).toBe(1);
    // a reply is never answered (no ping-pong)
    await sendTo(
      raw,
      packet({ kind: 'reply', name: 'quiet@127.0.0.31', endpoint: '127.0.0.31:1' }),
      port,
    );
    await a.ctx.waitFor((c) => c.lastConnectNames.includes('quiet@127.0.0.31'), 2000, 'quiet');
    expect(a.strategy.stats().repliesSent).toBe(1);
  });

  it('answers a peer heard before that is not a member yet at most every 10 s, not every heartbeat', async () => {
    const port = freshPort();
    let offset = 0;
    const a = node(2, { port, heartbeatMaxMs: 60_000, now: () => Date.now() + offset });
    await a.strategy.start(a.ctx);
    const raw = await rawSocket();
    const answers: Buffer[] = [];
    raw.on('message', (m) => answers.push(m));
    const peer = { name: 'slow@127.0.0.32', incarnation: randomUUID(), endpoint: '127.0.0.32:1' };
    const heartbeat = (): Buffer => packet({ ...peer, sentAt: Date.now() + offset });
    await sendTo(raw, heartbeat(), port);
    await until(() => answers.length === 1, 2000, 'the answer to a new peer');
    // 2 s later, still not a member: its link is on the way, no second answer yet
    offset += 2000;
    await sendTo(raw, heartbeat(), port);
    await until(() => a.strategy.stats().heartbeatsAccepted === 2, 2000, 'second heartbeat');
    // 11 s after the first answer: answered again
    offset += 9000;
    await sendTo(raw, heartbeat(), port);
    await until(() => answers.length >= 2, 2000, 'the answer after 10 s');
    // answers from one socket arrive in order: one for the second heartbeat would be here by now
    expect(answers).toHaveLength(2);
    expect(a.strategy.stats()).toMatchObject({ heartbeatsAccepted: 3, repliesSent: 2 });
  });
});

describe('GossipStrategy against hostile packets', () => {
  it('drops truncated and bit-flipped packets, then accepts the intact one', async () => {
    const port = freshPort();
    const a = node(2, { port, heartbeatMaxMs: 60_000 });
    await a.strategy.start(a.ctx);
    const raw = await rawSocket();
    const valid = packet({ name: 'victim@127.0.0.40', endpoint: '127.0.0.40:45893' });
    const bad: Buffer[] = [];
    for (let length = 0; length < valid.length; length++) bad.push(valid.subarray(0, length));
    for (let i = 0; i < valid.length; i++) {
      const flipped = Buffer.from(valid);
      flipped[i] = flipped[i] ^ 0x40;
      bad.push(flipped);
    }
    const sent = bad.length;
    await sendPaced(raw, bad, port, a.strategy, { exact: true });
    expect(a.ctx.connects).toEqual([]);
    await sendTo(raw, valid, port);
    await a.ctx.waitFor((c) => c.lastConnect.length === 1, 2000, 'the intact packet');
    const stats = a.strategy.stats();
    console.info(
      `[gossip] ${sent} truncated/bit-flipped packets dropped: ${JSON.stringify(stats.dropped)}`,
    );
    expect(stats.packetsReceived).toBe(sent + 1 + 1); // + the intact one + our own heartbeat looped back
    expect(stats.heartbeatsAccepted).toBe(1);
    expect(a.ctx.connects).toEqual([
      [
        {
          host: '127.0.0.40',
          port: 45893,
          name: 'victim@127.0.0.40',
          incarnation: ANY_INCARNATION,
        },
      ],
    ]);
  });

  it('drops packets sealed with a wrong key', async () => {
    const port = freshPort();
    const a = node(2, { port, heartbeatMaxMs: 60_000 });
    await a.strategy.start(a.ctx);
    const raw = await rawSocket();
    const wrong = deriveGossipKey('not the secret');
    for (let i = 0; i < 10; i++) await sendTo(raw, packet({}, wrong), port);
    await until(() => a.strategy.stats().dropped.key === 10, 2000, '10 wrong-key drops');
    expect(a.strategy.stats().dropped.auth).toBe(0);
    expect(a.ctx.connects).toEqual([]);
  });

  it('warns once for a burst of wrong-key packets, naming the sender and the variables that must match', async () => {
    const port = freshPort();
    // debug off: the warning is shown at the default level
    const a = node(2, { port, heartbeatMaxMs: 60_000 }, { debug: false });
    await a.strategy.start(a.ctx);
    const raw = await rawSocket({ address: hostOf(5) });
    const rawPort = raw.address().port;
    const wrong = deriveGossipKey('another cluster');
    const burst = Array.from({ length: 40 }, () => packet({}, wrong));
    await sendPaced(raw, burst, port, a.strategy, { exact: true });
    await until(() => a.strategy.stats().dropped.key === 40, 2000, '40 wrong-key drops');
    const warnings = a.ctx.logger.at('warn').filter((l) => l.includes('failed authentication'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`packet from ${hostOf(5)}:${rawPort} failed authentication`);
    expect(warnings[0]).toContain(`its key id ${formatKeyId(wrong.id)}`);
    expect(warnings[0]).toContain(`this node seals with ${formatKeyId(KEY.id)}`);
    expect(warnings[0]).toContain('LIBCLUSTER_GOSSIP_SECRET');
    expect(warnings[0]).toContain('NODE_COOKIE');
    expect(warnings[0]).toContain(`Another cluster on the same multicast group ${GROUP}:${port}`);
    expect(a.ctx.connects).toEqual([]);
  });

  it('ignores a packet claiming our own name with another incarnation', async () => {
    const port = freshPort();
    const a = node(2, { port, heartbeatMaxMs: 60_000 });
    await a.strategy.start(a.ctx);
    const raw = await rawSocket();
    await sendTo(
      raw,
      packet({ name: a.name, incarnation: randomUUID(), endpoint: '127.0.0.66:45893' }),
      port,
    );
    await until(
      () => a.strategy.stats().dropped['self-incarnation'] === 1,
      2000,
      'self-incarnation drop',
    );
    expect(a.ctx.connects).toEqual([]);
    expect(a.ctx.logger.at('debug').some((l) => l.includes('claims our node name'))).toBe(true);
  });

  it('drops a captured heartbeat replayed after its nonce was seen, and packets stamped outside ±30 s', async () => {
    const port = freshPort();
    const listener = await rawSocket({ port, join: true });
    const a = node(2, { port, heartbeatMaxMs: 150 });
    const b = node(3, { port, heartbeatMaxMs: 60_000 });
    await a.strategy.start(a.ctx);
    // capture b's first heartbeat (sent to the group at start) as an eavesdropper would
    const fromB = new Promise<Buffer>((resolve) =>
      listener.on('message', (m) => {
        const opened = openHeartbeat(new GossipKeyring(KEY), m);
        if (opened.ok && opened.heartbeat.name === b.name) resolve(Buffer.from(m));
      }),
    );
    await b.strategy.start(b.ctx);
    const replayed = await fromB;
    await a.ctx.waitFor(sees(a, b.name), 2000, b.name);

    // b goes away; a forgets it after 3 × 150 ms of silence
    b.strategy.stop();
    await a.ctx.waitFor(
      (c) => c.connects.length >= 2 && c.lastConnect.length === 0,
      3000,
      'b to expire',
    );

    // the replay (well within ±30 s, so only the nonce check stops it), then a fresh control packet
    await sendTo(listener, replayed, port, GROUP);
    await sendTo(
      listener,
      packet({ name: 'control@127.0.0.50', endpoint: '127.0.0.50:45893' }),
      port,
      GROUP,
    );
    await a.ctx.waitFor(
      (c) => c.lastConnectNames.includes('control@127.0.0.50'),
      2000,
      'control packet',
    );
    expect(a.ctx.lastConnectNames).toEqual(['control@127.0.0.50']);
    expect(a.strategy.stats().dropped.replay).toBeGreaterThanOrEqual(1);

    // old and future timestamps with fresh nonces
    await sendTo(
      listener,
      packet({ name: 'old@127.0.0.51', sentAt: Date.now() - 31_000 }),
      port,
      GROUP,
    );
    await sendTo(
      listener,
      packet({ name: 'future@127.0.0.52', sentAt: Date.now() + 31_000 }),
      port,
      GROUP,
    );
    await sendTo(listener, packet({ name: 'control2@127.0.0.53' }), port, GROUP);
    await a.ctx.waitFor(
      (c) => c.lastConnectNames.includes('control2@127.0.0.53'),
      2000,
      'second control packet',
    );
    expect(a.ctx.lastConnectNames).toEqual(['control2@127.0.0.53', 'control@127.0.0.50']);
    expect(a.strategy.stats().dropped).toMatchObject({ stale: 1, future: 1 });

    // the captured real packet, to a node whose clock is 31 s ahead: too old there
    const port2 = freshPort();
    const d = node(5, { port: port2, heartbeatMaxMs: 60_000, now: () => Date.now() + 31_000 });
    await d.strategy.start(d.ctx);
    await sendTo(listener, replayed, port2, GROUP);
    await until(
      () => d.strategy.stats().dropped.stale === 1,
      2000,
      'stale drop on the skewed node',
    );
    expect(d.ctx.connects).toEqual([]);
  });

  it('survives a flood of 5000 junk datagrams and keeps discovering a legit peer', async () => {
    const port = freshPort();
    const a = node(2, { port, heartbeatMaxMs: 60_000 });
    await a.strategy.start(a.ctx);
    const raw = await rawSocket();
    // right magic, version and key id: these reach the GCM tag check
    const header = Buffer.concat([GOSSIP_MAGIC, Buffer.from([2]), packet().subarray(5, 9)]);
    const FLOOD = 5000;
    const t0 = performance.now();
    const junk: Buffer[] = [];
    for (let j = 0; j < FLOOD; j++) {
      switch (j % 4) {
        case 0: // random bytes of random size
          junk.push(randomBytes(Math.floor(Math.random() * 1400)));
          break;
        case 1: // right magic and version, random rest
          junk.push(Buffer.concat([header, randomBytes(60 + Math.floor(Math.random() * 800))]));
          break;
        case 2: {
          // sealed with the right key, then tampered
          const tampered = packet({ name: `flood-${j}@x` });
          const at = Math.floor(Math.random() * tampered.length);
          tampered[at] = tampered[at] ^ (1 + Math.floor(Math.random() * 255));
          junk.push(tampered);
          break;
        }
        default: {
          // sealed with the right key, then truncated
          const whole = packet({ name: `flood-${j}@x` });
          junk.push(whole.subarray(0, Math.floor(Math.random() * whole.length)));
        }
      }
    }
    await sendPaced(raw, junk, port, a.strategy);
    const sentMs = performance.now() - t0;
    // a valid packet after the flood is processed after every flood datagram that arrived
    await sendTo(
      raw,
      packet({ name: 'after-flood@127.0.0.60', endpoint: '127.0.0.60:45893' }),
      port,
    );
    await a.ctx.waitFor((c) => c.lastConnect.length === 1, 5000, 'the packet after the flood');
    const stats = a.strategy.stats();
    const dropped = Object.values(stats.dropped).reduce((x, y) => x + y, 0);
    console.info(
      `[gossip] flood: ${FLOOD} datagrams sent in ${sentMs.toFixed(0)} ms, ${stats.packetsReceived} received, ${dropped} dropped ${JSON.stringify(stats.dropped)}, ${stats.heartbeatsAccepted} accepted`,
    );
    expect(stats.packetsReceived).toBeGreaterThan(FLOOD * 0.9);
    expect(stats.heartbeatsAccepted).toBe(1);
    expect(a.ctx.connects).toEqual([
      [
        {
          host: '127.0.0.60',
          port: 45893,
          name: 'after-flood@127.0.0.60',
          incarnation: ANY_INCARNATION,
        },
      ],
    ]);
    expect(a.ctx.logger.at('debug').length).toBeLessThan(20); // rate-limited

    const b = node(3, { port, heartbeatMaxMs: 60_000 });
    await b.strategy.start(b.ctx);
    await a.ctx.waitFor(sees(a, b.name), 2000, 'a legit peer after the flood');
    await b.ctx.waitFor(sees(b, a.name), 2000, 'the flooded node');
  });
});

describe('GossipStrategy socket failures', () => {
  const fast = { openRetryBaseMs: 20, openRetryMaxMs: 80 } as const;

  it('a multicastIf that is not on this host: reports the error, names the variable, keeps retrying, never throws', async () => {
    const a = node(2, { port: freshPort(), multicastIf: '203.0.113.9', ...fast });
    await expect(a.strategy.start(a.ctx)).resolves.toBeUndefined();
    await a.ctx.waitFor((c) => c.errors.length >= 5, 3000, '5 failed attempts');
    const error = a.ctx.errors[0] as GossipSocketError;
    expect(error).toBeInstanceOf(GossipSocketError);
    expect(error.operation).toBe('addMembership');
    expect(['EADDRNOTAVAIL', 'EINVAL', 'ENODEV']).toContain(error.code);
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('LIBCLUSTER_GOSSIP_MULTICAST_IF');
    expect(a.ctx.logger.at('error')[0]).toContain('LIBCLUSTER_GOSSIP_MULTICAST_IF');
    // the same failure is logged as an error once, not at every attempt
    expect(a.ctx.logger.at('error')).toHaveLength(1);
    const stats = a.strategy.stats();
    console.info(
      `[gossip] bad multicastIf: ${stats.openFailures} attempts failed with ${error.code}, still retrying`,
    );
    expect(stats).toMatchObject({ open: false, openAttempts: stats.openFailures });
    expect(a.ctx.oks).toEqual([]);

    a.strategy.stop();
    const attempts = a.strategy.stats().openAttempts;
    const errors = a.ctx.errors.length;
    await new Promise((resolve) => setTimeout(resolve, 300)); // several retry periods: nothing may happen
    expect(a.ctx.errors.length).toBe(errors);
    expect(attempts).toBe(0); // stats reset once stopped
  });

  it('an ifAddr that is not on this host: EADDRNOTAVAIL on bind, naming LIBCLUSTER_GOSSIP_IF_ADDR', async () => {
    const a = node(2, { port: freshPort(), ifAddr: '203.0.113.9', ...fast });
    await a.strategy.start(a.ctx);
    await a.ctx.waitFor((c) => c.errors.length >= 3, 3000, '3 failed attempts');
    const error = a.ctx.errors[0] as GossipSocketError;
    expect(error).toMatchObject({ operation: 'bind', code: 'EADDRNOTAVAIL' });
    expect(error.message).toContain('LIBCLUSTER_GOSSIP_IF_ADDR');
  });

  it('EADDRINUSE: retries with backoff while the port is held, then recovers, reports OK and discovers', async () => {
    const port = freshPort();
    const blocker = dgram.createSocket({ type: 'udp4' }); // no SO_REUSEADDR: nobody may share the port
    await new Promise<void>((resolve) => blocker.bind(port, '0.0.0.0', resolve));
    let blockerOpen = true;
    cleanups.push(() => blockerOpen && blocker.close());

    const a = node(2, { port, heartbeatMaxMs: 60_000, ...fast });
    await a.strategy.start(a.ctx);
    await a.ctx.waitFor((c) => c.errors.length >= 3, 3000, '3 failed attempts');
    const error = a.ctx.errors[0] as GossipSocketError;
    expect(error).toMatchObject({ operation: 'bind', code: 'EADDRINUSE' });
    expect(error.message).toContain('LIBCLUSTER_GOSSIP_PORT');
    expect(a.ctx.oks).toEqual([]);

    blocker.close();
    blockerOpen = false;
    await a.ctx.waitFor((c) => c.oks.length === 1, 3000, 'recovery');
    const stats = a.strategy.stats();
    console.info(`[gossip] EADDRINUSE: recovered after ${stats.openFailures} failed attempts`);
    expect(stats).toMatchObject({ open: true, openAttempts: stats.openFailures + 1 });
    expect(a.ctx.logger.at('log').some((l) => /after \d+ failed attempts?/.test(l))).toBe(true);

    const b = node(3, { port, heartbeatMaxMs: 60_000 });
    await b.strategy.start(b.ctx);
    await a.ctx.waitFor(sees(a, b.name), 2000, 'discovery after recovery');
  });

  it('a socket error while running: closes, reports, reopens', async () => {
    const port = freshPort();
    const sockets: dgram.Socket[] = [];
    const a = node(2, {
      port,
      heartbeatMaxMs: 60_000,
      ...fast,
      socketFactory: (options) => {
        const socket = dgram.createSocket(options);
        sockets.push(socket);
        return socket;
      },
    });
    await a.strategy.start(a.ctx);
    expect(sockets).toHaveLength(2);
    sockets[0].emit('error', Object.assign(new Error('recv failed'), { code: 'ENOBUFS' }));
    await a.ctx.waitFor((c) => c.oks.length === 2, 2000, 'reopen');
    expect(a.ctx.errors).toHaveLength(1);
    expect(a.ctx.errors[0]).toMatchObject({ operation: 'socket', code: 'ENOBUFS' });
    expect(sockets).toHaveLength(4);
    const b = node(3, { port, heartbeatMaxMs: 60_000 });
    await b.strategy.start(b.ctx);
    await a.ctx.waitFor(sees(a, b.name), 2000, 'discovery after reopen');
  });

  it('stop() is idempotent and start() works again after it', async () => {
    const port = freshPort();
    const a = node(2, { port, heartbeatMaxMs: 60_000 });
    await a.strategy.start(a.ctx);
    await a.strategy.start(a.ctx); // no second socket
    a.strategy.stop();
    a.strategy.stop();
    expect(a.strategy.stats().open).toBe(false);
    await a.strategy.start(a.ctx);
    const b = node(3, { port, heartbeatMaxMs: 60_000 });
    await b.strategy.start(b.ctx);
    await a.ctx.waitFor(sees(a, b.name), 2000, 'discovery after restart');
  });
});

describe('GossipStrategy broadcast-only mode', () => {
  it('discovers through the loopback broadcast address 127.255.255.255', async () => {
    const port = freshPort();
    const config = {
      port,
      broadcastOnly: true,
      multicastAddr: '127.255.255.255',
      multicastIf: undefined,
      heartbeatMaxMs: 60_000,
    };
    const a = node(2, config);
    const b = node(3, config);
    await a.strategy.start(a.ctx);
    const t0 = performance.now();
    await b.strategy.start(b.ctx);
    await Promise.all([
      a.ctx.waitFor(sees(a, b.name), 2000, b.name),
      b.ctx.waitFor(sees(b, a.name), 2000, a.name),
    ]);
    console.info(
      `[gossip] broadcast-only: discovered in ${(performance.now() - t0).toFixed(1)} ms`,
    );
    expect(a.ctx.logger.at('log')[0]).toContain('broadcast to 127.255.255.255');
  });
});

describe('GossipStrategy key rotation', () => {
  /** Predicate: `ctx`'s last discovered set holds exactly this process of `n` (name and incarnation). */
  const seesProcess =
    (...others: TestNode[]) =>
    (c: FakeStrategyContext) =>
      others.every((o) =>
        c.lastConnect.some((e) => e.name === o.name && e.incarnation === o.ctx.self.incarnation),
      );

  it('reads gossip sealed with a retired secret, and seals only with the current one', async () => {
    const port = freshPort();
    const rotated = node(2, { port, secret: 'new', previousSecrets: ['old'], heartbeatMaxMs: 200 });
    const laggard = node(3, { port, secret: 'old', heartbeatMaxMs: 200 });
    await rotated.strategy.start(rotated.ctx);
    await laggard.strategy.start(laggard.ctx);
    await rotated.ctx.waitFor(seesProcess(laggard), 2000, 'the node still on the old secret');
    expect(rotated.strategy.stats().acceptedUnderPreviousKey).toBeGreaterThan(0);
    expect(rotated.strategy.stats().dropped.key).toBe(0);
    // the laggard cannot read the new key: the rotated node never seals with the old one
    await until(() => laggard.strategy.stats().dropped.key >= 3, 3000, 'new-key packets dropped');
    expect(laggard.strategy.stats().heartbeatsAccepted).toBe(0);
    expect(laggard.ctx.connects).toEqual([]);
  });

  it('keys from NODE_COOKIE_PREVIOUS as well when gossip is keyed from the cookie', async () => {
    const port = freshPort();
    const rotated = node(2, {
      port,
      secret: undefined,
      cookie: 'cookie-b',
      previousCookies: ['cookie-a'],
      heartbeatMaxMs: 60_000,
    });
    const old = node(3, { port, secret: undefined, cookie: 'cookie-a', heartbeatMaxMs: 60_000 });
    // a gossip secret is set: retired cookies are not gossip keys
    const withSecret = node(4, {
      port,
      secret: 'own-secret',
      cookie: 'cookie-b',
      previousCookies: ['cookie-a'],
      heartbeatMaxMs: 60_000,
    });
    await rotated.strategy.start(rotated.ctx);
    await withSecret.strategy.start(withSecret.ctx);
    await old.strategy.start(old.ctx);
    await rotated.ctx.waitFor(seesProcess(old), 2000, 'the node on the old cookie');
    await until(() => withSecret.strategy.stats().dropped.key >= 1, 2000, 'old-cookie drop');
    expect(withSecret.ctx.connects).toEqual([]);
  });

  it('a rolling secret rotation keeps every pair discovering (old → new+old → new)', async () => {
    const port = freshPort();
    const hb = { port, heartbeatMaxMs: 200 };
    const [old, both, fresh] = [
      { secret: 'secret-a' },
      { secret: 'secret-b', previousSecrets: ['secret-a'] },
      { secret: 'secret-b' },
    ];
    /** Starts the process of host i (a restart: same name, new incarnation). */
    const start = async (i: number, keys: GossipStrategyConfig): Promise<TestNode> => {
      const n = node(i, { ...hb, ...keys });
      await n.strategy.start(n.ctx);
      return n;
    };
    /** In every pair at least one side discovers the other, so the core links them. */
    const linked = async (nodes: TestNode[], phase: string): Promise<void> => {
      for (const a of nodes) {
        for (const b of nodes) {
          if (a === b) continue;
          const either = (): boolean => seesProcess(b)(a.ctx) || seesProcess(a)(b.ctx);
          await until(either, 3000, `${phase}: ${a.name} and ${b.name}`);
        }
      }
    };

    const nodes = [await start(2, old), await start(3, old), await start(4, old)];
    await linked(nodes, 'all on secret-a');
    // roll: each node restarts with the new secret and the old one still accepted
    for (let i = 0; i < nodes.length; i++) {
      nodes[i].strategy.stop();
      nodes[i] = await start(i + 2, both);
      await linked(nodes, `node ${i + 1} on secret-b+a`);
    }
    // every node seals with secret-b now: discovery is mutual, whatever each still accepts
    for (const n of nodes) {
      await n.ctx.waitFor(seesProcess(...nodes.filter((o) => o !== n)), 3000, `${n.name} mutual`);
    }
    // second roll: drop the old secret
    for (let i = 0; i < nodes.length; i++) {
      nodes[i].strategy.stop();
      nodes[i] = await start(i + 2, fresh);
      await linked(nodes, `node ${i + 1} on secret-b alone`);
    }
    for (const n of nodes) {
      await n.ctx.waitFor(seesProcess(...nodes.filter((o) => o !== n)), 3000, `${n.name} mutual`);
    }
  });
});

describe('gossip group scale', () => {
  it('keeps the pace up to 15 nodes and stretches it in proportion beyond, so the group sends what 15 nodes would', () => {
    expect(gossipGroupScale(0)).toBe(1);
    expect(gossipGroupScale(14)).toBe(1);
    expect(gossipGroupScale(29)).toBe(2);
    expect(gossipGroupScale(99)).toBeCloseTo(100 / 15);
    // The group's heartbeats per second: nodes / (mean interval × scale), flat beyond 15.
    const meanIntervalS = (1 + 5) / 2;
    const groupRate = (n: number): number => n / (meanIntervalS * gossipGroupScale(n - 1));
    expect(groupRate(15)).toBeCloseTo(5);
    expect(groupRate(100)).toBeCloseTo(5);
    expect(groupRate(1000)).toBeCloseTo(5);
  });
});
