/**
 * The reconciler's dial window: handshakes that time out shrink the dials in flight, completed
 * ones widen them again — so a start-up storm on an overloaded machine does not keep throwing
 * away the work of handshakes it gives up. The dialer below is scripted; time is virtual.
 */
import { describe, expect, it } from 'vitest';
import { HandshakeFailedError } from '../../../lib/errors/handshake-failed.error.js';
import { HandshakeTimeoutError } from '../../../lib/errors/handshake-timeout.error.js';
import { Membership } from '../../../lib/membership/membership.js';
import { Reconciler } from '../../../lib/reconciler/reconciler.js';
import { seededRandom } from '../../../lib/runtime/random.js';
import { VirtualTime } from '../../../lib/runtime/virtual-time.js';
import { testIdentity } from '../../support/raw-peer.js';

const silentLogger = { log() {}, warn() {}, error() {}, debug() {}, verbose() {} };

function world(outcome: (dialNo: number) => 'ok' | 'timeout' | 'reset') {
  const time = new VirtualTime();
  const clock = time.process();
  const membership = new Membership(testIdentity('self@10.0.0.1'), { clock, logger: silentLogger });
  let inFlight = 0;
  let dials = 0;
  const peaks: number[] = [];
  const reconciler = new Reconciler(
    {
      dial: () => {
        const no = ++dials;
        inFlight++;
        peaks.push(inFlight);
        return new Promise((resolve, reject) =>
          clock.setTimeout(() => {
            inFlight--;
            const o = outcome(no);
            if (o === 'ok') resolve(undefined);
            else if (o === 'timeout') reject(new HandshakeTimeoutError('10.0.0.9:45893', 100));
            else reject(new HandshakeFailedError('10.0.0.9:45893', 'connection reset'));
          }, 100),
        );
      },
      membership,
      self: () => ({ name: 'self@10.0.0.1', endpoint: '10.0.0.1:45893' }),
    },
    {
      baseDelayMs: 50,
      maxDelayMs: 200,
      maxConcurrentDials: 8,
      clock,
      random: seededRandom(3),
      logger: silentLogger,
    },
  );
  // 40 endpoints without names: no pair order, each is dialled at once (and again on failure).
  const endpoints = Array.from({ length: 40 }, (_, i) => ({
    host: `10.1.0.${i + 1}`,
    port: 45893,
  }));
  return { time, reconciler, peaks, endpoints, dialsSoFar: () => dials };
}

describe('dial window', () => {
  it('timed-out handshakes shrink the dials in flight to one; completions widen them back to the cap', async () => {
    // The first 16 dials time out (an overloaded start-up), every later one completes.
    const w = world((no) => (no <= 16 ? 'timeout' : 'ok'));
    w.reconciler.setDiscovered('t', w.endpoints);
    await w.time.runFor(300);
    expect(Math.max(...w.peaks.slice(0, 8))).toBe(8);
    // After the first round of 8 timeouts the window is 1: the next dials go one at a time.
    await w.time.runFor(600);
    expect(w.reconciler.stats().window).toBeLessThanOrEqual(2);
    // Completions widen it back to the cap.
    await w.time.runFor(20_000);
    expect(w.reconciler.stats().window).toBe(8);
    expect(Math.max(...w.peaks.slice(-8))).toBeLessThanOrEqual(8);
    w.reconciler.stop();
  });

  it('failures other than timeouts (refusals, resets) leave the window alone', async () => {
    const w = world((no) => (no <= 16 ? 'reset' : 'ok'));
    w.reconciler.setDiscovered('t', w.endpoints);
    await w.time.runFor(300);
    expect(w.dialsSoFar()).toBeGreaterThanOrEqual(16);
    expect(w.reconciler.stats().window).toBe(8);
    // The redials after the resets still go eight at a time.
    expect(Math.max(...w.peaks.slice(8, 16))).toBe(8);
    w.reconciler.stop();
  });
});
