import type { NodeIdentity } from '../interfaces/member.interface.js';

/**
 * Members are spread over this many buckets by name; a digest carries one hash per bucket, so
 * two nodes whose views differ by a few members exchange only those few buckets.
 */
export const DIGEST_BUCKETS = 64;

const DIGEST_VERSION = 1;
const HEADER_BYTES = 1 + 1 + 4 + 2;

/** A decoded digest frame. */
export interface DigestFrame {
  /** True for the answer to a digest (it is not answered again). */
  readonly reply: boolean;
  readonly count: number;
  readonly buckets: Uint32Array;
}

/** FNV-1a over the UTF-16 code units of `text`, 32 bits. */
function fnv1a(text: string, seed = 0x811c9dc5): number {
  let h = seed;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // A final avalanche so that similar names land in unrelated buckets and hashes.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The bucket of a member name. */
export function bucketOf(name: string): number {
  return fnv1a(name) % DIGEST_BUCKETS;
}

/** The hash of one member's (name, incarnation, endpoint): digests XOR it, `PEERS_HAVE` lists it. */
export function entryHash(
  identity: Pick<NodeIdentity, 'name' | 'incarnation' | 'endpoint'>,
): number {
  return fnv1a(`${identity.name}\u0000${identity.incarnation}\u0000${identity.endpoint}`);
}

/**
 * An order-independent summary of a member set (self included), kept up to date in O(1) per
 * change: per bucket, the XOR of the hashes of its members' (name, incarnation, endpoint).
 * Two nodes with the same view have the same digest; a differing bucket names where they differ.
 */
export class PeerDigest {
  private readonly buckets = new Uint32Array(DIGEST_BUCKETS);
  private size = 0;

  get count(): number {
    return this.size;
  }

  add(identity: NodeIdentity): void {
    this.toggle(identity);
    this.size++;
  }

  remove(identity: NodeIdentity): void {
    this.toggle(identity);
    this.size--;
  }

  /** Buckets whose hash differs from `other` (all of them when the bucket counts differ). */
  differing(other: DigestFrame): number[] {
    const out: number[] = [];
    const same = other.buckets.length === DIGEST_BUCKETS;
    for (let i = 0; i < DIGEST_BUCKETS; i++) {
      if (!same || other.buckets[i] !== this.buckets[i]) out.push(i);
    }
    return out;
  }

  encode(reply: boolean): Buffer {
    const out = Buffer.allocUnsafe(HEADER_BYTES + 4 * DIGEST_BUCKETS);
    out.writeUInt8(DIGEST_VERSION, 0);
    out.writeUInt8(reply ? 1 : 0, 1);
    out.writeUInt32BE(this.size, 2);
    out.writeUInt16BE(DIGEST_BUCKETS, 6);
    for (let i = 0; i < DIGEST_BUCKETS; i++)
      out.writeUInt32BE(this.buckets[i], HEADER_BYTES + 4 * i);
    return out;
  }

  private toggle(identity: NodeIdentity): void {
    const b = bucketOf(identity.name);
    this.buckets[b] = (this.buckets[b] ^ entryHash(identity)) >>> 0;
  }
}

/** Decodes a digest frame; undefined when it is malformed or of an unknown version. */
export function decodeDigest(payload: Buffer): DigestFrame | undefined {
  if (payload.length < HEADER_BYTES || payload.readUInt8(0) !== DIGEST_VERSION) return undefined;
  const n = payload.readUInt16BE(6);
  if (n === 0 || n > 4096 || payload.length !== HEADER_BYTES + 4 * n) return undefined;
  const buckets = new Uint32Array(n);
  for (let i = 0; i < n; i++) buckets[i] = payload.readUInt32BE(HEADER_BYTES + 4 * i);
  return { reply: (payload.readUInt8(1) & 1) === 1, count: payload.readUInt32BE(2), buckets };
}

const HAVE_VERSION = 1;
const HAVE_HEADER_BYTES = 1 + 1 + 2;
/** Hashes a `PEERS_HAVE` frame may carry at most (more is treated as garbage). */
export const MAX_HAVE_HASHES = 16_384;

/** The members one node has in one bucket, as entry hashes. */
export interface BucketHashes {
  readonly bucket: number;
  readonly hashes: readonly number[];
}

/** A decoded `PEERS_HAVE` frame. */
export interface HaveFrame {
  /** True for the answer to a `PEERS_HAVE` (it is not answered with another). */
  readonly reply: boolean;
  readonly buckets: readonly BucketHashes[];
}

/**
 * `PEERS_HAVE`: `u8 version (1) | u8 flags (1 = reply) | u16 bucket count |` then per bucket
 * `u8 bucket | u16 hash count | u32 hash…`, big-endian — the entry hashes of the sender's view
 * in the buckets where two digests differ, so the receiver sends only the members it lacks.
 */
export function encodeHave(reply: boolean, buckets: readonly BucketHashes[]): Buffer {
  let bytes = HAVE_HEADER_BYTES;
  for (const b of buckets) bytes += 3 + 4 * b.hashes.length;
  const out = Buffer.allocUnsafe(bytes);
  out.writeUInt8(HAVE_VERSION, 0);
  out.writeUInt8(reply ? 1 : 0, 1);
  out.writeUInt16BE(buckets.length, 2);
  let at = HAVE_HEADER_BYTES;
  for (const b of buckets) {
    out.writeUInt8(b.bucket, at);
    out.writeUInt16BE(b.hashes.length, at + 1);
    at += 3;
    for (const h of b.hashes) {
      out.writeUInt32BE(h >>> 0, at);
      at += 4;
    }
  }
  return out;
}

/** Decodes a `PEERS_HAVE` frame; undefined when it is malformed, too large or of an unknown version. */
export function decodeHave(payload: Buffer): HaveFrame | undefined {
  if (payload.length < HAVE_HEADER_BYTES || payload.readUInt8(0) !== HAVE_VERSION) return undefined;
  const n = payload.readUInt16BE(2);
  if (n > DIGEST_BUCKETS) return undefined;
  const buckets: BucketHashes[] = [];
  let at = HAVE_HEADER_BYTES;
  let total = 0;
  for (let i = 0; i < n; i++) {
    if (at + 3 > payload.length) return undefined;
    const bucket = payload.readUInt8(at);
    const count = payload.readUInt16BE(at + 1);
    at += 3;
    total += count;
    if (bucket >= DIGEST_BUCKETS || total > MAX_HAVE_HASHES || at + 4 * count > payload.length)
      return undefined;
    const hashes = new Array<number>(count);
    for (let j = 0; j < count; j++) hashes[j] = payload.readUInt32BE(at + 4 * j);
    at += 4 * count;
    buckets.push({ bucket, hashes });
  }
  if (at !== payload.length) return undefined;
  return { reply: (payload.readUInt8(1) & 1) === 1, buckets };
}
