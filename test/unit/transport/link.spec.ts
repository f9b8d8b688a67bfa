import { once } from 'node:events';
import type { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { FrameTooLargeError } from '../../../lib/errors/frame-too-large.error.js';
import { FrameType } from '../../../lib/transport/frame-types.js';
import { encodeFrame, PROTOCOL_VERSION } from '../../../lib/transport/frame.js';
import type { Link, LinkCloseReason } from '../../../lib/transport/link.js';
import { RawPeer, rawListen, startHeartbeatingPeer, testIdentity } from '../../support/raw-peer.js';
import {
  captureLogs,
  closeOf,
  COOKIE,
  LOCALHOST,
  nextLink,
  startTransport,
  within,
  useTransportCleanup,
} from './helpers.js';

const { cleanup, started } = useTransportCleanup();

/** Records every close reason of a link, to check 'close' fires exactly once. */
function recordCloses(link: Link): LinkCloseReason[] {
  const reasons: LinkCloseReason[] = [];
  link.on('close', (reason) => reasons.push(reason));
  return reasons;
}

async function pair(options: Parameters<typeof startTransport>[1] = {}) {
  const a = await started('a@127.0.0.1', options);
  const b = await started('b@127.0.0.1', options);
  const inbound = nextLink(b.transport);
  const atA = await a.transport.dial(LOCALHOST, b.port);
  const atB = await within(inbound, 2000, 'no inbound link');
  return { a, b, atA, atB };
}

function busyWait(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // blocking the event loop on purpose
  }
}

describe('link', () => {
  it('a frame of an unknown type after auth closes that link with protocol-error', async () => {
    const logs = captureLogs();
    cleanup.push(() => logs.restore());
    const b = await started('b@127.0.0.1');
    const inbound = nextLink(b.transport);
    const raw = await RawPeer.dial(LOCALHOST, b.port, COOKIE, testIdentity('raw@127.0.0.1'));
    cleanup.push(() => raw.destroy());
    const link = await within(inbound, 2000, 'no inbound link');
    const reasons = recordCloses(link);
    const frames: number[] = [];
    link.on('frame', (type) => frames.push(type));
    raw.send(32, Buffer.from('accepted'));
    raw.send(99, Buffer.from('unknown'));
    raw.send(33, Buffer.from('never delivered'));
    await within(closeOf(link), 2000, 'link did not close');
    expect(reasons).toEqual(['protocol-error']);
    expect(frames).toEqual([32]);
    expect(
      logs
        .lines()
        .some((l) => l.startsWith('warn: closing link to raw@127.0.0.1') && l.includes('type 99')),
    ).toBe(true);
    await within(once(raw.socket, 'close'), 2000, 'socket of the offending peer stayed open');
  });

  it('frames travel sealed: the payload is not on the wire, a changed record closes the link with one integrity line', async () => {
    const logs = captureLogs();
    cleanup.push(() => logs.restore());
    const b = await started('b@127.0.0.1');
    const inbound = nextLink(b.transport);
    const raw = await RawPeer.dial(LOCALHOST, b.port, COOKIE, testIdentity('raw@127.0.0.1'));
    cleanup.push(() => raw.destroy());
    const link = await within(inbound, 2000, 'no inbound link');
    const reasons = recordCloses(link);
    const wire: Buffer[] = [];
    raw.socket.on('data', (chunk: Buffer) => wire.push(chunk));
    const secret = 'a payload nobody on the path may read';
    link.send(32, Buffer.from(secret));
    const frame = await raw.waitForFrame(32, 2000);
    expect(frame.payload.toString()).toBe(secret);
    expect(Buffer.concat(wire).includes(Buffer.from(secret))).toBe(false);

    const delivered: string[] = [];
    link.on('frame', (_type, payload) => delivered.push(payload.toString()));
    raw.send(32, Buffer.from('intact'));
    const record = raw.seal(encodeFrame(32, Buffer.from('changed on the way')));
    record[record.length - 20] ^= 0x01;
    raw.socket.write(record);
    await within(closeOf(link), 2000, 'a changed record did not close the link');
    expect(reasons).toEqual(['protocol-error']);
    expect(delivered).toEqual(['intact']);
    const lines = logs.lines().filter((l) => l.includes('integrity failure'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^warn: integrity failure from raw@127\.0\.0\.1 \(127\.0\.0\.1:\d+\): record integrity: record 1 failed authentication/,
    );
  });

  it('handshake frame types after auth are a protocol error too', async () => {
    const b = await started('b@127.0.0.1');
    const inbound = nextLink(b.transport);
    const raw = await RawPeer.dial(LOCALHOST, b.port, COOKIE, testIdentity('raw@127.0.0.1'));
    cleanup.push(() => raw.destroy());
    const link = await within(inbound, 2000, 'no inbound link');
    raw.send(FrameType.HELLO, Buffer.from('{}'));
    expect(await within(closeOf(link), 2000, 'link did not close')).toBe('protocol-error');
  });

  it('a received frame above maxFrameBytes closes the link with protocol-error', async () => {
    const b = await started('b@127.0.0.1', { maxFrameBytes: 1024 });
    const inbound = nextLink(b.transport);
    const raw = await RawPeer.dial(LOCALHOST, b.port, COOKIE, testIdentity('raw@127.0.0.1'));
    cleanup.push(() => raw.destroy());
    const link = await within(inbound, 2000, 'no inbound link');
    const reasons = recordCloses(link);
    // Only the header of a 1 MiB frame, in a sealed record: the link must not wait for the body.
    raw.sendSealed(Buffer.from([0, 0x10, 0, 0, PROTOCOL_VERSION, 32]));
    await within(closeOf(link), 2000, 'oversized frame header did not close the link');
    expect(reasons).toEqual(['protocol-error']);
  });

  it('sending a frame above maxFrameBytes throws FrameTooLargeError; exactly the maximum is delivered', async () => {
    const { atA, atB } = await pair({ maxFrameBytes: 1024 });
    expect(() => atA.send(32, Buffer.alloc(1023))).toThrow(FrameTooLargeError);
    expect(atA.send(32, Buffer.alloc(1022))).toBe(true);
    const got = await within(
      new Promise<number>((resolve) => atB.on('frame', (_t, p) => resolve(p.length))),
      2000,
      'frame of exactly maxFrameBytes not delivered',
    );
    expect(got).toBe(1022);
  });

  it('a peer that goes silent after the handshake is closed with heartbeat-timeout after failureTimeoutMs', async () => {
    const b = await started('b@127.0.0.1', { heartbeatIntervalMs: 50, failureTimeoutMs: 300 });
    const inbound = nextLink(b.transport);
    const raw = await RawPeer.dial(LOCALHOST, b.port, COOKIE, testIdentity('silent@127.0.0.1'));
    cleanup.push(() => raw.destroy());
    const link = await within(inbound, 2000, 'no inbound link');
    const reasons = recordCloses(link);
    // The raw peer reads (it receives our heartbeats) but never sends anything. When the
    // timeout fires is the heartbeat monitor's unit test (virtual clock), not this one's.
    const heartbeats = raw.waitForFrame(FrameType.HEARTBEAT, 1000);
    await within(closeOf(link), 3000, 'silent peer was never timed out');
    await heartbeats;
    expect(reasons).toEqual(['heartbeat-timeout']);
    expect(b.transport.linkCount).toBe(0);
  });

  it('an empty HEARTBEAT (an older node) is answered at once with a plain one', async () => {
    const b = await started('b@127.0.0.1', { heartbeatIntervalMs: 1000, failureTimeoutMs: 5000 });
    const inbound = nextLink(b.transport);
    const raw = await RawPeer.dial(LOCALHOST, b.port, COOKIE, testIdentity('old@127.0.0.1'));
    cleanup.push(() => raw.destroy());
    const link = await within(inbound, 2000, 'no inbound link');
    expect(link.drives).toBe(false);
    // A probe is answered unless the link wrote within half an interval (the link counts as
    // written at its creation): ask a little later.
    await new Promise((resolve) => setTimeout(resolve, 600));
    raw.send(FrameType.HEARTBEAT);
    // The listener's own probe would come only after 4 s of silence and would carry 0x01.
    const answer = await raw.waitForFrame(FrameType.HEARTBEAT, 2000);
    expect([...answer.payload]).toEqual([0]);
    expect(link.closed).toBe(false);
  });

  it('idle links stay up: heartbeats keep both sides alive well past failureTimeoutMs', async () => {
    const { atA, atB } = await pair({ heartbeatIntervalMs: 40, failureTimeoutMs: 200 });
    const reasons = [...recordCloses(atA), ...recordCloses(atB)];
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(reasons).toEqual([]);
    expect(atA.closed || atB.closed).toBe(false);
  });

  it('an event-loop stall longer than failureTimeoutMs does not blame a peer that kept heartbeating', async () => {
    const b = await started('b@127.0.0.1', { heartbeatIntervalMs: 50, failureTimeoutMs: 500 });
    const inbound = nextLink(b.transport);
    const worker: Worker = startHeartbeatingPeer({
      host: LOCALHOST,
      port: b.port,
      cookie: COOKIE,
      identity: testIdentity('worker@127.0.0.1'),
      heartbeatMs: 50,
    });
    cleanup.push(() => worker.terminate());
    const link = await within(inbound, 5000, 'worker peer did not link');
    const reasons = recordCloses(link);

    busyWait(1600); // more than 3 × failureTimeoutMs
    // Two failure windows after the stall: the peer is still heartbeating, so no close.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(reasons).toEqual([]);

    // The same link does time out once the peer really goes silent (the test can fail).
    worker.postMessage('silence');
    expect(await within(closeOf(link), 3000, 'silent worker peer never timed out')).toBe(
      'heartbeat-timeout',
    );
  });

  it('graceful leave: the remote side closes with leave at once, the local side with local', async () => {
    const { a, atA, atB } = await pair({ heartbeatIntervalMs: 1000, failureTimeoutMs: 5000 });
    const remote = recordCloses(atB);
    const local = recordCloses(atA);
    const remoteClosed = closeOf(atB);
    const start = Date.now();
    await within(atA.leave(), 2000, 'leave did not resolve');
    expect(await within(remoteClosed, 2000, 'remote never saw the leave')).toBe('leave');
    expect(Date.now() - start).toBeLessThan(1000);
    expect(local).toEqual(['local']);
    expect(remote).toEqual(['leave']);
    expect(atA.send(32, Buffer.from('after leave'))).toBe(false);
    expect(a.transport.linkCount).toBe(0);
  });

  it('close() emits local once; the remote side sees closed', async () => {
    const { atA, atB } = await pair();
    const local = recordCloses(atA);
    const remoteClosed = closeOf(atB);
    atA.close('test');
    atA.close('again');
    expect(await within(remoteClosed, 2000, 'remote never saw the close')).toBe('closed');
    expect(local).toEqual(['local']);
  });

  it('transport.close() closes every link and pending handshake', async () => {
    const { a, atA, atB } = await pair();
    const remoteClosed = closeOf(atB);
    const localClosed = closeOf(atA);
    await a.transport.close();
    expect(await localClosed).toBe('local');
    expect(await within(remoteClosed, 2000, 'remote never saw the close')).toBe('closed');
    await expect(a.transport.dial(LOCALHOST, 1)).rejects.toThrow(/closed/);
  });

  it('backpressure: send returns false, and queues nothing, once the peer stops reading', async () => {
    const a = await started('a@127.0.0.1', { maxWriteBufferBytes: 256 * 1024 });
    const peers: RawPeer[] = [];
    const { port, close } = await rawListen(COOKIE, testIdentity('slow@127.0.0.1'), (peer) =>
      peers.push(peer),
    );
    cleanup.push(() => {
      peers.forEach((p) => p.destroy());
      return close();
    });
    const link = await a.transport.dial(LOCALHOST, port);
    const chunk = Buffer.alloc(128 * 1024, 1);
    let accepted = 0;
    let refused = false;
    // Bounded: at most 1 GiB offered; the kernel buffers fill long before.
    for (let i = 0; i < 8192; i++) {
      if (!link.send(32, chunk)) {
        refused = true;
        break;
      }
      accepted++;
    }
    expect(refused).toBe(true);
    expect(accepted).toBeGreaterThan(0);
    const queued = link.bufferedBytes;
    expect(queued).toBeGreaterThan(256 * 1024);
    expect(queued).toBeLessThan(256 * 1024 + 2 * chunk.length);
    expect(link.send(32, chunk)).toBe(false);
    expect(link.bufferedBytes).toBe(queued);
    expect(link.closed).toBe(false);
  });
});
