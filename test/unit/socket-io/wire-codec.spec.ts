import { describe, expect, it } from 'vitest';
import { PayloadError } from '../../../lib/errors/payload.error.js';
import { BINARY_KEY, fromWire, MAX_DEPTH, toWire } from '../../../lib/socket-io/wire-codec.js';

/** What cluster messaging does to a payload: JSON there and back. */
const overJson = (value: unknown) =>
  JSON.parse(JSON.stringify(value)) as Parameters<typeof fromWire>[0];

describe('socket.io wire codec', () => {
  it('passes a packet without binary data through untouched (no flag, same object)', () => {
    const packet = { type: 2, data: ['event', { a: 1, list: [1, 'two', null] }], nsp: '/' };
    const wire = toWire('t', packet);
    expect(wire).toEqual({ m: packet });
    expect(wire.m).toBe(packet);
    expect(fromWire(overJson(wire))).toEqual(packet);
  });

  it('restores Buffers, ArrayBuffers and typed arrays (as Buffers) at any depth after a JSON round trip', () => {
    const packet = {
      type: 5,
      data: [
        'upload',
        Buffer.from('héllo'),
        { nested: [new Uint8Array([1, 2, 3]).buffer, new Uint16Array([513])] },
      ],
    };
    const wire = toWire('t', packet);
    expect(wire.b).toBe(1);
    const back = fromWire(overJson(wire)) as {
      type: number;
      data: [string, Buffer, { nested: [Buffer, Buffer] }];
    };
    expect(back.type).toBe(5);
    expect(back.data[0]).toBe('upload');
    expect(Buffer.isBuffer(back.data[1])).toBe(true);
    expect(back.data[1].toString()).toBe('héllo');
    expect([...back.data[2].nested[0]]).toEqual([1, 2, 3]);
    expect([...back.data[2].nested[1]]).toEqual([1, 2]); // 513 = 0x0201, little-endian bytes
  });

  it('a typed array that is a view on part of a buffer sends only its own bytes', () => {
    const whole = Buffer.from([9, 9, 1, 2, 9]);
    const view = whole.subarray(2, 4);
    const back = fromWire(overJson(toWire('t', { v: view }))) as { v: Buffer };
    expect([...back.v]).toEqual([1, 2]);
  });

  it('leaves an object that merely looks like the marker but has other keys alone', () => {
    const packet = { data: [{ [BINARY_KEY]: 'AAE=', other: 1 }, Buffer.from([1])] };
    const back = fromWire(overJson(toWire('t', packet))) as {
      data: [Record<string, unknown>, Buffer];
    };
    expect(back.data[0]).toEqual({ [BINARY_KEY]: 'AAE=', other: 1 });
  });

  it('refuses a cyclic or absurdly deep packet with a PayloadError instead of overflowing the stack', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(() => toWire('socket.io:/', cyclic)).toThrow(PayloadError);
    let deep: unknown = 'leaf';
    for (let i = 0; i < MAX_DEPTH + 10; i++) deep = [deep];
    const error = (() => {
      try {
        toWire('socket.io:/', deep);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(PayloadError);
    expect((error as PayloadError).reason).toBe('not-encodable');
    expect((error as PayloadError).message).toContain('socket.io:/');
  });
});
