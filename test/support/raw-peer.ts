import { systemClock } from '../../lib/runtime/clock.js';
import { systemRandom } from '../../lib/runtime/random.js';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import type { NodeIdentity } from '../../lib/interfaces/member.interface.js';
import { encodeFrame, FrameDecoder, type Frame } from '../../lib/transport/frame.js';
import { cookieKeyring } from '../../lib/security/cookie-keyring.js';
import { dialerHandshake, listenerHandshake } from '../../lib/transport/handshake.js';
import { RecordOpener, RecordSealer, type RecordKeys } from '../../lib/transport/record-seal.js';

/** A test identity. */
export function testIdentity(name: string, overrides: Partial<NodeIdentity> = {}): NodeIdentity {
  return {
    name,
    incarnation: `${name}-inc`,
    startedAt: 1_700_000_000_000,
    endpoint: '',
    ...overrides,
  };
}

/**
 * One end of an authenticated connection driven by hand: it performs the handshake with the
 * library's own handshake functions and then does nothing by itself — no heartbeats, no reading
 * unless asked — so tests can make it misbehave.
 */
export class RawPeer {
  readonly frames: Frame[] = [];
  private waiters: Array<() => void> = [];
  private reading = false;
  private readonly sealer: RecordSealer;
  private readonly opener: RecordOpener;
  private readonly early: Buffer[];
  private readonly decoder = new FrameDecoder(64 * 1024 * 1024);

  constructor(
    readonly socket: Socket,
    readonly peer: NodeIdentity,
    handshakeDecoder: FrameDecoder,
    keys: RecordKeys,
  ) {
    socket.on('error', () => undefined);
    this.sealer = new RecordSealer(keys.send);
    this.opener = new RecordOpener(keys.receive, 64 * 1024 * 1024);
    this.early = handshakeDecoder.takeBuffered();
  }

  /** Dials `host:port` and completes the dialer handshake. */
  static async dial(
    host: string,
    port: number,
    cookie: string,
    identity: NodeIdentity,
  ): Promise<RawPeer> {
    const socket = connect({ host, port });
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    const result = await dialerHandshake(socket, {
      keyring: cookieKeyring(cookie),
      clock: systemClock,
      random: systemRandom,
      identity,
      timeoutMs: 5000,
      peerAddress: `${host}:${port}`,
    });
    return new RawPeer(socket, result.peer, result.decoder, result.keys);
  }

  /** Sends a frame (optionally in another protocol version) in its own sealed record. */
  send(type: number, payload: Buffer = Buffer.alloc(0), version?: number): boolean {
    return this.sendSealed(encodeFrame(type, payload, version));
  }

  /** Seals arbitrary plaintext bytes (e.g. a frame header alone) into one record. */
  sendSealed(plaintext: Buffer): boolean {
    return this.socket.write(this.seal(plaintext));
  }

  /** The bytes of the next record holding `plaintext`, not sent (it takes a sequence number). */
  seal(plaintext: Buffer): Buffer {
    return Buffer.concat(this.sealer.seal([plaintext], plaintext.length));
  }

  /** Starts reading and collecting frames (the socket stays paused until then). */
  read(): void {
    if (this.reading) return;
    this.reading = true;
    const open = (chunk: Buffer): void => {
      for (const plain of this.opener.push(chunk))
        for (const frame of this.decoder.push(plain)) this.frames.push(frame);
    };
    for (const chunk of this.early) open(chunk);
    this.socket.on('data', (chunk: Buffer) => {
      open(chunk);
      const waiters = this.waiters;
      this.waiters = [];
      for (const wake of waiters) wake();
    });
    this.socket.resume();
  }

  /** Resolves when a frame of `type` has been collected. */
  async waitForFrame(type: number, timeoutMs: number): Promise<Frame> {
    this.read();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frame = this.frames.find((f) => f.type === type);
      if (frame) return frame;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame of type ${type} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * A listener that completes the listener handshake with every connection and then leaves it
 * paused: it never reads again (a peer that does not keep up).
 */
export async function rawListen(
  cookie: string,
  identity: NodeIdentity,
  onPeer: (peer: RawPeer) => void,
): Promise<{ server: Server; port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    listenerHandshake(socket, {
      keyring: cookieKeyring(cookie),
      clock: systemClock,
      random: systemRandom,
      identity,
      timeoutMs: 5000,
      peerAddress: 'raw',
    }).then(
      (result) => onPeer(new RawPeer(socket, result.peer, result.decoder, result.keys)),
      () => socket.destroy(),
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  /** Closes the server and every connection, whether its handshake completed or not. */
  const close = (): Promise<void> => {
    for (const socket of sockets) socket.destroy();
    return new Promise((resolve) => server.close(() => resolve()));
  };
  return { server, port: (server.address() as AddressInfo).port, close };
}

/**
 * Source of a peer that runs in a worker thread, so that it keeps heartbeating while the test's
 * own event loop is blocked. It is an independent implementation of the wire protocol in plain
 * JavaScript (dialer side), written from the README's link protocol.
 */
const HEARTBEATING_PEER_SOURCE = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const crypto = require('node:crypto');
const { host, port, cookie, identity, heartbeatMs } = workerData;
const V = 2;
// The cookie key: scrypt(cookie, 'nestjs-cluster cookie key v1', N=2^14, r=8, p=1, 32 bytes).
const key = crypto.scryptSync(Buffer.from(cookie, 'utf8'), 'nestjs-cluster cookie key v1', 32, { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
const frame = (type, payload = Buffer.alloc(0)) => {
  const head = Buffer.alloc(6);
  head.writeUInt32BE(2 + payload.length, 0);
  head[4] = V;
  head[5] = type;
  return Buffer.concat([head, payload]);
};
const field = (v) => {
  const b = Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'utf8');
  const h = Buffer.alloc(4);
  h.writeUInt32BE(b.length, 0);
  return Buffer.concat([h, b]);
};
const ident = (i) => [field(i.name), field(i.incarnation), field(String(i.startedAt)), field(i.endpoint)];
const proof = (role, nD, nL, d, l) => {
  const mac = crypto.createHmac('sha256', key);
  for (const p of [field('nestjs-cluster link proof'), field(role), field(Buffer.from([V])), field(nD), field(nL), ...ident(d), ...ident(l)]) mac.update(p);
  return mac.digest();
};
const socket = net.connect({ host, port });
let buf = Buffer.alloc(0);
let state = 'hello';
let timer;
let nL;
let listener;
const nD = crypto.randomBytes(32);
socket.on('connect', () => {
  socket.setNoDelay(true);
  socket.write(frame(1, Buffer.from(JSON.stringify({ nonce: nD.toString('base64'), ...identity }))));
});
// Sealed records (README, link protocol): keys by HKDF-SHA256, AES-256-GCM, counter nonces.
let sendKey;
let sent = 0;
const deriveKeys = (nL, listener) => {
  const salt = crypto.createHash('sha256');
  for (const p of [field('nestjs-cluster record keys'), field(Buffer.from([V])), field(nD), field(nL), ...ident(identity), ...ident(listener)]) salt.update(p);
  const s = salt.digest();
  sendKey = Buffer.from(crypto.hkdfSync('sha256', key, s, 'nestjs-cluster record key dialer->listener', 32));
};
const sealed = (plain) => {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(plain.length + 16, 0);
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64BE(BigInt(sent++), 4);
  const c = crypto.createCipheriv('aes-256-gcm', sendKey, nonce);
  c.setAAD(head);
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([head, body, c.getAuthTag()]);
};
socket.on('data', (chunk) => {
  if (state === 'linked') return;
  buf = Buffer.concat([buf, chunk]);
  while (state !== 'linked' && buf.length >= 6 && buf.length >= 4 + buf.readUInt32BE(0)) {
    const len = buf.readUInt32BE(0);
    const type = buf[5];
    const payload = buf.subarray(6, 4 + len);
    buf = buf.subarray(4 + len);
    if (state === 'hello' && type === 1) {
      // The listener's HELLO carries no proof: the dialer proves first.
      const h = JSON.parse(payload.toString('utf8'));
      nL = Buffer.from(h.nonce, 'base64');
      listener = { name: h.name, incarnation: h.incarnation, startedAt: h.startedAt, endpoint: h.endpoint };
      socket.write(frame(2, Buffer.from(JSON.stringify({ proof: proof('dialer', nD, nL, identity, listener).toString('base64') }))));
      state = 'auth';
    } else if (state === 'auth' && type === 6) {
      parentPort.postMessage('cookie-mismatch');
      socket.destroy();
      return;
    } else if (state === 'auth' && type === 2) {
      const a = JSON.parse(payload.toString('utf8'));
      if (!crypto.timingSafeEqual(proof('listener', nD, nL, identity, listener), Buffer.from(a.proof, 'base64'))) {
        parentPort.postMessage('cookie-mismatch');
        socket.destroy();
        return;
      }
      socket.write(frame(3));
      deriveKeys(nL, listener);
      state = 'linked';
      timer = setInterval(() => socket.write(sealed(frame(4))), heartbeatMs);
      parentPort.postMessage('linked');
    }
  }
});
socket.on('close', () => {
  clearInterval(timer);
  parentPort.postMessage('closed');
  parentPort.close();
});
socket.on('error', () => undefined);
parentPort.on('message', (m) => {
  if (m === 'silence') clearInterval(timer);
  if (m === 'leave') { socket.write(sealed(frame(5))); socket.end(); }
  if (m === 'close') socket.destroy();
});
`;

/** Starts the worker-thread peer; it dials, handshakes, then heartbeats every `heartbeatMs`. */
export function startHeartbeatingPeer(options: {
  host: string;
  port: number;
  cookie: string;
  identity: NodeIdentity;
  heartbeatMs: number;
}): Worker {
  return new Worker(HEARTBEATING_PEER_SOURCE, { eval: true, workerData: options });
}
