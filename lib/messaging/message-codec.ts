import { MalformedMessageError } from '../errors/malformed-message.error.js';
import { PayloadError } from '../errors/payload.error.js';

/**
 * Frame types of the messaging layer (the range 32–47 of the link protocol). The link adds
 * its own length prefix and type byte; the layouts below describe the frame payload only.
 * All integers are big-endian; `topic` is UTF-8 with a `u16` length prefix; `json` is the
 * UTF-8 JSON text of the payload and runs to the end of the frame.
 *
 * | type | name          | layout                                   |
 * |------|---------------|------------------------------------------|
 * | 32   | `PUBLISH`     | `u16 topicLen, topic, f64 at, json`      |
 * | 33   | `SEND`        | `u16 topicLen, topic, f64 at, json`      |
 * | 34   | `REQUEST`     | `u32 id, u16 topicLen, topic, json`      |
 * | 35   | `REPLY`       | `u32 id, json` (empty json = `undefined`)|
 * | 36   | `REPLY_ERROR` | `u32 id, u8 code, json {name, message}`  |
 */
export const MessagingFrameType = {
  /** A message for every subscriber of a topic on every member. */
  PUBLISH: 32,
  /** A message for the subscribers of a topic on one member. */
  SEND: 33,
  /** A request for the handler of a topic on one member. */
  REQUEST: 34,
  /** The handler's return value. */
  REPLY: 35,
  /** The handler failed, or there was no handler. */
  REPLY_ERROR: 36,
} as const;

/** One of the messaging frame types. */
export type MessagingFrameType = (typeof MessagingFrameType)[keyof typeof MessagingFrameType];

/** Every messaging frame type, in the order above. */
export const MESSAGING_FRAME_TYPES: readonly MessagingFrameType[] = Object.freeze(
  Object.values(MessagingFrameType),
);

/** Codes carried by a `REPLY_ERROR` frame. */
export const ReplyErrorCode = {
  /** The handler threw or rejected, or its reply could not be encoded. */
  HANDLER_FAILED: 1,
  /** No handler is registered for the topic on the replying member. */
  NO_HANDLER: 2,
} as const;

/** One of the reply error codes. */
export type ReplyErrorCode = (typeof ReplyErrorCode)[keyof typeof ReplyErrorCode];

/** Longest topic accepted, in UTF-8 bytes. */
export const MAX_TOPIC_BYTES = 1024;

/** A decoded `PUBLISH` or `SEND` frame. */
export interface DecodedMessage {
  readonly topic: string;
  readonly at: number;
  /** The JSON text of the payload; parsed only when someone subscribes to the topic. */
  readonly json: string;
}

/** A decoded `REQUEST` frame. */
export interface DecodedRequest {
  readonly id: number;
  readonly topic: string;
  readonly json: string;
}

/** A decoded `REPLY` frame. */
export interface DecodedReply {
  readonly id: number;
  /** Empty when the handler returned `undefined`. */
  readonly json: string;
}

/** A decoded `REPLY_ERROR` frame. */
export interface DecodedReplyError {
  readonly id: number;
  readonly code: number;
  readonly name: string;
  readonly message: string;
}

const JSON_TEXT = Symbol.for('nestjs-cluster.jsonText');

/**
 * A payload its sender has already encoded as JSON text: messaging sends the text as it is
 * (its size still checked) and receivers parse it as any payload. For layers that encode
 * each item when it is queued (so an error reaches the caller at once) and send many items
 * as one message. Internal: the text must be valid JSON, which nothing checks on this side.
 */
export interface JsonText {
  readonly [JSON_TEXT]: string;
}

/** Wraps JSON text made by `JSON.stringify` as a payload that is sent as it is. */
export function jsonText(text: string): JsonText {
  return { [JSON_TEXT]: text };
}

function isJsonText(payload: unknown): payload is JsonText {
  return typeof payload === 'object' && payload !== null && JSON_TEXT in payload;
}

/**
 * Encodes a payload as JSON text and checks its size. Throws `PayloadError` for values JSON
 * cannot represent at the top level (`undefined`, functions, symbols), for BigInt and cycles
 * anywhere, and for a text longer than `maxBytes` UTF-8 bytes. A `JsonText` is taken as is.
 */
export function encodePayload(topic: string, payload: unknown, maxBytes: number): Buffer {
  let json: string | undefined;
  try {
    json = isJsonText(payload) ? payload[JSON_TEXT] : JSON.stringify(payload);
  } catch (error) {
    throw new PayloadError(
      `payload of "${topic}" cannot be encoded as JSON: ${(error as Error).message}`,
      topic,
      'not-encodable',
      { cause: error },
    );
  }
  if (json === undefined) {
    throw new PayloadError(
      `payload of "${topic}" cannot be encoded as JSON: ${describeType(payload)} has no JSON form`,
      topic,
      'not-encodable',
    );
  }
  const body = Buffer.from(json, 'utf8');
  if (body.length > maxBytes) {
    throw new PayloadError(
      `payload of "${topic}" is ${body.length} bytes, more than maxPayloadBytes (${maxBytes})`,
      topic,
      'too-large',
      { bytes: body.length, limitBytes: maxBytes },
    );
  }
  return body;
}

/** Encodes a topic and checks it is a non-empty string of at most `MAX_TOPIC_BYTES` bytes. */
export function encodeTopic(topic: string): Buffer {
  if (typeof topic !== 'string' || topic.length === 0) {
    throw new PayloadError('topic must be a non-empty string', String(topic), 'invalid-topic');
  }
  const bytes = Buffer.from(topic, 'utf8');
  if (bytes.length > MAX_TOPIC_BYTES) {
    throw new PayloadError(
      `topic is ${bytes.length} bytes, more than ${MAX_TOPIC_BYTES}`,
      topic.slice(0, 64),
      'invalid-topic',
    );
  }
  return bytes;
}

/** Builds the payload of a `PUBLISH` or `SEND` frame. */
export function encodeMessageFrame(topic: Buffer, at: number, body: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(2 + topic.length + 8 + body.length);
  let offset = frame.writeUInt16BE(topic.length, 0);
  offset += topic.copy(frame, offset);
  offset = frame.writeDoubleBE(at, offset);
  body.copy(frame, offset);
  return frame;
}

/** Builds the payload of a `REQUEST` frame. */
export function encodeRequestFrame(id: number, topic: Buffer, body: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(4 + 2 + topic.length + body.length);
  let offset = frame.writeUInt32BE(id, 0);
  offset = frame.writeUInt16BE(topic.length, offset);
  offset += topic.copy(frame, offset);
  body.copy(frame, offset);
  return frame;
}

/** Builds the payload of a `REPLY` frame; `body` is empty for an `undefined` reply. */
export function encodeReplyFrame(id: number, body: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32BE(id, 0);
  body.copy(frame, 4);
  return frame;
}

/** Builds the payload of a `REPLY_ERROR` frame. */
export function encodeReplyErrorFrame(
  id: number,
  code: ReplyErrorCode,
  error: { name: string; message: string },
): Buffer {
  const body = Buffer.from(JSON.stringify({ name: error.name, message: error.message }), 'utf8');
  const frame = Buffer.allocUnsafe(4 + 1 + body.length);
  frame.writeUInt32BE(id, 0);
  frame.writeUInt8(code, 4);
  body.copy(frame, 5);
  return frame;
}

/** Decodes a `PUBLISH` or `SEND` frame. Throws `MalformedMessageError`. */
export function decodeMessageFrame(type: number, frame: Buffer): DecodedMessage {
  const { topic, offset } = readTopic(type, frame, 0);
  need(type, frame, offset + 8, 'timestamp');
  const at = frame.readDoubleBE(offset);
  const json = frame.toString('utf8', offset + 8);
  if (json.length === 0) {
    throw new MalformedMessageError(type, 'empty payload');
  }
  return { topic, at, json };
}

/** Decodes a `REQUEST` frame. Throws `MalformedMessageError`. */
export function decodeRequestFrame(frame: Buffer): DecodedRequest {
  const type = MessagingFrameType.REQUEST;
  need(type, frame, 4, 'request id');
  const id = frame.readUInt32BE(0);
  const { topic, offset } = readTopic(type, frame, 4);
  const json = frame.toString('utf8', offset);
  if (json.length === 0) {
    throw new MalformedMessageError(type, 'empty payload');
  }
  return { id, topic, json };
}

/** Decodes a `REPLY` frame. Throws `MalformedMessageError`. */
export function decodeReplyFrame(frame: Buffer): DecodedReply {
  need(MessagingFrameType.REPLY, frame, 4, 'request id');
  return { id: frame.readUInt32BE(0), json: frame.toString('utf8', 4) };
}

/** Decodes a `REPLY_ERROR` frame. Throws `MalformedMessageError`. */
export function decodeReplyErrorFrame(frame: Buffer): DecodedReplyError {
  const type = MessagingFrameType.REPLY_ERROR;
  need(type, frame, 5, 'request id and code');
  const id = frame.readUInt32BE(0);
  const code = frame.readUInt8(4);
  const body = parseJson(type, frame.toString('utf8', 5));
  if (typeof body !== 'object' || body === null) {
    throw new MalformedMessageError(type, 'error body is not an object');
  }
  const { name, message } = body as { name?: unknown; message?: unknown };
  return {
    id,
    code,
    name: typeof name === 'string' ? name : 'Error',
    message: typeof message === 'string' ? message : '',
  };
}

/** Parses the JSON text of a frame. Throws `MalformedMessageError`. */
export function parseJson(type: number, json: string): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch (error) {
    throw new MalformedMessageError(type, 'payload is not valid JSON', { cause: error });
  }
}

function readTopic(type: number, frame: Buffer, start: number): { topic: string; offset: number } {
  need(type, frame, start + 2, 'topic length');
  const length = frame.readUInt16BE(start);
  if (length === 0 || length > MAX_TOPIC_BYTES) {
    throw new MalformedMessageError(type, `topic length ${length} out of range`);
  }
  const end = start + 2 + length;
  need(type, frame, end, 'topic');
  return { topic: frame.toString('utf8', start + 2, end), offset: end };
}

function need(type: number, frame: Buffer, bytes: number, what: string): void {
  if (frame.length < bytes) {
    throw new MalformedMessageError(type, `truncated before the end of the ${what}`);
  }
}

function describeType(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return 'a symbol';
  return typeof value;
}
