import { PayloadError } from '../errors/payload.error.js';

/** Key of the object that stands for binary data on the wire: `{ [BINARY_KEY]: <base64> }`. */
export const BINARY_KEY = '$nestjs-cluster:bin';
/** Deepest nesting `toWire` walks; deeper (or cyclic) values are refused. */
export const MAX_DEPTH = 256;

/**
 * A socket.io adapter message as it travels between members. Cluster messaging carries JSON,
 * and socket.io packets may hold binary data (`Buffer`, `ArrayBuffer`, typed arrays): when a
 * message holds any, `b` is 1 and every binary value inside `m` is replaced by
 * `{ [BINARY_KEY]: base64 }`, restored by `fromWire` as a `Buffer` (what socket.io itself
 * hands to handlers on the receiving side). Messages without binary data go as they are.
 */
export interface WireMessage {
  /** 1 when `m` contains encoded binary values. */
  readonly b?: 1;
  /** The adapter message. */
  readonly m: unknown;
}

/**
 * Adapter messages of one turn sent as one cluster message, in order: `{"l":[…]}`, each item
 * a `WireMessage`.
 */
export interface WireBatch {
  readonly l: readonly unknown[];
}

/** The JSON text of a batch, from the JSON texts of its `WireMessage`s. */
export function batchJson(items: readonly string[]): string {
  return `{"l":[${items.join(',')}]}`;
}

/** True for a payload made by `batchJson`. */
export function isWireBatch(payload: unknown): payload is WireBatch {
  return payload !== null && typeof payload === 'object' && Array.isArray((payload as WireBatch).l);
}

/** Wraps an adapter message for cluster messaging; binary values become base64. */
export function toWire(topic: string, message: unknown): WireMessage {
  return containsBinary(topic, message, 0) ? { b: 1, m: encodeBinary(message) } : { m: message };
}

/** Unwraps a message made by `toWire`. */
export function fromWire(wire: WireMessage): unknown {
  return wire.b === 1 ? decodeBinary(wire.m, 0) : wire.m;
}

function isBinary(value: unknown): value is ArrayBuffer | ArrayBufferView {
  return value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

function containsBinary(topic: string, value: unknown, depth: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (depth > MAX_DEPTH) {
    throw new PayloadError(
      `socket.io packet on "${topic}" is nested deeper than ${MAX_DEPTH} levels (or is cyclic) and cannot be sent to other members`,
      topic,
      'not-encodable',
    );
  }
  if (isBinary(value)) return true;
  if (Array.isArray(value)) {
    for (const item of value) if (containsBinary(topic, item, depth + 1)) return true;
    return false;
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  for (const key in value) {
    if (containsBinary(topic, (value as Record<string, unknown>)[key], depth + 1)) return true;
  }
  return false;
}

function encodeBinary(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof ArrayBuffer) return { [BINARY_KEY]: Buffer.from(value).toString('base64') };
  if (ArrayBuffer.isView(value)) {
    return {
      [BINARY_KEY]: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString(
        'base64',
      ),
    };
  }
  if (Array.isArray(value)) return value.map(encodeBinary);
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return value;
  const out: Record<string, unknown> = {};
  for (const key in value) out[key] = encodeBinary((value as Record<string, unknown>)[key]);
  return out;
}

function decodeBinary(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== 'object' || depth > MAX_DEPTH) return value;
  if (Array.isArray(value)) return value.map((item) => decodeBinary(item, depth + 1));
  const record = value as Record<string, unknown>;
  const encoded = record[BINARY_KEY];
  if (typeof encoded === 'string' && Object.keys(record).length === 1)
    return Buffer.from(encoded, 'base64');
  const out: Record<string, unknown> = {};
  for (const key in record) out[key] = decodeBinary(record[key], depth + 1);
  return out;
}
