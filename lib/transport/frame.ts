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
    this.chunks = [];
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
      this.buffered = 0;
      throw error;
    }
  }

  private next(): Frame | undefined {
    if (this.buffered < LENGTH_BYTES) return undefined;
    const head = this.peek(Math.min(HEADER_BYTES, this.buffered));
    const length = head.readUInt32BE(0);
    if (length > this.maxFrameBytes) throw new FrameTooLargeError(length, this.maxFrameBytes);
    if (length < 2)
      throw new MalformedFrameError(`length ${length} is shorter than the version and type bytes`);
    if (head.length > LENGTH_BYTES && head[LENGTH_BYTES] !== this.version) {
      throw new ProtocolVersionError(head[LENGTH_BYTES], this.version);
    }
    if (this.buffered < LENGTH_BYTES + length) return undefined;
    const bytes = this.take(LENGTH_BYTES + length);
    return { type: bytes[5], payload: bytes.subarray(HEADER_BYTES) };
  }

  /** The first `n` bytes (n ≤ buffered), without consuming them. */
  private peek(n: number): Buffer {
    const first = this.chunks[0];
    if (first.length >= n) return first.subarray(0, n);
    const out = Buffer.allocUnsafe(n);
    let copied = 0;
    for (const chunk of this.chunks) {
      copied += chunk.copy(out, copied, 0, Math.min(chunk.length, n - copied));
      if (copied === n) break;
    }
    return out;
  }

  /** Consumes `n` bytes (n ≤ buffered): a view when one chunk holds them, else a copy. */
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
