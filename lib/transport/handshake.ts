import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';
import { CookieMismatchError } from '../errors/cookie-mismatch.error.js';
import { HandshakeFailedError } from '../errors/handshake-failed.error.js';
import { HandshakeTimeoutError } from '../errors/handshake-timeout.error.js';
import { MalformedFrameError } from '../errors/malformed-frame.error.js';
import { ProtocolVersionError } from '../errors/protocol-version.error.js';
import { LinkRefusedError, type AdmissionRefusal } from '../errors/link-refused.error.js';
import { PeerCertificateError } from '../errors/peer-certificate.error.js';
import type { NodeIdentity } from '../interfaces/member.interface.js';
import type { Clock, TimerHandle } from '../runtime/clock.js';
import type { Random } from '../runtime/random.js';
import type { CookieKeyring } from '../security/cookie-keyring.js';
import type { Wire } from './wire.js';
import { encodeFrame, FrameDecoder, HEADER_BYTES, PROTOCOL_VERSION, type Frame } from './frame.js';
import { FrameType, frameTypeName, HANDSHAKE_FRAME_TYPES } from './frame-types.js';
import { deriveLinkKeys, recordKeysFor, type RecordKeys } from './record-seal.js';
import { field, identityFields } from './transcript-fields.js';

/** Largest frame body accepted before a connection is authenticated, bytes. */
export const PRE_AUTH_MAX_FRAME_BYTES = 4096;
/** Bytes of each handshake nonce. */
export const NONCE_BYTES = 32;
/** Bytes of an HMAC-SHA256 proof. */
export const PROOF_BYTES = 32;
/** Limits of the identity fields exchanged in HELLO (UTF-8 bytes). */
export const IDENTITY_LIMITS = { name: 255, incarnation: 128, endpoint: 300 } as const;

/** Why a handshake was refused, as carried in a REFUSE frame (or the dialer's AUTH). */
export type RefuseReason =
  'cookie-mismatch' | 'protocol-version' | 'busy' | 'malformed' | AdmissionRefusal;
const ADMISSION_REFUSALS: ReadonlySet<string> = new Set<AdmissionRefusal>([
  'self',
  'name-taken',
  'superseded',
  'dropped',
  'certificate',
]);
const REFUSE_REASONS: ReadonlySet<string> = new Set<RefuseReason>([
  'cookie-mismatch',
  'protocol-version',
  'busy',
  'malformed',
  ...(ADMISSION_REFUSALS as ReadonlySet<AdmissionRefusal>),
]);

/**
 * Decides, once the peer has proven the cookie, whether it may have a link: undefined to
 * admit, or the reason to refuse (membership's rules).
 */
export type Admission = (peer: NodeIdentity) => AdmissionRefusal | undefined;

/** Which side of the handshake a proof comes from. */
export type HandshakeRole = 'dialer' | 'listener';

/** A HELLO message: identity and nonce (no proof: neither side has proven anything yet). */
export interface HelloMessage {
  readonly nonce: Buffer;
  readonly identity: NodeIdentity;
}

const MAC_LABEL = 'nestjs-cluster link proof';
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/**
 * Proof that the sender knows the cookie: HMAC-SHA256 keyed with the cookie key (the scrypt
 * output of the cookie, see `deriveCookieKey`) over the length-prefixed fields `label, role,
 * version, nonceD, nonceL, dialer identity, listener identity` (each identity as `name,
 * incarnation, startedAt (decimal), endpoint`).
 */
export function computeProof(
  cookieKey: KeyObject,
  role: HandshakeRole,
  version: number,
  dialerNonce: Buffer,
  listenerNonce: Buffer,
  dialer: NodeIdentity,
  listener: NodeIdentity,
): Buffer {
  const mac = createHmac('sha256', cookieKey);
  for (const part of [
    field(MAC_LABEL),
    field(role),
    field(Buffer.from([version])),
    field(dialerNonce),
    field(listenerNonce),
    ...identityFields(dialer),
    ...identityFields(listener),
  ]) {
    mac.update(part);
  }
  return mac.digest();
}

/** Compares a received proof with the expected one in constant time. */
export function proofMatches(expected: Buffer, received: Buffer): boolean {
  return received.length === expected.length && timingSafeEqual(expected, received);
}

/** A fresh random nonce. */
export function createNonce(random: Random): Buffer {
  return random.bytes(NONCE_BYTES);
}

/** Encodes a HELLO payload (JSON, binary fields in base64). */
export function encodeHello(message: HelloMessage): Buffer {
  const { identity } = message;
  return Buffer.from(
    JSON.stringify({
      nonce: message.nonce.toString('base64'),
      name: identity.name,
      incarnation: identity.incarnation,
      startedAt: identity.startedAt,
      endpoint: identity.endpoint,
    }),
    'utf8',
  );
}

function parseJsonObject(payload: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new MalformedFrameError(`${what} is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MalformedFrameError(`${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

function boundedString(value: unknown, key: string, min: number, max: number): string {
  if (typeof value !== 'string') throw new MalformedFrameError(`${key} is not a string`);
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes < min || bytes > max)
    throw new MalformedFrameError(`${key} must be ${min}–${max} bytes`);
  if (CONTROL_CHARS.test(value))
    throw new MalformedFrameError(`${key} contains control characters`);
  return value;
}

function fixedBytes(value: unknown, key: string, length: number): Buffer {
  if (typeof value !== 'string' || value.length > 2 * length) {
    throw new MalformedFrameError(`${key} is not base64`);
  }
  const bytes = Buffer.from(value, 'base64');
  if (bytes.length !== length || bytes.toString('base64') !== value) {
    throw new MalformedFrameError(`${key} must be ${length} bytes of base64`);
  }
  return bytes;
}

/**
 * Decodes and validates a HELLO payload. Throws `MalformedFrameError` on anything outside the
 * limits. Unknown fields are ignored (later versions may add some).
 */
export function decodeHello(payload: Buffer): HelloMessage {
  const o = parseJsonObject(payload, 'HELLO');
  const startedAt = o['startedAt'];
  if (typeof startedAt !== 'number' || !Number.isSafeInteger(startedAt) || startedAt < 0) {
    throw new MalformedFrameError('startedAt is not a non-negative integer');
  }
  const identity: NodeIdentity = {
    name: boundedString(o['name'], 'name', 1, IDENTITY_LIMITS.name),
    incarnation: boundedString(o['incarnation'], 'incarnation', 1, IDENTITY_LIMITS.incarnation),
    startedAt,
    endpoint: boundedString(o['endpoint'], 'endpoint', 0, IDENTITY_LIMITS.endpoint),
  };
  return { nonce: fixedBytes(o['nonce'], 'nonce', NONCE_BYTES), identity };
}

/**
 * Encodes an AUTH payload: `{"proof": base64}`, plus `"refuse": reason` when the listener,
 * having authenticated the dialer, refuses it (the proof makes the refusal trustworthy).
 */
export function encodeAuth(proof: Buffer, refuse?: AdmissionRefusal): Buffer {
  return Buffer.from(
    JSON.stringify({ proof: proof.toString('base64'), ...(refuse ? { refuse } : {}) }),
    'utf8',
  );
}

/** Decodes an AUTH payload; an unknown `refuse` value is malformed. */
export function decodeAuth(payload: Buffer): { proof: Buffer; refuse?: AdmissionRefusal } {
  const o = parseJsonObject(payload, 'AUTH');
  const proof = fixedBytes(o['proof'], 'proof', PROOF_BYTES);
  const refuse = o['refuse'];
  if (refuse === undefined) return { proof };
  if (typeof refuse !== 'string' || !ADMISSION_REFUSALS.has(refuse))
    throw new MalformedFrameError('refuse is not a known reason');
  return { proof, refuse: refuse as AdmissionRefusal };
}

/** Encodes a REFUSE payload: `{"reason": ...}`. */
export function encodeRefuse(reason: RefuseReason): Buffer {
  return Buffer.from(JSON.stringify({ reason }), 'utf8');
}

/** Decodes a REFUSE payload; an unknown reason decodes as 'malformed'. */
export function decodeRefuse(payload: Buffer): RefuseReason {
  try {
    const reason = parseJsonObject(payload, 'REFUSE')['reason'];
    return typeof reason === 'string' && REFUSE_REASONS.has(reason)
      ? (reason as RefuseReason)
      : 'malformed';
  } catch {
    return 'malformed';
  }
}

/** What a successful handshake hands to the link. */
export interface HandshakeResult {
  /** The authenticated identity of the peer. */
  readonly peer: NodeIdentity;
  /** The connection's decoder; it may already hold bytes of the first link records. */
  readonly decoder: FrameDecoder;
  /** This side's role in the handshake. */
  readonly role: HandshakeRole;
  /** The local identity the proofs covered. */
  readonly self: NodeIdentity;
  /** Protocol version of the proofs. */
  readonly version: number;
  /**
   * The cookie key both proofs were computed with: the current cookie's, or — on the
   * listener — the previous cookie's the dialer proved. Input for keys derived from this
   * link; never log it.
   */
  readonly cookieKey: KeyObject;
  /** The two nonces of this handshake. */
  readonly nonces: { readonly dialer: Buffer; readonly listener: Buffer };
  /** This side's record keys (seal with `send`, open with `receive`). */
  readonly keys: RecordKeys;
}

/** Inputs of one side of the handshake. */
export interface HandshakeOptions {
  /**
   * The cookie keys: a dialer proves `current`; a listener accepts a dialer that proves any
   * of `all` and answers under that same key.
   */
  /** The cookie keys, or the promise of them (awaited before the first proof). */
  readonly keyring: CookieKeyring | Promise<CookieKeyring>;
  readonly clock: Clock;
  readonly random: Random;
  /** Membership's admission rule, applied once the peer is authenticated. @default admit all */
  readonly admit?: Admission;
  /** The local identity at the time of the handshake. */
  readonly identity: NodeIdentity;
  /** Deadline of the whole handshake, ms. */
  readonly timeoutMs: number;
  /** `host:port` of the peer, for errors. */
  readonly peerAddress: string;
  /** Protocol version spoken. @default PROTOCOL_VERSION (other values only in tests) */
  readonly version?: number;
}

/**
 * Reads handshake frames from a socket one at a time, with the pre-auth frame limit and a
 * deadline. Only handshake frame types are allowed.
 */
class HandshakeReader {
  readonly decoder: FrameDecoder;
  private waiter: { resolve: (frame: Frame) => void; reject: (error: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly timer: TimerHandle;

  constructor(
    private readonly socket: Wire,
    private readonly options: HandshakeOptions,
  ) {
    this.decoder = new FrameDecoder(PRE_AUTH_MAX_FRAME_BYTES, options.version ?? PROTOCOL_VERSION);
    this.timer = options.clock.setTimeout(
      () => this.fail(new HandshakeTimeoutError(options.peerAddress, options.timeoutMs)),
      options.timeoutMs,
    );
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  /** Resolves with the next handshake frame; rejects on violation, close or deadline. */
  next(): Promise<Frame> {
    return new Promise((resolve, reject) => {
      if (this.failure) {
        reject(this.failure);
        return;
      }
      this.waiter = { resolve, reject };
      this.pump();
    });
  }

  /** Stops reading (the socket is paused) and clears the deadline. */
  detach(): void {
    this.options.clock.clearTimeout(this.timer);
    this.socket.pause();
    this.socket.off('data', this.onData);
    this.socket.off('error', this.onError);
    this.socket.off('close', this.onClose);
  }

  private readonly onData = (chunk: Buffer): void => {
    try {
      this.decoder.write(chunk);
    } catch (error) {
      this.fail(error as Error);
      return;
    }
    this.pump();
    // Bytes nobody asked for yet may not pile up beyond one pre-auth frame.
    if (
      this.waiter === undefined &&
      this.decoder.bufferedBytes > PRE_AUTH_MAX_FRAME_BYTES + HEADER_BYTES
    ) {
      this.fail(new MalformedFrameError('unexpected data during the handshake'));
    }
  };

  private readonly onError = (error: Error): void => {
    this.fail(
      new HandshakeFailedError(this.options.peerAddress, `connection error (${errorCode(error)})`, {
        cause: error,
      }),
    );
  };

  private readonly onClose = (): void => {
    this.fail(
      new HandshakeFailedError(
        this.options.peerAddress,
        'the connection closed during the handshake',
      ),
    );
  };

  private pump(): void {
    const waiter = this.waiter;
    if (waiter === undefined || this.failure) return;
    let frame: Frame | undefined;
    try {
      frame = this.decoder.read();
    } catch (error) {
      this.fail(error as Error);
      return;
    }
    if (frame === undefined) return;
    if (!HANDSHAKE_FRAME_TYPES.has(frame.type)) {
      this.fail(
        new MalformedFrameError(
          `${frameTypeName(frame.type)} frame before the handshake completed`,
        ),
      );
      return;
    }
    this.waiter = undefined;
    waiter.resolve(frame);
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure =
      error instanceof ProtocolVersionError
        ? new ProtocolVersionError(error.peerVersion, error.localVersion, this.options.peerAddress)
        : error;
    this.options.clock.clearTimeout(this.timer);
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(this.failure);
  }
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : error instanceof Error ? error.message : String(error);
}

function send(socket: Wire, type: number, payload: Buffer, version: number): void {
  if (!socket.destroyed && socket.writable) socket.write(encodeFrame(type, payload, version));
}

/** Sends a REFUSE frame (best effort) before the caller closes the connection. */
export function sendRefuse(
  socket: Wire,
  reason: RefuseReason,
  version: number = PROTOCOL_VERSION,
): void {
  send(socket, FrameType.REFUSE, encodeRefuse(reason), version);
}

function refusalError(reason: RefuseReason, peerAddress: string, peer?: NodeIdentity): Error {
  if (peer && ADMISSION_REFUSALS.has(reason))
    return new LinkRefusedError(peerAddress, peer, reason as AdmissionRefusal, 'remote');
  switch (reason) {
    case 'cookie-mismatch':
      return new CookieMismatchError(peerAddress);
    case 'certificate':
      // Refused at the TLS layer, before the peer knew this node's name (see TlsNetwork).
      return new PeerCertificateError(peerAddress, 'remote', 'the peer refused it');
    case 'busy':
      return new HandshakeFailedError(peerAddress, 'the peer is busy with other handshakes');
    default:
      return new HandshakeFailedError(peerAddress, `the peer refused the handshake (${reason})`);
  }
}

function unexpected(frame: Frame, expected: string): MalformedFrameError {
  return new MalformedFrameError(`expected ${expected}, got ${frameTypeName(frame.type)}`);
}

/**
 * The key of `keyring` that `received` was computed with, or undefined. Every key is tried
 * (the work does not depend on which one matches), each compared in constant time.
 */
function matchingKey(
  keyring: CookieKeyring,
  received: Buffer,
  proofWith: (key: KeyObject) => Buffer,
): KeyObject | undefined {
  let found: KeyObject | undefined;
  for (const key of keyring.all) {
    if (proofMatches(proofWith(key), received) && found === undefined) found = key;
  }
  return found;
}

/**
 * The record keys of a link that just completed its handshake (see `deriveLinkKeys`). The
 * cookie key is the key the handshake's proofs were computed with.
 */
function linkKeys(
  role: HandshakeRole,
  cookieKey: KeyObject,
  version: number,
  dialerNonce: Buffer,
  listenerNonce: Buffer,
  dialer: NodeIdentity,
  listener: NodeIdentity,
): RecordKeys {
  return recordKeysFor(
    role,
    deriveLinkKeys({
      cookieKey: cookieKey.export(),
      version,
      dialerNonce,
      listenerNonce,
      dialer,
      listener,
    }),
  );
}

/**
 * Runs the dialer's side of the handshake on a connected socket.
 *
 * HELLO → ← HELLO, AUTH (dialer's proof) → ← AUTH (listener's proof, or REFUSE), WELCOME →.
 * The dialer proves first, with the current cookie key; it accepts only a listener proof
 * made with that same key.
 *
 * Rejects with `CookieMismatchError`, `ProtocolVersionError`, `HandshakeTimeoutError`,
 * `MalformedFrameError` or `HandshakeFailedError`; the caller closes the socket then.
 */
export async function dialerHandshake(
  socket: Wire,
  options: HandshakeOptions,
): Promise<HandshakeResult> {
  const version = options.version ?? PROTOCOL_VERSION;
  const reader = new HandshakeReader(socket, options);
  try {
    const cookieKey = (await options.keyring).current;
    const nonceD = createNonce(options.random);
    const self = options.identity;
    send(socket, FrameType.HELLO, encodeHello({ nonce: nonceD, identity: self }), version);

    const first = await reader.next();
    if (first.type === FrameType.REFUSE)
      throw refusalError(decodeRefuse(first.payload), options.peerAddress);
    if (first.type !== FrameType.HELLO) throw unexpected(first, 'HELLO');
    const hello = decodeHello(first.payload);
    const proof = (role: HandshakeRole) =>
      computeProof(cookieKey, role, version, nonceD, hello.nonce, self, hello.identity);
    send(socket, FrameType.AUTH, encodeAuth(proof('dialer')), version);

    const second = await reader.next();
    // Not authenticated yet: only the reason is believed, not the identity.
    if (second.type === FrameType.REFUSE)
      throw refusalError(decodeRefuse(second.payload), options.peerAddress);
    if (second.type !== FrameType.AUTH) throw unexpected(second, 'AUTH');
    const auth = decodeAuth(second.payload);
    if (!proofMatches(proof('listener'), auth.proof)) {
      sendRefuse(socket, 'cookie-mismatch', version);
      throw new CookieMismatchError(options.peerAddress);
    }
    if (auth.refuse)
      throw new LinkRefusedError(options.peerAddress, hello.identity, auth.refuse, 'remote');
    const refuse = options.admit?.(hello.identity);
    if (refuse) {
      sendRefuse(socket, refuse, version);
      throw new LinkRefusedError(options.peerAddress, hello.identity, refuse, 'local');
    }
    send(socket, FrameType.WELCOME, Buffer.alloc(0), version);
    return {
      peer: hello.identity,
      decoder: reader.decoder,
      keys: linkKeys('dialer', cookieKey, version, nonceD, hello.nonce, self, hello.identity),
      role: 'dialer',
      self,
      version,
      cookieKey,
      nonces: { dialer: nonceD, listener: hello.nonce },
    };
  } finally {
    reader.detach();
  }
}

/**
 * Runs the listener's side of the handshake on an accepted socket. It sends no proof before
 * the dialer has proven one of the keyring's keys; it then proves that same key.
 *
 * Rejects like `dialerHandshake`; on a version mismatch, a cookie mismatch or malformed
 * data it has already sent a REFUSE frame, and the caller closes the socket.
 */
export async function listenerHandshake(
  socket: Wire,
  options: HandshakeOptions,
): Promise<HandshakeResult> {
  const version = options.version ?? PROTOCOL_VERSION;
  const reader = new HandshakeReader(socket, options);
  try {
    const first = await reader.next();
    if (first.type !== FrameType.HELLO) throw unexpected(first, 'HELLO');
    const hello = decodeHello(first.payload);
    const self = options.identity;
    const nonceL = createNonce(options.random);
    send(socket, FrameType.HELLO, encodeHello({ nonce: nonceL, identity: self }), version);

    const second = await reader.next();
    if (second.type === FrameType.REFUSE)
      throw refusalError(decodeRefuse(second.payload), options.peerAddress);
    if (second.type !== FrameType.AUTH) throw unexpected(second, 'AUTH');
    const auth = decodeAuth(second.payload);
    if (auth.refuse) throw new MalformedFrameError('a dialer AUTH carries no refusal');
    const proof = (key: KeyObject, role: HandshakeRole) =>
      computeProof(key, role, version, hello.nonce, nonceL, hello.identity, self);
    const keyring = await options.keyring;
    const cookieKey = matchingKey(keyring, auth.proof, (key) => proof(key, 'dialer'));
    if (cookieKey === undefined) {
      sendRefuse(socket, 'cookie-mismatch', version);
      throw new CookieMismatchError(options.peerAddress);
    }
    const refuse = options.admit?.(hello.identity);
    send(socket, FrameType.AUTH, encodeAuth(proof(cookieKey, 'listener'), refuse), version);
    if (refuse) throw new LinkRefusedError(options.peerAddress, hello.identity, refuse, 'local');

    const last = await reader.next();
    if (last.type === FrameType.REFUSE)
      throw refusalError(decodeRefuse(last.payload), options.peerAddress, hello.identity);
    if (last.type !== FrameType.WELCOME) throw unexpected(last, 'WELCOME');
    return {
      peer: hello.identity,
      decoder: reader.decoder,
      keys: linkKeys('listener', cookieKey, version, hello.nonce, nonceL, hello.identity, self),
      role: 'listener',
      self,
      version,
      cookieKey,
      nonces: { dialer: hello.nonce, listener: nonceL },
    };
  } catch (error) {
    if (error instanceof ProtocolVersionError) sendRefuse(socket, 'protocol-version', version);
    else if (error instanceof MalformedFrameError) sendRefuse(socket, 'malformed', version);
    throw error;
  } finally {
    reader.detach();
  }
}
