import { describe, expect, it } from 'vitest';
import { FrameTooLargeError } from '../../../lib/errors/frame-too-large.error.js';
import { MalformedFrameError } from '../../../lib/errors/malformed-frame.error.js';
import { ProtocolVersionError } from '../../../lib/errors/protocol-version.error.js';
import { encodeFrame, FrameDecoder, PROTOCOL_VERSION } from '../../../lib/transport/frame.js';

describe('frame codec', () => {
  it('encodes length, version, type and payload', () => {
    const frame = encodeFrame(32, Buffer.from('abc'));
    expect([...frame]).toEqual([0, 0, 0, 5, PROTOCOL_VERSION, 32, 0x61, 0x62, 0x63]);
  });

  it('decodes frames split at every possible byte boundary', () => {
    const stream = Buffer.concat([
      encodeFrame(16, Buffer.from('first')),
      encodeFrame(4),
      encodeFrame(33, Buffer.alloc(300, 7)),
    ]);
    for (let cut = 1; cut < stream.length; cut++) {
      const decoder = new FrameDecoder(1024);
      const frames = [
        ...decoder.push(stream.subarray(0, cut)),
        ...decoder.push(stream.subarray(cut)),
      ];
      expect(frames.map((f) => f.type)).toEqual([16, 4, 33]);
      expect(frames[0]?.payload.toString()).toBe('first');
      expect(frames[1]?.payload.length).toBe(0);
      expect(frames[2]?.payload.equals(Buffer.alloc(300, 7))).toBe(true);
      expect(decoder.bufferedBytes).toBe(0);
    }
  });

  it('decodes many frames fed in chunks of every size from 1 to past the whole stream', () => {
    const payloads = Array.from({ length: 40 }, (_, i) =>
      Buffer.alloc((i * 37) % 97, String.fromCharCode(97 + (i % 26))),
    );
    const stream = Buffer.concat(payloads.map((p, i) => encodeFrame(32 + (i % 5), p)));
    for (let size = 1; size <= stream.length + 1; size += size < 20 ? 1 : 13) {
      const decoder = new FrameDecoder(1024);
      const frames = [];
      for (let at = 0; at < stream.length; at += size) {
        frames.push(...decoder.push(stream.subarray(at, at + size)));
      }
      expect(frames.map((f) => f.type)).toEqual(payloads.map((_, i) => 32 + (i % 5)));
      expect(frames.every((f, i) => f.payload.equals(payloads[i]))).toBe(true);
      expect(decoder.bufferedBytes).toBe(0);
    }
  });

  it('hands over the bytes after the last frame read, not the frames already read', () => {
    // The end of a handshake: WELCOME and the first sealed bytes arrive in one chunk.
    const decoder = new FrameDecoder(1024);
    const after = Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x01]);
    decoder.write(Buffer.concat([encodeFrame(3, Buffer.alloc(0)), after]));
    decoder.write(Buffer.from([0x02]));
    expect(decoder.read()).toEqual({ type: 3, payload: Buffer.alloc(0) });
    expect(Buffer.concat(decoder.takeBuffered())).toEqual(Buffer.concat([after, Buffer.from([2])]));
    expect(decoder.bufferedBytes).toBe(0);
    expect(decoder.takeBuffered()).toEqual([]);
  });

  it('decodes a stream fed one byte at a time', () => {
    const stream = Buffer.concat([
      encodeFrame(32, Buffer.from('x')),
      encodeFrame(33, Buffer.from('yz')),
    ]);
    const decoder = new FrameDecoder(64);
    const frames = [];
    for (const byte of stream) frames.push(...decoder.push(Buffer.from([byte])));
    expect(frames.map((f) => [f.type, f.payload.toString()])).toEqual([
      [32, 'x'],
      [33, 'yz'],
    ]);
  });

  it('rejects an oversized length as soon as the 4 length bytes arrive, before buffering the body', () => {
    const decoder = new FrameDecoder(1000);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(0x7fffffff, 0);
    expect(() => decoder.push(header.subarray(0, 3))).not.toThrow();
    let error: unknown;
    try {
      decoder.push(header.subarray(3));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FrameTooLargeError);
    expect((error as FrameTooLargeError).size).toBe(0x7fffffff);
    expect((error as FrameTooLargeError).maxBytes).toBe(1000);
    expect(decoder.bufferedBytes).toBe(0);
    // The decoder stays failed.
    expect(() => decoder.push(encodeFrame(16))).toThrow(FrameTooLargeError);
  });

  it('accepts a frame of exactly maxFrameBytes', () => {
    const decoder = new FrameDecoder(10);
    expect(decoder.push(encodeFrame(16, Buffer.alloc(8)))).toHaveLength(1);
    expect(() => decoder.push(encodeFrame(16, Buffer.alloc(9)))).toThrow(FrameTooLargeError);
  });

  it('rejects a length shorter than version + type', () => {
    expect(() => new FrameDecoder(100).push(Buffer.from([0, 0, 0, 1, 1]))).toThrow(
      MalformedFrameError,
    );
    expect(() => new FrameDecoder(100).push(Buffer.from([0, 0, 0, 0]))).toThrow(
      MalformedFrameError,
    );
  });

  it('rejects another version byte at once, carrying both versions', () => {
    const decoder = new FrameDecoder(100);
    let error: unknown;
    try {
      decoder.push(Buffer.from([0, 0, 0, 50, PROTOCOL_VERSION + 1]));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ProtocolVersionError);
    expect((error as ProtocolVersionError).peerVersion).toBe(PROTOCOL_VERSION + 1);
    expect((error as ProtocolVersionError).localVersion).toBe(PROTOCOL_VERSION);
    expect((error as Error).message).toBe(
      `protocol version mismatch: peer speaks ${PROTOCOL_VERSION + 1}, this node speaks ${PROTOCOL_VERSION}`,
    );
  });

  it('read() returns one frame at a time so the limit can change between frames', () => {
    const decoder = new FrameDecoder(10);
    decoder.write(Buffer.concat([encodeFrame(3), encodeFrame(16, Buffer.alloc(50))]));
    expect(decoder.read()?.type).toBe(3);
    decoder.maxFrameBytes = 100;
    expect(decoder.read()?.payload.length).toBe(50);
    expect(decoder.read()).toBeUndefined();
  });
});
