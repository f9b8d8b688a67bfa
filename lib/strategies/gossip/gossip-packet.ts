import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { GossipPacketError } from '../../errors/gossip-packet.error.js';
import {
  deriveCookieKey,
  deriveCookieKeyAsync,
  isCookieKeyDerived,
} from '../../security/cookie-keyring.js';

/**
 * Gossip packet codec: one heartbeat per UDP datagram, sealed with AES-256-GCM.
 *
 * ```
 * offset  size  field
 * 0       4     magic "NCGS" (0x4E 0x43 0x47 0x53)         ┐
 * 4       1     packet format version (2)                   │ plaintext header,
 * 5       4     key id, u32 BE (see below)                  ┘ bound as GCM AAD
 * 9       12    IV, random per packet
 * 21      n     ciphertext of the body below
 * 21+n    16    GCM authentication tag
 *
 * body (before encryption)
 * 0       1     kind: 1 heartbeat, 2 reply (an immediate answer; never answered itself)
 * 1       8     sentAt, epoch ms, u64 BE       ┐ replay protection: timestamp window
 * 9       16    nonce, random                  ┘ + nonce cache
 * 25      2     link protocol version, u16 BE
 * 27      8     startedAt, epoch ms, u64 BE
 * 35      1+n   node name (u8 length + UTF-8)
 * ..      1+n   incarnation (u8 length + UTF-8)
 * ..      1+n   link endpoint host:port (u8 length + UTF-8)
 * ```
 *
 * The key is derived from the gossip secret (or the cluster cookie) through the cookie KDF
 * (scrypt N = 2^14, r = 8, p = 1, fixed salt: tens of milliseconds, once per secret and
 * process, shared with the links' key of the same cookie), then HKDF-SHA256 with
 * a fixed info label, so a captured packet makes every offline guess of the secret cost
 * that much, and the same secret never yields the same key as any other use of it.
 *
 * The key id is the first 4 bytes of HKDF-SHA256 of the key (its own info label): a
 * receiver holds a key ring (the current key and the retired ones still accepted during a
 * rotation) and drops a packet whose key id matches none of them before any AES work — a
 * packet from another cluster or a forger costs a 4-byte lookup, not a failed decryption.
 * A matching key id is only a hint; the GCM tag decides.
 */

/** Magic bytes that open every gossip packet. */
export const GOSSIP_MAGIC = Buffer.from('NCGS', 'latin1');
/** Version of the packet format (byte 4). 1 had no key id. */
export const GOSSIP_PACKET_VERSION = 2;

const KEY_ID_OFFSET = GOSSIP_MAGIC.length + 1;
const KEY_ID_BYTES = 4;
const HEADER_BYTES = KEY_ID_OFFSET + KEY_ID_BYTES;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Size of the replay nonce inside the body. */
export const GOSSIP_NONCE_BYTES = 16;
const FIXED_BODY_BYTES = 1 + 8 + GOSSIP_NONCE_BYTES + 2 + 8;
const MAX_STRING_BYTES = 255;
/** Smallest well-formed packet (three one-byte strings). */
export const GOSSIP_MIN_PACKET_BYTES =
  HEADER_BYTES + IV_BYTES + FIXED_BODY_BYTES + 3 * 2 + TAG_BYTES;
/** Largest well-formed packet; anything bigger is dropped before decryption. */
export const GOSSIP_MAX_PACKET_BYTES =
  HEADER_BYTES + IV_BYTES + FIXED_BODY_BYTES + 3 * (1 + MAX_STRING_BYTES) + TAG_BYTES;

const KDF_SALT = Buffer.from('nestjs-cluster/gossip/salt/v2', 'utf8');
const KDF_INFO = Buffer.from('nestjs-cluster gossip AES-256-GCM key v2', 'utf8');
const KEY_ID_INFO = Buffer.from('nestjs-cluster gossip key id v2', 'utf8');
const MAGIC_U32 = GOSSIP_MAGIC.readUInt32BE(0);
const MAGIC_AND_VERSION = Buffer.concat([GOSSIP_MAGIC, Buffer.from([GOSSIP_PACKET_VERSION])]);

/** A packet key and its public id (the u32 in every packet header sealed with it). */
export interface GossipKey {
  readonly id: number;
  readonly key: KeyObject;
}

/**
 * The keys a node opens packets with: the current one (the only one it seals with) and the
 * retired ones still accepted during a rotation (`LIBCLUSTER_GOSSIP_SECRET_PREVIOUS`, or
 * `NODE_COOKIE_PREVIOUS` when gossip is keyed from the cookie).
 */
export class GossipKeyring {
  /** Every key, the current one first; no two equal. */
  readonly keys: readonly GossipKey[];

  constructor(
    readonly current: GossipKey,
    previous: readonly GossipKey[] = [],
  ) {
    const keys = [current];
    for (const k of previous) if (!keys.some((known) => sameKey(known, k))) keys.push(k);
    this.keys = keys;
  }

  /** Derives the ring from the current secret and the retired ones (duplicates dropped). */
  static fromSecrets(current: string, previous: readonly string[] = []): GossipKeyring {
    return new GossipKeyring(
      deriveGossipKey(current),
      previous.filter((p) => p !== current).map((p) => deriveGossipKey(p)),
    );
  }

  /** `fromSecrets` with scrypt off the event loop. */
  static async fromSecretsAsync(
    current: string,
    previous: readonly string[] = [],
  ): Promise<GossipKeyring> {
    const [first, ...rest] = await Promise.all(
      [current, ...previous.filter((p) => p !== current)].map(deriveGossipKeyAsync),
    );
    return new GossipKeyring(first, rest);
  }

  /** True for a key of the ring other than the current one. */
  isPrevious(key: GossipKey): boolean {
    return key !== this.current;
  }
}

function sameKey(a: GossipKey, b: GossipKey): boolean {
  return a.id === b.id && a.key.equals(b.key);
}

/** A key id as printed in logs: 8 hex digits. */
export function formatKeyId(id: number): string {
  return id.toString(16).padStart(8, '0');
}

/** What a heartbeat says. */
export interface GossipHeartbeat {
  /** `heartbeat` (periodic, to the group) or `reply` (immediate unicast answer). */
  readonly kind: 'heartbeat' | 'reply';
  /** Sender's clock when sealing, epoch ms. */
  readonly sentAt: number;
  /** Random bytes, unique per packet. */
  readonly nonce: Buffer;
  /** Link protocol version the sender speaks. */
  readonly protocolVersion: number;
  readonly name: string;
  readonly incarnation: string;
  readonly startedAt: number;
  /** `host:port` where the sender accepts links. */
  readonly endpoint: string;
}

/** Why a datagram was not accepted. */
export type GossipDropReason =
  | 'size'
  | 'magic'
  | 'version'
  | 'key'
  | 'auth'
  | 'malformed'
  | 'stale'
  | 'future'
  | 'replay'
  | 'self-incarnation'
  | 'older-incarnation'
  | 'endpoint';

/** Result of {@link openHeartbeat}. */
export type OpenResult =
  | { readonly ok: true; readonly heartbeat: GossipHeartbeat; readonly key: GossipKey }
  | { readonly ok: false; readonly reason: GossipDropReason; readonly keyId?: number };

/** Packet keys by their stretched secret (which the cookie KDF memoises per process). */
const derived = new WeakMap<KeyObject, GossipKey>();

/** The packet key and its id from the stretched secret: HKDF-SHA256, two labels. */
function packetKey(stretched: KeyObject): GossipKey {
  const known = derived.get(stretched);
  if (known) return known;
  const raw = Buffer.from(hkdfSync('sha256', stretched, KDF_SALT, KDF_INFO, 32));
  const id = Buffer.from(hkdfSync('sha256', raw, KDF_SALT, KEY_ID_INFO, KEY_ID_BYTES)).readUInt32BE(
    0,
  );
  const key: GossipKey = Object.freeze({ id, key: createSecretKey(raw) });
  derived.set(stretched, key);
  return key;
}

/**
 * Derives the packet key and its id from a secret: the cookie KDF (scrypt, see
 * `deriveCookieKey`: tens of milliseconds, once per secret and process — so gossip keyed
 * from `NODE_COOKIE` shares the links' derivation), then HKDF-SHA256 with gossip's labels.
 */
export function deriveGossipKey(secret: string): GossipKey {
  return packetKey(deriveCookieKey(secret));
}

/** `deriveGossipKey` with scrypt off the event loop (libuv's thread pool). */
export async function deriveGossipKeyAsync(secret: string): Promise<GossipKey> {
  return packetKey(await deriveCookieKeyAsync(secret));
}

/** True when `deriveGossipKey(secret)` would not run scrypt (derived before in this process). */
export function isGossipKeyDerived(secret: string): boolean {
  return isCookieKeyDerived(secret);
}

/** A fresh random nonce. */
export function createGossipNonce(): Buffer {
  return randomBytes(GOSSIP_NONCE_BYTES);
}

/** Encodes and seals a heartbeat. Throws `GossipPacketError` when a field does not fit. */
export function sealHeartbeat(
  key: GossipKey,
  heartbeat: GossipHeartbeat,
  iv: Buffer = randomBytes(IV_BYTES),
): Buffer {
  if (heartbeat.nonce.length !== GOSSIP_NONCE_BYTES) {
    throw new GossipPacketError('nonce', `must be ${GOSSIP_NONCE_BYTES} bytes`);
  }
  if (
    !Number.isInteger(heartbeat.protocolVersion) ||
    heartbeat.protocolVersion < 0 ||
    heartbeat.protocolVersion > 0xffff
  ) {
    throw new GossipPacketError('protocolVersion', 'must be an integer from 0 to 65535');
  }
  const strings = (['name', 'incarnation', 'endpoint'] as const).map((field) => {
    const bytes = Buffer.from(heartbeat[field], 'utf8');
    if (bytes.length === 0 || bytes.length > MAX_STRING_BYTES) {
      throw new GossipPacketError(
        field,
        `must be 1 to ${MAX_STRING_BYTES} bytes of UTF-8 (got ${bytes.length})`,
      );
    }
    return Buffer.concat([Buffer.from([bytes.length]), bytes]);
  });
  const fixed = Buffer.alloc(FIXED_BODY_BYTES);
  fixed.writeUInt8(heartbeat.kind === 'reply' ? 2 : 1, 0);
  writeTime(fixed, 'sentAt', heartbeat.sentAt, 1);
  heartbeat.nonce.copy(fixed, 9);
  fixed.writeUInt16BE(heartbeat.protocolVersion, 25);
  writeTime(fixed, 'startedAt', heartbeat.startedAt, 27);
  const body = Buffer.concat([fixed, ...strings]);

  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC_AND_VERSION.copy(header, 0);
  header.writeUInt32BE(key.id, KEY_ID_OFFSET);
  const cipher = createCipheriv('aes-256-gcm', key.key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(header);
  const ciphertext = Buffer.concat([cipher.update(body), cipher.final()]);
  return Buffer.concat([header, iv, ciphertext, cipher.getAuthTag()]);
}

/**
 * Authenticates and decodes a datagram. Never throws: anything that is not a heartbeat
 * sealed with a key of `ring` in this format yields `{ ok: false, reason }`. A key id that
 * matches no key of the ring is dropped as `key` before any decryption (with the id, for
 * the log); only a matching id goes on to the GCM tag (`auth` when it fails). Freshness
 * (timestamp window, nonce reuse) is checked by the caller.
 */
export function openHeartbeat(ring: GossipKeyring, packet: Buffer): OpenResult {
  if (packet.length < GOSSIP_MIN_PACKET_BYTES || packet.length > GOSSIP_MAX_PACKET_BYTES) {
    return { ok: false, reason: 'size' };
  }
  if (packet.readUInt32BE(0) !== MAGIC_U32) return { ok: false, reason: 'magic' };
  if (packet[GOSSIP_MAGIC.length] !== GOSSIP_PACKET_VERSION)
    return { ok: false, reason: 'version' };

  const keyId = packet.readUInt32BE(KEY_ID_OFFSET);
  const keys = ring.keys;
  for (let i = 0; i < keys.length; i++) {
    const candidate = keys[i];
    if (candidate.id !== keyId) continue;
    const body = decrypt(candidate.key, packet);
    if (body === undefined) continue;
    const decoded = decodeBody(body);
    return decoded.ok ? { ...decoded, key: candidate } : decoded;
  }
  return keys.some((k) => k.id === keyId)
    ? { ok: false, reason: 'auth', keyId }
    : { ok: false, reason: 'key', keyId };
}

/** GCM open; undefined when the tag does not match (the only place that can throw). */
function decrypt(key: KeyObject, packet: Buffer): Buffer | undefined {
  const iv = packet.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES);
  const ciphertext = packet.subarray(HEADER_BYTES + IV_BYTES, packet.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(packet.subarray(0, HEADER_BYTES));
    decipher.setAuthTag(packet.subarray(packet.length - TAG_BYTES));
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch {
    return undefined;
  }
}

function decodeBody(
  body: Buffer,
):
  | { readonly ok: true; readonly heartbeat: GossipHeartbeat }
  | { readonly ok: false; readonly reason: 'malformed' } {
  const malformed = { ok: false, reason: 'malformed' } as const;
  if (body.length < FIXED_BODY_BYTES) return malformed;
  const kindByte = body.readUInt8(0);
  if (kindByte !== 1 && kindByte !== 2) return malformed;
  const sentAt = Number(body.readBigUInt64BE(1));
  const nonce = Buffer.from(body.subarray(9, 9 + GOSSIP_NONCE_BYTES));
  const protocolVersion = body.readUInt16BE(25);
  const startedAt = Number(body.readBigUInt64BE(27));
  let offset = FIXED_BODY_BYTES;
  const strings: string[] = [];
  for (let i = 0; i < 3; i++) {
    if (offset >= body.length) return malformed;
    const length = body.readUInt8(offset);
    offset += 1;
    if (length === 0 || offset + length > body.length) return malformed;
    strings.push(body.toString('utf8', offset, offset + length));
    offset += length;
  }
  if (offset !== body.length || !Number.isSafeInteger(sentAt) || !Number.isSafeInteger(startedAt))
    return malformed;
  const [name, incarnation, endpoint] = strings as [string, string, string];
  return {
    ok: true,
    heartbeat: {
      kind: kindByte === 2 ? 'reply' : 'heartbeat',
      sentAt,
      nonce,
      protocolVersion,
      name,
      incarnation,
      startedAt,
      endpoint,
    },
  };
}

function writeTime(target: Buffer, field: string, ms: number, offset: number): void {
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new GossipPacketError(field, 'must be a non-negative integer of epoch milliseconds');
  }
  target.writeBigUInt64BE(BigInt(ms), offset);
}
