import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { CookieMismatchError } from '../../../lib/errors/cookie-mismatch.error.js';
import { PeerUnreachableError } from '../../../lib/errors/peer-unreachable.error.js';
import { ProtocolVersionError } from '../../../lib/errors/protocol-version.error.js';
import { ListenError } from '../../../lib/errors/listen.error.js';
import { MalformedFrameError } from '../../../lib/errors/malformed-frame.error.js';
import { systemClock } from '../../../lib/runtime/clock.js';
import { systemRandom } from '../../../lib/runtime/random.js';
import {
  cookieKeyring,
  cookieKeyringAsync,
  deriveCookieKey,
  type CookieKeyring,
} from '../../../lib/security/cookie-keyring.js';
import { encodeFrame, FrameDecoder, PROTOCOL_VERSION } from '../../../lib/transport/frame.js';
import { FrameType } from '../../../lib/transport/frame-types.js';
import {
  computeProof,
  decodeHello,
  decodeRefuse,
  dialerHandshake,
  encodeHello,
  listenerHandshake,
  NONCE_BYTES,
  type HandshakeResult,
} from '../../../lib/transport/handshake.js';
import { Transport } from '../../../lib/transport/transport.js';
import { RawPeer, testIdentity } from '../../support/raw-peer.js';
import {
  ACCEPTED,
  captureLogs,
  closeOf,
  COOKIE,
  LOCALHOST,
  nextLink,
  within,
  useTransportCleanup,
} from './helpers.js';

const { cleanup, started } = useTransportCleanup();
/** A protocol version this node does not speak. */
const OTHER = PROTOCOL_VERSION + 1;

/** Reads frames from a raw socket until one arrives (or the socket closes). */
function firstFrame(
  socket: Socket,
  version = PROTOCOL_VERSION,
): Promise<{ type: number; payload: Buffer } | 'closed'> {
  const decoder = new FrameDecoder(4096, version);
  return new Promise((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      const frame = decoder.push(chunk)[0];
      if (frame) resolve(frame);
    });
    socket.on('close', () => resolve('closed'));
  });
}

describe('handshake', () => {
  it('authenticates both directions and exchanges identities', async () => {
    const a = await started('a@127.0.0.1');
    const b = await started('b@127.0.0.1');
    const inbound = nextLink(b.transport);
    const outbound = await a.transport.dial(LOCALHOST, b.port);
    const accepted = await within(inbound, 2000, 'b emitted no link');

    expect(outbound.direction).toBe('outbound');
    expect(accepted.direction).toBe('inbound');
    expect(outbound.peer).toEqual(b.identity());
    expect(accepted.peer).toEqual(a.identity());
    expect(outbound.remoteAddress).toBe(`${LOCALHOST}:${b.port}`);
    expect(accepted.remoteAddress).toMatch(/^127\.0\.0\.1:\d+$/);

    // Frames flow both ways, including one sent in the same turn as the handshake completes.
    const atB = new Promise<[number, string]>((resolve) =>
      accepted.on('frame', (type, payload) => resolve([type, payload.toString()])),
    );
    const atA = new Promise<[number, string]>((resolve) =>
      outbound.on('frame', (type, payload) => resolve([type, payload.toString()])),
    );
    expect(outbound.send(32, Buffer.from('to b'))).toBe(true);
    expect(accepted.send(16, Buffer.from('to a'))).toBe(true);
    expect(await within(atB, 2000, 'b got no frame')).toEqual([32, 'to b']);
    expect(await within(atA, 2000, 'a got no frame')).toEqual([16, 'to a']);
  });

  it('delivers frames the listener sends right after WELCOME, even larger than the pre-auth limit', async () => {
    const a = await started('a@127.0.0.1');
    const b = await started('b@127.0.0.1');
    const big = Buffer.alloc(64 * 1024, 9);
    b.transport.on('link', (link) => {
      link.send(16, big);
    });
    const link = await a.transport.dial(LOCALHOST, b.port);
    const got = await within(
      new Promise<Buffer>((resolve) => link.on('frame', (_type, payload) => resolve(payload))),
      2000,
      'the frame sent with WELCOME was lost',
    );
    expect(got.equals(big)).toBe(true);
  });

  it('delivers frames the dialer sends as soon as dial resolves (before the listener saw WELCOME), even larger than the pre-auth limit', async () => {
    const a = await started('a@127.0.0.1');
    const b = await started('b@127.0.0.1');
    const big = Buffer.alloc(64 * 1024, 7);
    const inbound = nextLink(b.transport);
    const link = await a.transport.dial(LOCALHOST, b.port);
    link.send(32, big);
    const accepted = await within(inbound, 2000, 'b emitted no link');
    const got = await within(
      new Promise<Buffer>((resolve) => accepted.on('frame', (_type, payload) => resolve(payload))),
      2000,
      'the frame sent right after WELCOME was lost',
    );
    expect(got.equals(big)).toBe(true);
  });

  it('with a wrong cookie, neither side gets a link; the dialer gets CookieMismatchError', async () => {
    const logs = captureLogs();
    cleanup.push(() => logs.restore());
    const b = await started('b@127.0.0.1');
    const a = await started('a@127.0.0.1', { cookie: 'another-cookie' });
    let linked = 0;
    b.transport.on('link', () => linked++);
    a.transport.on('link', () => linked++);

    const error = await a.transport.dial(LOCALHOST, b.port).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CookieMismatchError);
    expect((error as CookieMismatchError).peer).toBe(`${LOCALHOST}:${b.port}`);
    // Listener direction too: b dials a.
    const reverse = await b.transport.dial(LOCALHOST, a.port).catch((e: unknown) => e);
    expect(reverse).toBeInstanceOf(CookieMismatchError);

    // A second attempt from the same address is not logged again within the minute.
    await a.transport.dial(LOCALHOST, b.port).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(linked).toBe(0);
    expect(a.transport.linkCount + b.transport.linkCount).toBe(0);
    const mismatchLines = logs
      .lines()
      .filter((l) => l.startsWith('warn: cookie mismatch from 127.0.0.1:'));
    expect(mismatchLines.length).toBeGreaterThanOrEqual(1);
    expect(mismatchLines.filter((l) => l.includes('check NODE_COOKIE on both nodes'))).toEqual(
      mismatchLines,
    );
    // b logged one line for a's two attempts, a one line for b's attempt.
    expect(mismatchLines).toHaveLength(2);
    expect(logs.lines().join('\n')).not.toContain(COOKIE);
    expect(logs.lines().join('\n')).not.toContain('another-cookie');
  });

  it('a guessed-cookie dialer gets no proof from the listener: HELLO without one, then REFUSE', async () => {
    const b = await started('b@127.0.0.1');
    let linked = 0;
    b.transport.on('link', () => linked++);
    const socket = connect({ host: LOCALHOST, port: b.port });
    await once(socket, 'connect');
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    const closed = once(socket, 'close');
    const identity = testIdentity('mallory@127.0.0.1');
    const nonce = Buffer.alloc(NONCE_BYTES, 1);
    socket.write(encodeFrame(FrameType.HELLO, encodeHello({ nonce, identity })));
    const decoder = new FrameDecoder(4096, PROTOCOL_VERSION);
    const frames = (): Array<{ type: number; payload: Buffer }> =>
      new FrameDecoder(4096, PROTOCOL_VERSION).push(Buffer.concat(received));
    await within(
      new Promise<void>((resolve) => {
        const check = setInterval(
          () => frames().length > 0 && (clearInterval(check), resolve()),
          5,
        );
      }),
      2000,
      'no HELLO from the listener',
    );
    // Everything the listener sent before the dialer proved anything: one HELLO frame holding
    // its nonce and identity, and no proof.
    const [first, ...rest] = decoder.push(Buffer.concat(received));
    expect(rest).toEqual([]);
    expect(first?.type).toBe(FrameType.HELLO);
    const fields = JSON.parse((first as { payload: Buffer }).payload.toString('utf8')) as object;
    expect(Object.keys(fields).sort()).toEqual(
      ['endpoint', 'incarnation', 'name', 'nonce', 'startedAt'].sort(),
    );
    const hello = decodeHello((first as { payload: Buffer }).payload);
    // A proof computed with a guess.
    const proof = computeProof(
      deriveCookieKey('guess'),
      'dialer',
      PROTOCOL_VERSION,
      nonce,
      hello.nonce,
      identity,
      hello.identity,
    );
    socket.write(
      encodeFrame(FrameType.AUTH, Buffer.from(JSON.stringify({ proof: proof.toString('base64') }))),
    );
    await within(closed, 2000, 'the listener kept the connection open');
    // After the wrong proof: one REFUSE, nothing else — no AUTH (the listener's proof).
    const all = frames();
    expect(all.map((f) => f.type)).toEqual([FrameType.HELLO, FrameType.REFUSE]);
    expect(decodeRefuse((all[1] as { payload: Buffer }).payload)).toBe('cookie-mismatch');
    expect(linked).toBe(0);
  });

  it('a listener speaking another version: refused with both versions, logged on both sides', async () => {
    const logs = captureLogs();
    cleanup.push(() => logs.restore());
    const a = await started('a@127.0.0.1');
    // A raw listener of the previous version (frames in the clear) that answers any HELLO.
    const server: Server = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () =>
        socket.end(encodeFrame(FrameType.REFUSE, Buffer.from('{}'), OTHER)),
      );
    });
    server.listen(0, LOCALHOST);
    await once(server, 'listening');
    cleanup.push(() => new Promise((resolve) => server.close(resolve)));
    const port = (server.address() as AddressInfo).port;

    const error = await a.transport.dial(LOCALHOST, port).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProtocolVersionError);
    expect((error as ProtocolVersionError).peerVersion).toBe(OTHER);
    expect((error as ProtocolVersionError).localVersion).toBe(PROTOCOL_VERSION);
    expect((error as Error).message).toBe(
      `protocol version mismatch with ${LOCALHOST}:${port}: peer speaks ${OTHER}, this node speaks ${PROTOCOL_VERSION}`,
    );
    expect(logs.lines()).toContain(
      `warn: protocol version mismatch with ${LOCALHOST}:${port}: peer speaks ${OTHER}, this node speaks ${PROTOCOL_VERSION}`,
    );
  });

  it("a dialer speaking another version gets a REFUSE in the listener's version and the listener logs both versions", async () => {
    const logs = captureLogs();
    cleanup.push(() => logs.restore());
    const b = await started('b@127.0.0.1');
    const socket = connect({ host: LOCALHOST, port: b.port });
    await once(socket, 'connect');
    const reply = firstFrame(socket);
    socket.write(
      encodeFrame(
        FrameType.HELLO,
        encodeHello({
          nonce: Buffer.alloc(NONCE_BYTES),
          identity: testIdentity('old@127.0.0.1'),
        }),
        OTHER,
      ),
    );
    const frame = await within(reply, 2000, 'no answer from the listener');
    expect(frame).not.toBe('closed');
    expect(frame !== 'closed' && frame.type).toBe(FrameType.REFUSE);
    expect(frame !== 'closed' && decodeRefuse(frame.payload)).toBe('protocol-version');
    const local = `${LOCALHOST}:${socket.localPort}`;
    expect(logs.lines()).toContain(
      `warn: protocol version mismatch with ${local}: peer speaks ${OTHER}, this node speaks ${PROTOCOL_VERSION}`,
    );
    socket.destroy();
  });

  it('rejects malformed identities (name over 255 bytes, control characters, bad nonce)', () => {
    const ok = {
      nonce: Buffer.alloc(32).toString('base64'),
      name: 'a@h',
      incarnation: 'i',
      startedAt: 1,
      endpoint: '',
    };
    const decode = (o: object) => () => decodeHello(Buffer.from(JSON.stringify(o)));
    expect(decode(ok)).not.toThrow();
    expect(decode({ ...ok, name: 'x'.repeat(256) })).toThrow(MalformedFrameError);
    expect(decode({ ...ok, name: '' })).toThrow(MalformedFrameError);
    expect(decode({ ...ok, name: 'a\nb' })).toThrow(MalformedFrameError);
    expect(decode({ ...ok, startedAt: -1 })).toThrow(MalformedFrameError);
    expect(decode({ ...ok, startedAt: '1' })).toThrow(MalformedFrameError);
    expect(decode({ ...ok, nonce: Buffer.alloc(31).toString('base64') })).toThrow(
      MalformedFrameError,
    );
    expect(decode({ ...ok, incarnation: 5 })).toThrow(MalformedFrameError);
    expect(() => decodeHello(Buffer.from('[1]'))).toThrow(MalformedFrameError);
    expect(() => decodeHello(Buffer.from('{'))).toThrow(MalformedFrameError);
  });

  it('dial to a closed port rejects with a retryable PeerUnreachableError naming the port', async () => {
    const a = await started('a@127.0.0.1');
    const probe = createServer();
    probe.listen(0, LOCALHOST);
    await once(probe, 'listening');
    const port = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const error = await a.transport.dial(LOCALHOST, port).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PeerUnreachableError);
    expect((error as PeerUnreachableError).retryable).toBe(true);
    expect((error as PeerUnreachableError).code).toBe('ECONNREFUSED');
    expect((error as Error).message).toContain(`${LOCALHOST}:${port}`);
    expect((error as Error).message).toContain(`nothing listens on ${LOCALHOST}:${port}`);
    expect((error as Error).message).toContain(`CLUSTER_PORT=${port}`);
  });

  it('dial to a host name that does not resolve says so, not "open the port"', async () => {
    const a = await started('a@127.0.0.1');
    // `.invalid` never resolves (RFC 2606): ENOTFOUND with a resolver, EAI_AGAIN without one.
    const error = await a.transport.dial('peer.invalid', 45893).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PeerUnreachableError);
    expect((error as PeerUnreachableError).reason).toBe('dns');
    expect((error as Error).message).toMatch(
      /^cannot resolve host peer\.invalid \((ENOTFOUND|EAI_AGAIN)\)/,
    );
    expect((error as Error).message).not.toContain('security group');
  });

  it('listen on a port in use rejects with ListenError naming CLUSTER_PORT', async () => {
    const a = await started('a@127.0.0.1');
    const clash = new Transport({
      identity: () => testIdentity('c@127.0.0.1'),
      cookie: COOKIE,
      bindAddress: LOCALHOST,
      port: a.port,
      acceptedTypes: ACCEPTED,
    });
    cleanup.push(() => clash.close());
    const error = await clash.listen().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ListenError);
    expect((error as ListenError).code).toBe('EADDRINUSE');
    expect((error as Error).message).toContain('CLUSTER_PORT');
  });

  it('a raw dialer can complete the handshake (raw peer helper sanity) and close is reported', async () => {
    const b = await started('b@127.0.0.1');
    const inbound = nextLink(b.transport);
    const raw = await RawPeer.dial(LOCALHOST, b.port, COOKIE, testIdentity('raw@127.0.0.1'));
    expect(raw.peer.name).toBe('b@127.0.0.1');
    const link = await within(inbound, 2000, 'no inbound link');
    const closed = closeOf(link);
    raw.destroy();
    expect(await within(closed, 2000, 'link did not close')).toBe('closed');
  });
});

/** Runs both handshake functions over one loopback connection with the given keyrings. */
async function handshakePair(
  dialerRing: CookieKeyring | Promise<CookieKeyring>,
  listenerRing: CookieKeyring | Promise<CookieKeyring>,
): Promise<[PromiseSettledResult<HandshakeResult>, PromiseSettledResult<HandshakeResult>]> {
  const server = createServer();
  server.listen(0, LOCALHOST);
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const dialer = connect({ host: LOCALHOST, port: (server.address() as AddressInfo).port });
  const [[listenerSocket]] = await Promise.all([accepted, once(dialer, 'connect')]);
  server.close();
  for (const s of [dialer, listenerSocket]) {
    s.on('error', () => undefined);
    cleanup.push(() => s.destroy());
  }
  const common = { clock: systemClock, random: systemRandom, timeoutMs: 2000 };
  return Promise.allSettled([
    dialerHandshake(dialer, {
      ...common,
      keyring: dialerRing,
      identity: testIdentity('d@127.0.0.1'),
      peerAddress: 'listener',
    }),
    listenerHandshake(listenerSocket, {
      ...common,
      keyring: listenerRing,
      identity: testIdentity('l@127.0.0.1'),
      peerAddress: 'dialer',
    }),
  ]);
}

describe('cookie rotation in the handshake', () => {
  const A = 'rotation-cookie-A-0123456789';
  const B = 'rotation-cookie-B-0123456789';

  it('a dialer proving a previous cookie is answered under that cookie; both ends report its key and the nonces', async () => {
    const [d, l] = await handshakePair(cookieKeyring(A), cookieKeyring(B, [A]));
    expect(d.status).toBe('fulfilled');
    expect(l.status).toBe('fulfilled');
    const dialer = (d as PromiseFulfilledResult<HandshakeResult>).value;
    const listener = (l as PromiseFulfilledResult<HandshakeResult>).value;
    expect(dialer.cookieKey).toBe(deriveCookieKey(A));
    expect(listener.cookieKey).toBe(deriveCookieKey(A));
    expect(dialer.role).toBe('dialer');
    expect(listener.role).toBe('listener');
    expect(dialer.nonces.dialer.equals(listener.nonces.dialer)).toBe(true);
    expect(dialer.nonces.listener.equals(listener.nonces.listener)).toBe(true);
    expect(dialer.nonces.dialer.equals(dialer.nonces.listener)).toBe(false);
    expect(dialer.peer.name).toBe('l@127.0.0.1');
    expect(listener.peer.name).toBe('d@127.0.0.1');
  });

  it('both ends wait for keys still being derived off the event loop (a node just started)', async () => {
    const C = 'rotation-cookie-C-still-deriving';
    const D = 'rotation-cookie-D-still-deriving';
    const [d, l] = await handshakePair(cookieKeyringAsync(C), cookieKeyringAsync(D, [C]));
    expect(d.status).toBe('fulfilled');
    expect(l.status).toBe('fulfilled');
    expect((d as PromiseFulfilledResult<HandshakeResult>).value.cookieKey).toBe(deriveCookieKey(C));
    expect((l as PromiseFulfilledResult<HandshakeResult>).value.cookieKey).toBe(deriveCookieKey(C));
  });

  it('the current cookie is used when both have it', async () => {
    const [d, l] = await handshakePair(cookieKeyring(B, [A]), cookieKeyring(B));
    expect((d as PromiseFulfilledResult<HandshakeResult>).value.cookieKey).toBe(deriveCookieKey(B));
    expect((l as PromiseFulfilledResult<HandshakeResult>).value.cookieKey).toBe(deriveCookieKey(B));
  });

  it('a node never dials with a previous cookie: (B, previous A) → (A) is a cookie mismatch', async () => {
    const [d, l] = await handshakePair(cookieKeyring(B, [A]), cookieKeyring(A));
    expect(d.status === 'rejected' && d.reason).toBeInstanceOf(CookieMismatchError);
    expect(l.status === 'rejected' && l.reason).toBeInstanceOf(CookieMismatchError);
  });

  it('a retired cookie no longer gets in: (A) → (B) is a cookie mismatch', async () => {
    const [d, l] = await handshakePair(cookieKeyring(A), cookieKeyring(B));
    expect(d.status === 'rejected' && d.reason).toBeInstanceOf(CookieMismatchError);
    expect(l.status === 'rejected' && l.reason).toBeInstanceOf(CookieMismatchError);
  });
});
