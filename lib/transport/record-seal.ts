import { createCipheriv, createDecipheriv, createHash, hkdfSync } from 'node:crypto';
import { RecordIntegrityError } from '../errors/record-integrity.error.js';
import type { NodeIdentity } from '../interfaces/member.interface.js';
import { field, identityFields } from './transcript-fields.js';

/**
 * Sealed records: after the handshake, everything a link writes travels in records
 * authenticated and encrypted with AES-256-GCM under a key per direction.
 *
 * Record: `u32be L | ciphertext (L − 16 bytes) | tag (16 bytes)`. The plaintext is a run of
 * whole frames (the frames written in one batch), at least 1 byte. The 4 length bytes are the
 * additional authenticated data; the nonce is 4 zero bytes then the record's sequence number
 * in this direction as u64be, starting at 0 — so a tampered, replayed, reordered or dropped
 * record fails authentication. Keys: see `deriveLinkKeys`.
 */

/** The AEAD of sealed records (measured faster than ChaCha20-Poly1305 on AES-NI hardware). */
export const RECORD_CIPHER = 'aes-256-gcm';
/** Bytes of the record length prefix. */
export const RECORD_LENGTH_BYTES = 4;
/** Bytes of the authentication tag at the end of every record. */
export const RECORD_TAG_BYTES = 16;
/** Bytes of a record key. */
export const RECORD_KEY_BYTES = 32;
/** Bytes of the AEAD nonce: 4 zero bytes and a u64be sequence number. */
export const RECORD_NONCE_BYTES = 12;
/**
 * Plaintext size at which a sender closes the record it is filling and starts another
 * (a larger single frame still travels alone in one record), bytes.
 */
export const RECORD_TARGET_BYTES = 64 * 1024;
/**
 * Records up to this size (plaintext bytes) are returned as one buffer: one `write` instead of
 * a three-buffer `writev`, for a copy of the record that is cheaper than the gather below it.
 */
export const RECORD_SINGLE_BUFFER_BYTES = 16 * 1024;
/** HKDF info of the key sealing what the dialer sends. */
export const DIALER_TO_LISTENER_LABEL = 'nestjs-cluster record key dialer->listener';
/** HKDF info of the key sealing what the listener sends. */
export const LISTENER_TO_DIALER_LABEL = 'nestjs-cluster record key listener->dialer';
/** First field of the transcript hash that salts the key derivation. */
export const TRANSCRIPT_LABEL = 'nestjs-cluster record keys';

/** Sequence numbers stop here (2^53 − 1): the link must be re-established before. */
const MAX_SEQUENCE = Number.MAX_SAFE_INTEGER;

/** The two record keys of one link. */
export interface LinkKeys {
  /** Seals what the dialer sends (and opens it at the listener). */
  readonly dialerToListener: Buffer;
  /** Seals what the listener sends (and opens it at the dialer). */
  readonly listenerToDialer: Buffer;
}

/** One side's view of the record keys: what it seals with and what it opens with. */
export interface RecordKeys {
  readonly send: Buffer;
  readonly receive: Buffer;
}

/** What the record keys are derived from: everything both sides agreed on in the handshake. */
export interface LinkKeyInputs {
  /** The key the handshake authenticated with (derived from the cookie); never sent. */
  readonly cookieKey: Buffer;
  readonly version: number;
  readonly dialerNonce: Buffer;
  readonly listenerNonce: Buffer;
  readonly dialer: NodeIdentity;
  readonly listener: NodeIdentity;
}

/**
 * Derives the two record keys of a link:
 *
 * - `salt = SHA-256(f(TRANSCRIPT_LABEL) | f(version byte) | f(nonceD) | f(nonceL) |
 *   f(dialer identity…) | f(listener identity…))`, where `f(x) = u32be length | x` and an
 *   identity is `name, incarnation, startedAt (decimal), endpoint`, all UTF-8;
 * - each key `= HKDF-SHA256(ikm = cookie key, salt, info = direction label, 32 bytes)`, with
 *   the labels `DIALER_TO_LISTENER_LABEL` and `LISTENER_TO_DIALER_LABEL`.
 */
export function deriveLinkKeys(inputs: LinkKeyInputs): LinkKeys {
  const transcript = createHash('sha256');
  for (const part of [
    field(TRANSCRIPT_LABEL),
    field(Buffer.from([inputs.version])),
    field(inputs.dialerNonce),
    field(inputs.listenerNonce),
    ...identityFields(inputs.dialer),
    ...identityFields(inputs.listener),
  ]) {
    transcript.update(part);
  }
  const salt = transcript.digest();
  const key = (label: string): Buffer =>
    Buffer.from(hkdfSync('sha256', inputs.cookieKey, salt, label, RECORD_KEY_BYTES));
  return {
    dialerToListener: key(DIALER_TO_LISTENER_LABEL),
    listenerToDialer: key(LISTENER_TO_DIALER_LABEL),
  };
}

/** The keys as one side of the link uses them. */
export function recordKeysFor(role: 'dialer' | 'listener', keys: LinkKeys): RecordKeys {
  return role === 'dialer'
    ? { send: keys.dialerToListener, receive: keys.listenerToDialer }
    : { send: keys.listenerToDialer, receive: keys.dialerToListener };
}

/** Largest record body (`L`) that can carry one frame of at most `maxFrameBytes`. */
export function maxRecordBytes(maxFrameBytes: number, frameHeaderBytes: number): number {
  return frameHeaderBytes + maxFrameBytes + RECORD_TAG_BYTES;
}

function nonceOf(sequence: number, into: Buffer): Buffer {
  into.writeUInt32BE(0, 0);
  into.writeUInt32BE(Math.floor(sequence / 0x1_0000_0000), 4);
  into.writeUInt32BE(sequence >>> 0, 8);
  return into;
}

/** Seals the records one side sends, numbering them from 0. */
export class RecordSealer {
  private sequence = 0;
  private readonly nonce = Buffer.alloc(RECORD_NONCE_BYTES);

  constructor(private readonly key: Buffer) {}

  /** Records sealed so far. */
  get sealed(): number {
    return this.sequence;
  }

  /**
   * Seals one record holding `parts` (concatenated, `length` bytes in all, ≥ 1).
   * Returns the buffers to write, in order: length prefix, ciphertext, tag — as one buffer
   * when the record is at most `RECORD_SINGLE_BUFFER_BYTES` long.
   */
  seal(parts: readonly Buffer[], length: number): Buffer[] {
    if (length < 1) throw new RangeError('a record carries at least one byte');
    if (this.sequence >= MAX_SEQUENCE) throw new RangeError('record sequence numbers exhausted');
    const head = Buffer.allocUnsafe(RECORD_LENGTH_BYTES);
    head.writeUInt32BE(length + RECORD_TAG_BYTES, 0);
    const cipher = createCipheriv(RECORD_CIPHER, this.key, nonceOf(this.sequence, this.nonce), {
      authTagLength: RECORD_TAG_BYTES,
    });
    cipher.setAAD(head);
    const body = cipher.update(parts.length === 1 ? parts[0] : Buffer.concat(parts, length));
    cipher.final();
    this.sequence += 1;
    const tag = cipher.getAuthTag();
    if (length > RECORD_SINGLE_BUFFER_BYTES) return [head, body, tag];
    return [Buffer.concat([head, body, tag], RECORD_LENGTH_BYTES + length + RECORD_TAG_BYTES)];
  }
}

/**
 * Opens the records one side receives, in order, from an arbitrarily chunked byte stream.
 * Holds at most one record (`maxRecordBytes` + 4 bytes): a length above the limit is
 * rejected as soon as its 4 bytes arrive. Nothing of a record is released before its tag
 * verified. After a throw the opener is unusable and the link must close.
 */
export class RecordOpener {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private sequence = 0;
  private failed: RecordIntegrityError | undefined;
  private readonly nonce = Buffer.alloc(RECORD_NONCE_BYTES);

  constructor(
    private readonly key: Buffer,
    /** Largest accepted record body `L` (ciphertext and tag), bytes. */
    private readonly maxRecordBytes: number,
  ) {}

  /** Records opened so far. */
  get opened(): number {
    return this.sequence;
  }

  /** Bytes held of a record that is not complete yet. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /**
   * Feeds bytes; returns the plaintext of every record they complete, in order.
   * @throws RecordIntegrityError on a record that fails authentication or breaks the limits
   */
  push(chunk: Buffer): Buffer[] {
    if (this.failed) throw this.failed;
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const out: Buffer[] = [];
    try {
      let plain: Buffer | undefined;
      while ((plain = this.next()) !== undefined) out.push(plain);
    } catch (error) {
      this.failed = error as RecordIntegrityError;
      this.chunks = [];
      this.buffered = 0;
      throw error;
    }
    return out;
  }

  /**
   * Called when the stream ended: a partial record left over means the stream was cut.
   * @throws RecordIntegrityError when bytes of an incomplete record are held
   */
  end(): void {
    if (this.failed || this.buffered === 0) return;
    this.failed = new RecordIntegrityError(
      `the stream ended inside record ${this.sequence} (${this.buffered} bytes of it received)`,
      this.sequence,
    );
    throw this.failed;
  }

  private next(): Buffer | undefined {
    if (this.buffered < RECORD_LENGTH_BYTES) return undefined;
    const length = this.peekLength();
    if (length > this.maxRecordBytes)
      throw new RecordIntegrityError(
        `record ${this.sequence} announces ${length} bytes, more than the ${this.maxRecordBytes} allowed`,
        this.sequence,
      );
    if (length <= RECORD_TAG_BYTES)
      throw new RecordIntegrityError(
        `record ${this.sequence} announces ${length} bytes, too short for a tag and a frame`,
        this.sequence,
      );
    if (this.buffered < RECORD_LENGTH_BYTES + length) return undefined;
    const record = this.take(RECORD_LENGTH_BYTES + length);
    const tagAt = record.length - RECORD_TAG_BYTES;
    const decipher = createDecipheriv(RECORD_CIPHER, this.key, nonceOf(this.sequence, this.nonce), {
      authTagLength: RECORD_TAG_BYTES,
    });
    decipher.setAAD(record.subarray(0, RECORD_LENGTH_BYTES));
    decipher.setAuthTag(record.subarray(tagAt));
    const plain = decipher.update(record.subarray(RECORD_LENGTH_BYTES, tagAt));
    try {
      decipher.final();
    } catch {
      throw new RecordIntegrityError(
        `record ${this.sequence} failed authentication (tampered, replayed, reordered or a record is missing)`,
        this.sequence,
      );
    }
    this.sequence += 1;
    return plain;
  }

  private peekLength(): number {
    const first = this.chunks[0];
    if (first.length >= RECORD_LENGTH_BYTES) return first.readUInt32BE(0);
    const head = Buffer.allocUnsafe(RECORD_LENGTH_BYTES);
    let copied = 0;
    for (const chunk of this.chunks) {
      copied += chunk.copy(head, copied, 0, Math.min(chunk.length, RECORD_LENGTH_BYTES - copied));
      if (copied === RECORD_LENGTH_BYTES) break;
    }
    return head.readUInt32BE(0);
  }

  private take(n: number): Buffer {
    const head = this.chunks[0];
    if (head.length >= n) {
      this.chunks[0] = head.subarray(n);
      if (head.length === n) this.chunks.shift();
      this.buffered -= n;
      return head.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let copied = 0;
    while (copied < n) {
      const chunk = this.chunks[0];
      const want = n - copied;
      if (chunk.length <= want) {
        chunk.copy(out, copied);
        copied += chunk.length;
        this.chunks.shift();
      } else {
        chunk.copy(out, copied, 0, want);
        copied += want;
        this.chunks[0] = chunk.subarray(want);
      }
    }
    this.buffered -= n;
    return out;
  }
}
