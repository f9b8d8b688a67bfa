import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CLUSTER_DEFAULTS } from '../../../lib/config/cluster.defaults.js';
import { HandshakeTimeoutError } from '../../../lib/errors/handshake-timeout.error.js';
import { encodeFrame, FrameDecoder } from '../../../lib/transport/frame.js';
import { FrameType } from '../../../lib/transport/frame-types.js';
import { encodeHello, NONCE_BYTES } from '../../../lib/transport/handshake.js';
import { testIdentity } from '../../support/raw-peer.js';
import { captureLogs, LOCALHOST, nextLink, until, within, useTransportCleanup } from './helpers.js';

const { cleanup, started } = useTransportCleanup();

async function rawConnect(port: number): Promise<Socket> {
  const socket = connect({ host: LOCALHOST, port });
  socket.on('error', () => undefined);
  cleanup.push(() => socket.destroy());
  await once(socket, 'connect');
  return socket;
}

/** Resolves with the ms between now and the socket's close. */
function closedAfter(socket: Socket): Promise<number> {
  const start = Date.now();
  socket.resume();
  return new Promise((resolve) => {
    if (socket.destroyed) resolve(0);
    else socket.once('close', () => resolve(Date.now() - start));
  });
}

describe('transport under hostile input', () => {
  it('closes a connection that sends random bytes, without a link', async () => {
    const logs = captureLogs();
    cleanup.push(() => logs.restore());
    const b = await started('b@127.0.0.1', { handshakeTimeoutMs: 10_000 });
    let linked = 0;
    b.transport.on('link', () => linked++);
    for (let i = 0; i < 20; i++) {
      const socket = await rawConnect(b.port);
      const closed = closedAfter(socket);
      socket.write(randomBytes(64 + i * 100));
      expect(
        await within(closed, 3000, `random-bytes connection ${i} was not closed`),
      ).toBeLessThan(3000);
    }
    expect(linked).toBe(0);
    expect(b.transport.pendingHandshakes).toBe(0);
    // Rate-limited: 20 garbage connections from one address, one warning line.
    expect(
      logs.lines().filter((l) => l.startsWith('warn: dropping connection from 127.0.0.1')),
    ).toHaveLength(1);
  });

  it('closes at once a valid header announcing a frame over the pre-auth limit', async () => {
    const b = await started('b@127.0.0.1', { handshakeTimeoutMs: 10_000 });
    const socket = await rawConnect(b.port);
    const closed = closedAfter(socket);
    const header = Buffer.from([0, 0, 0, 0, 1, FrameType.HELLO]);
    header.writeUInt32BE(1_000_000_000, 0);
    socket.write(header);
    expect(await within(closed, 3000, 'oversized header was not rejected')).toBeLessThan(3000);
  });

  it('closes a connection whose first frame is not a handshake frame', async () => {
    const b = await started('b@127.0.0.1', { handshakeTimeoutMs: 10_000 });
    let linked = 0;
    b.transport.on('link', () => linked++);
    for (const type of [FrameType.HEARTBEAT, FrameType.PEERS, 32, 200]) {
      const socket = await rawConnect(b.port);
      const closed = closedAfter(socket);
      socket.write(encodeFrame(type, Buffer.from('{}')));
      await within(closed, 3000, `type ${type} before auth was not rejected`);
    }
    expect(linked).toBe(0);
  });

  it('drops a handshake that stalls half-way at the deadline (listener side)', async () => {
    const b = await started('b@127.0.0.1', { handshakeTimeoutMs: 300 });
    let linked = 0;
    b.transport.on('link', () => linked++);
    const socket = await rawConnect(b.port);
    const decoder = new FrameDecoder(4096);
    let gotHello = false;
    socket.on('data', (chunk: Buffer) => {
      if (decoder.push(chunk).some((f) => f.type === FrameType.HELLO)) gotHello = true;
    });
    const closed = closedAfter(socket);
    socket.write(
      encodeFrame(
        FrameType.HELLO,
        encodeHello({ nonce: Buffer.alloc(NONCE_BYTES, 3), identity: testIdentity('slow@h') }),
      ),
    );
    // The HELLO is answered, then the dialer never sends AUTH.
    const ms = await within(closed, 3000, 'stalled handshake was not dropped');
    expect(gotHello).toBe(true);
    expect(ms).toBeGreaterThanOrEqual(250);
    expect(ms).toBeLessThan(1500);
    expect(linked).toBe(0);
    expect(b.transport.pendingHandshakes).toBe(0);
  });

  it('rejects dial with HandshakeTimeoutError when the listener never answers (dialer side)', async () => {
    const a = await started('a@127.0.0.1', { handshakeTimeoutMs: 300 });
    const accepted: Socket[] = [];
    const silent = createServer((socket) => {
      socket.on('error', () => undefined);
      accepted.push(socket);
    });
    silent.listen(0, LOCALHOST);
    await once(silent, 'listening');
    cleanup.push(() => {
      accepted.forEach((s) => s.destroy());
      return new Promise((resolve) => silent.close(resolve));
    });
    const dialStart = Date.now();
    const error = await a.transport
      .dial(LOCALHOST, (silent.address() as AddressInfo).port)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HandshakeTimeoutError);
    expect((error as HandshakeTimeoutError).retryable).toBe(true);
    expect(Date.now() - dialStart).toBeGreaterThanOrEqual(250);
  });

  it('200 idle connections: pending cap respected, all dropped, an existing link keeps working, heap bounded', async () => {
    const logs = captureLogs();
    cleanup.push(() => logs.restore());
    const cap = 16;
    const deadline = 800;
    const b = await started('b@127.0.0.1', {
      handshakeTimeoutMs: deadline,
      maxPendingHandshakes: cap,
      // One source address here: let it reach the global cap (the per-source cap is tested below).
      maxPendingHandshakesPerSource: cap,
    });
    const a = await started('a@127.0.0.1', { heartbeatIntervalMs: 50, failureTimeoutMs: 400 });

    // An authenticated link that exchanges frames throughout the flood.
    const inbound = nextLink(b.transport);
    const link = await a.transport.dial(LOCALHOST, b.port);
    const bSide = await within(inbound, 2000, 'no inbound link');
    let echoed = 0;
    bSide.on('frame', (type, payload) => bSide.send(type, payload));
    link.on('frame', () => echoed++);
    let linkClosed = false;
    link.on('close', () => (linkClosed = true));
    const pinger = setInterval(() => link.send(32, Buffer.from('ping')), 10);
    cleanup.push(() => clearInterval(pinger));

    const heapBefore = process.memoryUsage().heapUsed;
    const sockets: Socket[] = [];
    const closeTimes: Array<Promise<number>> = [];
    let maxPending = 0;
    for (let i = 0; i < 200; i++) {
      const socket = await rawConnect(b.port);
      sockets.push(socket);
      closeTimes.push(closedAfter(socket));
      maxPending = Math.max(maxPending, b.transport.pendingHandshakes);
    }
    const echoedDuringFlood = echoed;
    const times = await within(
      Promise.all(closeTimes),
      deadline + 5000,
      'not every idle connection was closed',
    );
    const heapGrowth = process.memoryUsage().heapUsed - heapBefore;

    expect(maxPending).toBeLessThanOrEqual(cap);
    expect(b.transport.pendingHandshakes).toBe(0);
    // Connections over the cap are closed on arrival, the rest at the handshake deadline.
    const early = times.filter((t) => t < deadline / 2).length;
    expect(early).toBeGreaterThanOrEqual(200 - cap);
    expect(sockets.every((s) => s.destroyed)).toBe(true);
    expect(linkClosed).toBe(false);
    expect(echoed).toBeGreaterThan(echoedDuringFlood);
    expect(echoed).toBeGreaterThan(10);
    // Loose bound: the flood must not cost anywhere near one buffer per connection.
    expect(heapGrowth).toBeLessThan(32 * 1024 * 1024);
    // The cap warning is rate limited.
    expect(logs.lines().filter((l) => l.includes('handshakes already pending'))).toHaveLength(1);
  });

  it('1,000 handshakes held open from one address: another address still gets in; the flooder gets in once it stops', async () => {
    const logs = captureLogs();
    cleanup.push(() => logs.restore());
    // The defaults: 256 pending handshakes, 4 per address once half of them are taken.
    const cap = CLUSTER_DEFAULTS.maxPendingHandshakes;
    const b = await started('b@127.0.0.1', { handshakeTimeoutMs: 30_000 });
    // Each connection sends a HELLO and then never anything else.
    const hello = encodeFrame(
      FrameType.HELLO,
      encodeHello({ nonce: Buffer.alloc(NONCE_BYTES, 5), identity: testIdentity('flood@h') }),
    );
    const flood: Socket[] = [];
    let droppedOnArrival = 0;
    let maxPending = 0;
    const openOne = () =>
      new Promise<void>((resolve) => {
        const socket = connect({ host: LOCALHOST, port: b.port, localAddress: '127.0.0.2' });
        flood.push(socket);
        socket.on('error', () => undefined);
        socket.once('connect', () => {
          socket.write(hello);
          resolve();
        });
        socket.once('close', () => {
          droppedOnArrival++;
          resolve();
        });
      });
    cleanup.push(() => flood.forEach((s) => s.destroy()));
    // Bounded: 1,000 connections, 50 at a time.
    for (let i = 0; i < 1000; i += 50) {
      await Promise.all(Array.from({ length: 50 }, openOne));
      maxPending = Math.max(maxPending, b.transport.pendingHandshakes);
    }
    await until(
      () => flood.filter((s) => !s.destroyed).length <= cap / 2,
      5000,
      'the listener kept more than half its pending slots for one address',
    );
    const held = flood.filter((s) => !s.destroyed).length;
    expect(held).toBe(cap / 2);
    expect(b.transport.pendingHandshakes).toBe(cap / 2);
    expect(maxPending).toBeLessThanOrEqual(cap / 2);
    expect(droppedOnArrival).toBeGreaterThanOrEqual(1000 - cap / 2);

    // A node on another address gets in while the flood holds its slots.
    const a = await started('a@127.0.0.3', { bindAddress: '127.0.0.3' });
    const inbound = nextLink(b.transport);
    const link = await within(a.transport.dial(LOCALHOST, b.port), 5000, 'a could not link');
    expect((await within(inbound, 2000, 'b emitted no link')).peer.name).toBe('a@127.0.0.3');
    expect(link.peer.name).toBe('b@127.0.0.1');

    // A real node on the flooder's address is locked out meanwhile…
    const c = await started('c@127.0.0.2', { bindAddress: '127.0.0.2' });
    await expect(c.transport.dial(LOCALHOST, b.port)).rejects.toThrow();
    // …and gets in once the flood stops.
    flood.forEach((s) => s.destroy());
    await until(() => b.transport.pendingHandshakes === 0, 5000, 'the flood was not released');
    const back = await within(c.transport.dial(LOCALHOST, b.port), 5000, 'c could not link');
    expect(back.peer.name).toBe('b@127.0.0.1');
    // One rate-limited line about the flooding address.
    expect(
      logs.lines().filter((l) => l.includes('handshakes from 127.0.0.2 already pending')),
    ).toHaveLength(1);
  });
});
