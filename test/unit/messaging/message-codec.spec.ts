import { describe, expect, it } from 'vitest';
import { MalformedMessageError } from '../../../lib/errors/malformed-message.error.js';
import { PayloadError } from '../../../lib/errors/payload.error.js';
import {
  decodeMessageFrame,
  decodeReplyErrorFrame,
  decodeReplyFrame,
  decodeRequestFrame,
  encodeMessageFrame,
  encodePayload,
  encodeReplyErrorFrame,
  encodeReplyFrame,
  encodeRequestFrame,
  encodeTopic,
  MAX_TOPIC_BYTES,
  MESSAGING_FRAME_TYPES,
  MessagingFrameType,
  ReplyErrorCode,
} from '../../../lib/messaging/message-codec.js';

describe('message codec', () => {
  it('uses the messaging range 32–47 for every frame type', () => {
    expect(MESSAGING_FRAME_TYPES).toEqual([32, 33, 34, 35, 36]);
    for (const type of MESSAGING_FRAME_TYPES) {
      expect(type).toBeGreaterThanOrEqual(32);
      expect(type).toBeLessThanOrEqual(47);
    }
  });

  it('round-trips a message frame with a multi-byte topic', () => {
    const topic = 'überall:ñ';
    const frame = encodeMessageFrame(
      encodeTopic(topic),
      1_700_000_000_123,
      encodePayload(topic, { a: [1, 'é'] }, 1000),
    );
    const decoded = decodeMessageFrame(MessagingFrameType.PUBLISH, frame);
    expect(decoded.topic).toBe(topic);
    expect(decoded.at).toBe(1_700_000_000_123);
    expect(JSON.parse(decoded.json)).toEqual({ a: [1, 'é'] });
  });

  it('round-trips request, reply and reply-error frames', () => {
    const request = decodeRequestFrame(
      encodeRequestFrame(0xffff_fffe, encodeTopic('sum'), Buffer.from('[1,2]')),
    );
    expect(request).toEqual({ id: 0xffff_fffe, topic: 'sum', json: '[1,2]' });
    expect(decodeReplyFrame(encodeReplyFrame(7, Buffer.from('3')))).toEqual({ id: 7, json: '3' });
    expect(decodeReplyFrame(encodeReplyFrame(8, Buffer.alloc(0)))).toEqual({ id: 8, json: '' });
    expect(
      decodeReplyErrorFrame(
        encodeReplyErrorFrame(9, ReplyErrorCode.HANDLER_FAILED, {
          name: 'TypeError',
          message: 'x',
        }),
      ),
    ).toEqual({ id: 9, code: 1, name: 'TypeError', message: 'x' });
  });

  it('keeps the header small: 12 bytes plus the topic for a message', () => {
    const frame = encodeMessageFrame(encodeTopic('t'), 0, Buffer.from('1'));
    expect(frame.length).toBe(2 + 1 + 8 + 1);
  });

  it('measures the limit in UTF-8 bytes of the JSON text', () => {
    // 'é' is 2 bytes in UTF-8: 500 of them plus two quotes is 1002 bytes.
    expect(() => encodePayload('t', 'é'.repeat(500), 1001)).toThrow(PayloadError);
    expect(encodePayload('t', 'é'.repeat(500), 1002).length).toBe(1002);
  });

  it('refuses topics that are empty or longer than the maximum', () => {
    expect(() => encodeTopic('')).toThrow(PayloadError);
    expect(() => encodeTopic('x'.repeat(MAX_TOPIC_BYTES + 1))).toThrow(PayloadError);
    expect(encodeTopic('x'.repeat(MAX_TOPIC_BYTES)).length).toBe(MAX_TOPIC_BYTES);
  });

  it('rejects truncated and inconsistent frames with MalformedMessageError', () => {
    const good = encodeMessageFrame(encodeTopic('topic'), 1, Buffer.from('{}'));
    for (let length = 0; length < good.length - 2; length++) {
      expect(() => decodeMessageFrame(MessagingFrameType.SEND, good.subarray(0, length))).toThrow(
        MalformedMessageError,
      );
    }
    expect(() => decodeRequestFrame(Buffer.from([0, 0, 0, 1, 0, 0]))).toThrow(
      MalformedMessageError,
    );
    expect(() => decodeReplyFrame(Buffer.from([0, 0]))).toThrow(MalformedMessageError);
    expect(() => decodeReplyErrorFrame(Buffer.from([0, 0, 0, 1, 1, 0x5b]))).toThrow(
      MalformedMessageError,
    );
    expect(() => decodeReplyErrorFrame(Buffer.from([0, 0, 0, 1, 1, 0x31]))).toThrow(
      MalformedMessageError,
    );
  });
});
