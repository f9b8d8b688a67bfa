import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { GossipPacketError } from '../../errors/gossip-packet.error.js';

/**
 * Gossip packet codec: one heartbeat per UDP datagram, sealed with AES-256-GCM.
 *
 * ```
 * offset  size  field
 * 0       4     magic "NCGS" (0x4E 0x43 0x47 0x53)         ┐ plaintext header,
 * 4       1     packet format version (1)                   ┘ bound as GCM AAD
 * 5       12    IV, random per packet
 * 17      n     ciphertext of the body below
 * 17+n    16    GCM authentication tag
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
 * The key is HKDF-SHA256 of the gossip secret (or the cluster cookie) with a fixed salt and
 * info label, so the same secret never yields the same key as any other use of it.
 */

/** Magic bytes that open every gossip packet. */
export const GOSSIP_MAGIC = Buffer.from('NCGS', 'latin1');
/** Version of the packet format (byte 4). */
export const GOSSIP_PACKET_VERSION = 1;

const HEADER_BYTES = GOSSIP_MAGIC.length + 1;
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

const KDF_SALT = Buffer.from('nestjs-cluster/gossip/salt/v1', 'utf8');
const KDF_INFO = Buffer.from('nestjs-cluster gossip AES-256-GCM key v1', 'utf8');
const AAD = Buffer.concat([GOSSIP_MAGIC, Buffer.from([GOSSIP_PACKET_VERSION])]);

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
  | { readonly ok: true; readonly heartbeat: GossipHeartbeat }
  | { readonly ok: false; readonly reason: GossipDropReason };

/** Derives the packet key from a secret (HKDF-SHA256, fixed salt and info label). */
export function deriveGossipKey(secret: string): KeyObject {
  const ikm = Buffer.from(secret, 'utf8');
  return createSecretKey(Buffer.from(hkdfSync('sha256', ikm, KDF_SALT, KDF_INFO, 32)));
}

/** A fresh random nonce. */
export function createGossipNonce(): Buffer {
  return randomBytes(GOSSIP_NONCE_BYTES);
}

/** Encodes and seals a heartbeat. Throws `GossipPacketError` when a field does not fit. */
export function sealHeartbeat(
  key: KeyObject,
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

  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(AAD);
  const ciphertext = Buffer.concat([cipher.update(body), cipher.final()]);
  return Buffer.concat([AAD, iv, ciphertext, cipher.getAuthTag()]);
}

/**
 * Authenticates and decodes a datagram. Never throws: anything that is not a heartbeat
 * sealed with `key` in this format yields `{ ok: false, reason }`. Freshness (timestamp
 * window, nonce reuse) is checked by the caller.
 */
export function openHeartbeat(key: KeyObject, packet: Buffer): OpenResult {
  if (packet.length < GOSSIP_MIN_PACKET_BYTES || packet.length > GOSSIP_MAX_PACKET_BYTES) {
    return { ok: false, reason: 'size' };
  }
  if (!packet.subarray(0, GOSSIP_MAGIC.length).equals(GOSSIP_MAGIC))
    return { ok: false, reason: 'magic' };
  if (packet[GOSSIP_MAGIC.length] !== GOSSIP_PACKET_VERSION)
    return { ok: false, reason: 'version' };

  const iv = packet.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES);
  const ciphertext = packet.subarray(HEADER_BYTES + IV_BYTES, packet.length - TAG_BYTES);
  const tag = packet.subarray(packet.length - TAG_BYTES);
  let body: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(packet.subarray(0, HEADER_BYTES));
    decipher.setAuthTag(tag);
    body = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch {
    return { ok: false, reason: 'auth' };
  }
  return decodeBody(body);
}

function decodeBody(body: Buffer): OpenResult {
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
