import { createCipheriv, createHash, hkdfSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RecordIntegrityError } from '../../../lib/errors/record-integrity.error.js';
import { PROTOCOL_VERSION } from '../../../lib/transport/frame.js';
import {
  deriveLinkKeys,
  maxRecordBytes,
  RECORD_SINGLE_BUFFER_BYTES,
  RECORD_TAG_BYTES,
  RecordOpener,
  recordKeysFor,
  RecordSealer,
  type LinkKeyInputs,
} from '../../../lib/transport/record-seal.js';
import { testIdentity } from '../../support/raw-peer.js';

const inputs: LinkKeyInputs = {
  cookieKey: Buffer.from('a cookie of the cluster', 'utf8'),
  version: PROTOCOL_VERSION,
  dialerNonce: Buffer.alloc(32, 1),
  listenerNonce: Buffer.alloc(32, 2),
  dialer: testIdentity('a@10.0.0.1', { endpoint: '10.0.0.1:45893' }),
  listener: testIdentity('b@10.0.0.2', { endpoint: '10.0.0.2:45893' }),
};
const keys = deriveLinkKeys(inputs);
const MAX = 4096;

/** Seals each plaintext in its own record and returns the record bytes. */
function records(sealer: RecordSealer, ...plaintexts: string[]): Buffer[] {
  return plaintexts.map((text) => {
    const bytes = Buffer.from(text, 'utf8');
    return Buffer.concat(sealer.seal([bytes], bytes.length));
  });
}

function opened(opener: RecordOpener, bytes: Buffer): string[] {
  return opener.push(bytes).map((b) => b.toString('utf8'));
}

function integrityError(run: () => unknown): RecordIntegrityError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(RecordIntegrityError);
    return error as RecordIntegrityError;
  }
  throw new Error('no RecordIntegrityError was thrown');
}

describe('record keys', () => {
  it('are two different 32-byte keys, the same at both ends, crossed by role', () => {
    expect(keys.dialerToListener).toHaveLength(32);
    expect(keys.listenerToDialer).toHaveLength(32);
    expect(keys.dialerToListener.equals(keys.listenerToDialer)).toBe(false);
    expect(deriveLinkKeys({ ...inputs }).dialerToListener.equals(keys.dialerToListener)).toBe(true);
    const dialer = recordKeysFor('dialer', keys);
    const listener = recordKeysFor('listener', keys);
    expect(dialer.send.equals(listener.receive)).toBe(true);
    expect(listener.send.equals(dialer.receive)).toBe(true);
  });

  it('change with every input: cookie key, either nonce, either identity, version', () => {
    const variants: LinkKeyInputs[] = [
      { ...inputs, cookieKey: Buffer.from('another cookie', 'utf8') },
      { ...inputs, dialerNonce: Buffer.alloc(32, 3) },
      { ...inputs, listenerNonce: Buffer.alloc(32, 3) },
      { ...inputs, dialer: { ...inputs.dialer, incarnation: 'other' } },
      { ...inputs, listener: { ...inputs.listener, endpoint: '10.0.0.2:1' } },
      { ...inputs, version: PROTOCOL_VERSION + 1 },
      // The same bytes moved between fields must not give the same keys (length prefixes).
      {
        ...inputs,
        dialer: { ...inputs.dialer, name: 'a@10.0.0.', incarnation: '1a@10.0.0.1-inc' },
      },
    ];
    for (const variant of variants) {
      const other = deriveLinkKeys(variant);
      expect(other.dialerToListener.equals(keys.dialerToListener)).toBe(false);
      expect(other.listenerToDialer.equals(keys.listenerToDialer)).toBe(false);
    }
  });

  it('follow the documented construction (HKDF-SHA256, transcript-hash salt, direction labels)', () => {
    const f = (v: Buffer | string): Buffer => {
      const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
      const h = Buffer.alloc(4);
      h.writeUInt32BE(b.length, 0);
      return Buffer.concat([h, b]);
    };
    const id = (i: typeof inputs.dialer): Buffer[] =>
      [i.name, i.incarnation, String(i.startedAt), i.endpoint].map((x) => f(x));
    const salt = createHash('sha256')
      .update(
        Buffer.concat([
          f('nestjs-cluster record keys'),
          f(Buffer.from([inputs.version])),
          f(inputs.dialerNonce),
          f(inputs.listenerNonce),
          ...id(inputs.dialer),
          ...id(inputs.listener),
        ]),
      )
      .digest();
    const expected = Buffer.from(
      hkdfSync('sha256', inputs.cookieKey, salt, 'nestjs-cluster record key dialer->listener', 32),
    );
    expect(keys.dialerToListener.equals(expected)).toBe(true);
  });
});

describe('sealed records', () => {
  it('round-trip in order across arbitrary chunking, counting records', () => {
    const sealer = new RecordSealer(keys.dialerToListener);
    const opener = new RecordOpener(keys.dialerToListener, maxRecordBytes(MAX, 6));
    const stream = Buffer.concat(records(sealer, 'one', 'two', 'three'));
    const got: string[] = [];
    for (let i = 0; i < stream.length; i += 5)
      got.push(...opened(opener, stream.subarray(i, i + 5)));
    expect(got).toEqual(['one', 'two', 'three']);
    expect(sealer.sealed).toBe(3);
    expect(opener.opened).toBe(3);
    expect(opener.bufferedBytes).toBe(0);
  });

  it('record layout: u32be length of ciphertext + tag, AES-256-GCM, nonce = 4 zero bytes + u64be counter, length as AAD', () => {
    const sealer = new RecordSealer(keys.dialerToListener);
    records(sealer, 'first');
    const [second] = records(sealer, 'second');
    expect(second.readUInt32BE(0)).toBe(6 + RECORD_TAG_BYTES);
    const nonce = Buffer.alloc(12);
    nonce.writeUInt32BE(1, 8);
    const cipher = createCipheriv('aes-256-gcm', keys.dialerToListener, nonce);
    cipher.setAAD(second.subarray(0, 4));
    const body = Buffer.concat([cipher.update(Buffer.from('second')), cipher.final()]);
    expect(second.subarray(4).equals(Buffer.concat([body, cipher.getAuthTag()]))).toBe(true);
  });

  it('a small record is one buffer to write, a large one three; both open to what was sealed', () => {
    const sealer = new RecordSealer(recordKeysFor('dialer', keys).send);
    const opener = new RecordOpener(
      recordKeysFor('listener', keys).receive,
      maxRecordBytes(64 * 1024, 0),
    );
    const small = [Buffer.from('two '), Buffer.from('frames')];
    const sealedSmall = sealer.seal(small, 10);
    expect(sealedSmall).toHaveLength(1);
    expect(sealedSmall[0]).toHaveLength(4 + 10 + RECORD_TAG_BYTES);
    const large = Buffer.alloc(RECORD_SINGLE_BUFFER_BYTES + 1, 7);
    const sealedLarge = sealer.seal([large], large.length);
    expect(sealedLarge.map((b) => b.length)).toEqual([4, large.length, RECORD_TAG_BYTES]);
    const opened = opener.push(Buffer.concat([...sealedSmall, ...sealedLarge]));
    expect(opened.map((b) => b.toString('hex'))).toEqual([
      Buffer.from('two frames').toString('hex'),
      large.toString('hex'),
    ]);
  });

  it('a flipped bit anywhere in a record (length, ciphertext or tag) is rejected', () => {
    const [record] = records(new RecordSealer(keys.dialerToListener), 'payload of a record');
    for (let at = 0; at < record.length; at++) {
      const tampered = Buffer.from(record);
      tampered[at] ^= at < 4 ? 0x01 : 0x80;
      const opener = new RecordOpener(keys.dialerToListener, maxRecordBytes(MAX, 6));
      // A changed length either breaks a limit, waits for bytes that never come, or fails the tag.
      let threw = false;
      try {
        const out = opener.push(tampered);
        expect(out).toEqual([]);
        opener.end();
      } catch (error) {
        expect(error).toBeInstanceOf(RecordIntegrityError);
        threw = true;
      }
      expect(threw, `byte ${at}`).toBe(true);
    }
  });

  it('a replayed, reordered or dropped record fails authentication', () => {
    const sealer = new RecordSealer(keys.dialerToListener);
    const [r0, r1, r2] = records(sealer, 'r0', 'r1', 'r2');
    const fresh = (): RecordOpener =>
      new RecordOpener(keys.dialerToListener, maxRecordBytes(MAX, 6));

    const replay = fresh();
    expect(opened(replay, r0)).toEqual(['r0']);
    expect(integrityError(() => replay.push(r0)).sequence).toBe(1);

    const reorder = fresh();
    expect(opened(reorder, r0)).toEqual(['r0']);
    expect(integrityError(() => reorder.push(r2)).sequence).toBe(1);

    const drop = fresh();
    expect(integrityError(() => drop.push(r1)).sequence).toBe(0);
  });

  it('the other direction key (or another link key) does not open a record', () => {
    const [record] = records(new RecordSealer(keys.dialerToListener), 'hello');
    const wrongDirection = new RecordOpener(keys.listenerToDialer, maxRecordBytes(MAX, 6));
    expect(integrityError(() => wrongDirection.push(record)).message).toContain(
      'failed authentication',
    );
    const otherLink = deriveLinkKeys({ ...inputs, dialerNonce: Buffer.alloc(32, 9) });
    const wrongLink = new RecordOpener(otherLink.dialerToListener, maxRecordBytes(MAX, 6));
    expect(() => wrongLink.push(record)).toThrow(RecordIntegrityError);
  });

  it('a length above the limit is rejected from its 4 bytes, before any body is buffered', () => {
    const opener = new RecordOpener(keys.dialerToListener, 100);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(101, 0);
    expect(integrityError(() => opener.push(head)).message).toContain('more than the 100 allowed');
    expect(opener.bufferedBytes).toBe(0);
    // After a failure the opener stays failed.
    expect(() => opener.push(Buffer.alloc(1))).toThrow(RecordIntegrityError);
  });

  it('a length too short for a tag and one byte is rejected', () => {
    const opener = new RecordOpener(keys.dialerToListener, 100);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(RECORD_TAG_BYTES, 0);
    expect(integrityError(() => opener.push(head)).message).toContain('too short');
  });

  it('a stream cut inside a record is reported at the end; cut between records it is not', () => {
    const sealer = new RecordSealer(keys.dialerToListener);
    const [r0, r1] = records(sealer, 'complete', 'cut short');
    const opener = new RecordOpener(keys.dialerToListener, maxRecordBytes(MAX, 6));
    expect(opened(opener, Buffer.concat([r0, r1.subarray(0, r1.length - 3)]))).toEqual([
      'complete',
    ]);
    expect(integrityError(() => opener.end()).message).toContain('ended inside record 1');

    const clean = new RecordOpener(keys.dialerToListener, maxRecordBytes(MAX, 6));
    expect(opened(clean, r0)).toEqual(['complete']);
    expect(() => clean.end()).not.toThrow();
  });

  it('nothing of a record is released before its tag verified', () => {
    const [record] = records(new RecordSealer(keys.dialerToListener), 'all or nothing');
    const opener = new RecordOpener(keys.dialerToListener, maxRecordBytes(MAX, 6));
    expect(opener.push(record.subarray(0, record.length - 1))).toEqual([]);
    expect(opened(opener, record.subarray(record.length - 1))).toEqual(['all or nothing']);
  });
});
