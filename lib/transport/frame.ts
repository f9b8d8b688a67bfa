import { FrameTooLargeError } from '../errors/frame-too-large.error.js';
import { MalformedFrameError } from '../errors/malformed-frame.error.js';
import { ProtocolVersionError } from '../errors/protocol-version.error.js';

/**
 * Version of the link protocol this node speaks; carried in byte 5 of every frame.
 * 2: the dialer proves the cookie first, with a key from the slow cookie KDF.
 * 2: frames after the handshake travel in sealed records (see `record-seal.ts`).
 */
export const PROTOCOL_VERSION = 2;

/** Bytes of the length prefix. */
export const LENGTH_BYTES = 4;
/** Bytes of the frame header: length (4), version (1), type (1). */
export const HEADER_BYTES = LENGTH_BYTES + 2;

/** One decoded frame. */
export interface Frame {
  /** Frame type (see `FrameType`). */
  readonly type: number;
  /** Payload bytes (a copy, safe to keep). */
  readonly payload: Buffer;
}

/**
 * Encodes one frame: `u32be L | u8 version | u8 type | payload`, where `L = 2 + payload.length`.
 * @param version only for tests that speak another version; @default PROTOCOL_VERSION
 */
export function encodeFrame(
  type: number,
  payload: Buffer = EMPTY,
  version: number = PROTOCOL_VERSION,
): Buffer {
  if (!Number.isInteger(type) || type < 0 || type > 255) {
    throw new MalformedFrameError(`frame type ${type} is not a byte`);
  }
  const frame = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  frame.writeUInt32BE(2 + payload.length, 0);
  frame.writeUInt8(version, 4);
  frame.writeUInt8(type, 5);
  payload.copy(frame, HEADER_BYTES);
  return frame;
}

/** Size of the body (`L`) of a frame with this payload length. */
export function frameBodyBytes(payloadLength: number): number {
  return 2 + payloadLength;
}

const EMPTY = Buffer.alloc(0);

/**
 * Incremental decoder of the frame stream of one connection. Accepts arbitrary chunking.
 *
 * Rejects, by throwing, as soon as the offending header bytes arrive and before any of
 * the body is buffered: a length above `maxFrameBytes` (`FrameTooLargeError`), a length
 * below 2 (`MalformedFrameError`), a version byte other than `version`
 * (`ProtocolVersionError`, carrying both versions). After a throw the decoder is unusable;
 * the connection must be closed.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  /** Bytes of `chunks[0]` already decoded. */
  private offset = 0;
  private buffered = 0;
  private failed: Error | undefined;

  constructor(
    /** Largest accepted body length `L`, bytes. */
    public maxFrameBytes: number,
    /** Version byte every frame must carry. @default PROTOCOL_VERSION */
    readonly version: number = PROTOCOL_VERSION,
  ) {}

  /** Bytes held for a frame that is not complete yet. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /**
   * Removes and returns the bytes held and not decoded yet (after the handshake they are the
   * start of the sealed record stream, not frames).
   */
  takeBuffered(): Buffer[] {
    const chunks = this.chunks;
    if (chunks.length > 0 && this.offset > 0) chunks[0] = chunks[0].subarray(this.offset);
    this.chunks = [];
    this.offset = 0;
    this.buffered = 0;
    return chunks;
  }

  /** Feeds bytes and returns every frame they complete, in order (`write` + `read` loop). */
  push(chunk: Buffer): Frame[] {
    this.write(chunk);
    const frames: Frame[] = [];
    let frame: Frame | undefined;
    while ((frame = this.read()) !== undefined) frames.push(frame);
    return frames;
  }

  /** Feeds bytes without decoding them yet. */
  write(chunk: Buffer): void {
    if (this.failed) throw this.failed;
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
  }

  /**
   * Decodes the next complete frame, or returns undefined when more bytes are needed.
   * Throws on a header that violates the limits (see the class documentation). Reading one
   * frame at a time lets a caller change `maxFrameBytes` between frames (the handshake does).
   */
  read(): Frame | undefined {
    if (this.failed) throw this.failed;
    try {
      return this.next();
    } catch (error) {
      this.failed = error as Error;
      this.chunks = [];
      this.offset = 0;
      this.buffered = 0;
      throw error;
    }
  }

  private next(): Frame | undefined {
    if (this.buffered < LENGTH_BYTES) return undefined;
    const first = this.chunks[0];
    const at = this.offset;
    const inFirst = first.length - at;
    // The header is read in place when the first chunk holds it (nearly always).
    const head =
      inFirst >= HEADER_BYTES ? undefined : this.peek(Math.min(HEADER_BYTES, this.buffered));
    const length = head ? head.readUInt32BE(0) : first.readUInt32BE(at);
    if (length > this.maxFrameBytes) throw new FrameTooLargeError(length, this.maxFrameBytes);
    if (length < 2)
      throw new MalformedFrameError(`length ${length} is shorter than the version and type bytes`);
    const version = head
      ? head.length > LENGTH_BYTES
        ? head[LENGTH_BYTES]
        : undefined
      : first[at + LENGTH_BYTES];
    if (version !== undefined && version !== this.version) {
      throw new ProtocolVersionError(version, this.version);
    }
    const total = LENGTH_BYTES + length;
    if (this.buffered < total) return undefined;
    if (inFirst >= total) {
      // Zero-copy: a view of the chunk the frame arrived in.
      const type = first[at + 5];
      const payload = first.subarray(at + HEADER_BYTES, at + total);
      this.consumed(total);
      return { type, payload };
    }
    const bytes = this.copy(total);
    return { type: bytes[5], payload: bytes.subarray(HEADER_BYTES) };
  }

  /** The first `n` bytes (n ≤ buffered) as one buffer, without consuming them. */
  private peek(n: number): Buffer {
    const first = this.chunks[0];
    if (first.length - this.offset >= n) return first.subarray(this.offset, this.offset + n);
    const out = Buffer.allocUnsafe(n);
    let copied = 0;
    let from = this.offset;
    for (const chunk of this.chunks) {
      copied += chunk.copy(out, copied, from, Math.min(chunk.length, from + n - copied));
      from = 0;
      if (copied === n) break;
    }
    return out;
  }

  /** Drops `n` bytes of the first chunk (n ≤ what is left of it). */
  private consumed(n: number): void {
    this.offset += n;
    this.buffered -= n;
    if (this.offset === this.chunks[0].length) {
      this.chunks.shift();
      this.offset = 0;
    }
  }

  /** Consumes `n` bytes (n ≤ buffered) that span several chunks, as a copy. */
  private copy(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let copied = 0;
    while (copied < n) {
      const chunk = this.chunks[0];
      const want = Math.min(n - copied, chunk.length - this.offset);
      chunk.copy(out, copied, this.offset, this.offset + want);
      copied += want;
      this.consumed(want);
    }
    return out;
  }
}
