import { describe, expect, it } from 'vitest';
import { CLUSTER_DEFAULTS } from '../../../lib/config/cluster.defaults.js';
import { seededRandom } from '../../../lib/runtime/random.js';
import { VirtualTime } from '../../../lib/runtime/virtual-time.js';
import { answerProbeMs, idleProbeMs } from '../../../lib/transport/heartbeat-monitor.js';
import {
  encodeHeartbeat,
  heartbeatWantsAnswer,
  type Link,
  type LinkCloseReason,
} from '../../../lib/transport/link.js';
import { MemoryNetwork } from '../../../lib/transport/memory-network.js';
import { Transport } from '../../../lib/transport/transport.js';
import { testIdentity } from '../../support/raw-peer.js';

const INTERVAL = CLUSTER_DEFAULTS.heartbeatIntervalMs;
const TIMEOUT = CLUSTER_DEFAULTS.failureTimeoutMs;
const APP = 32;
const silentLogger = { log() {}, warn() {}, error() {}, debug() {}, verbose() {} };

interface End {
  readonly link: Link;
  /** HEARTBEATs written: `probe` for those asking an answer. */
  readonly sent: { at: number; probe: boolean }[];
  closed?: { at: number; reason: LinkCloseReason };
}

/** Two transports on virtual time; `a` dials `b`. Both ends count the heartbeats they write. */
async function linkedPair(seed = 1) {
  const time = new VirtualTime();
  const network = new MemoryNetwork(time, seededRandom(seed), { latencyMs: [1, 3] });
  const make = (name: string, host: string) =>
    new Transport({
      identity: () => testIdentity(`${name}@${host}`, { endpoint: `${host}:45893` }),
      cookie: 'monster',
      acceptedTypes: new Set([APP]),
      port: 45893,
      network: network.host(host),
      clock: network.clockOf(host),
      random: seededRandom(seed * 7 + host.length),
      logger: silentLogger,
    });
  const a = make('a', '10.0.0.1');
  const b = make('b', '10.0.0.2');
  let inbound: Link | undefined;
  b.on('link', (link) => (inbound = link));
  await a.listen();
  await b.listen();
  let outbound: Link | undefined;
  void a.dial('10.0.0.2', 45893).then((link) => (outbound = link));
  await time.runFor(1000, () => inbound !== undefined && outbound !== undefined);
  if (!inbound || !outbound) throw new Error('the pair did not link');
  const end = (link: Link): End => {
    const e: End = { link, sent: [] };
    const send = link.sendHeartbeat.bind(link);
    link.sendHeartbeat = (now, probe) => {
      if (!link.closed) e.sent.push({ at: now, probe });
      send(now, probe);
    };
    link.on('close', (reason) => (e.closed = { at: time.now, reason }));
    return e;
  };
  return { time, network, a, b, atA: end(outbound), atB: end(inbound) };
}

const probes = (e: End, since = 0) => e.sent.filter((s) => s.probe && s.at >= since).length;
const answers = (e: End, since = 0) => e.sent.filter((s) => !s.probe && s.at >= since).length;

describe('one-sided heartbeats', () => {
  it('derives the idle periods from the interval and the timeout', () => {
    expect(idleProbeMs(1000, 5000)).toBe(3000);
    expect(answerProbeMs(1000, 5000)).toBe(4000);
    // The smallest timeout allowed (2 × interval): probes every interval, as before.
    expect(idleProbeMs(1000, 2000)).toBe(1000);
    expect(answerProbeMs(1000, 2000)).toBe(1500);
  });

  it('heartbeat payload: one flags byte; an empty payload (older peers) asks for an answer', () => {
    expect([...encodeHeartbeat(true)]).toEqual([1]);
    expect([...encodeHeartbeat(false)]).toEqual([0]);
    expect(heartbeatWantsAnswer(encodeHeartbeat(true))).toBe(true);
    expect(heartbeatWantsAnswer(encodeHeartbeat(false))).toBe(false);
    expect(heartbeatWantsAnswer(Buffer.alloc(0))).toBe(true);
    expect(heartbeatWantsAnswer(Buffer.from([0x03, 0xff]))).toBe(true);
    expect(heartbeatWantsAnswer(Buffer.from([0x02]))).toBe(false);
  });

  it('an idle link costs one probe and one answer per idle period, the dialer probing', async () => {
    const { time, atA, atB } = await linkedPair();
    expect(atA.link.drives).toBe(true);
    expect(atB.link.drives).toBe(false);
    const from = time.now + 5000;
    await time.runFor(5000 + 60_000);
    const periods = 60_000 / idleProbeMs(INTERVAL, TIMEOUT);
    expect(probes(atA, from)).toBeGreaterThanOrEqual(periods - 1);
    expect(probes(atA, from)).toBeLessThanOrEqual(periods + 1);
    expect(answers(atA, from)).toBe(0);
    expect(probes(atB, from)).toBe(0);
    expect(answers(atB, from)).toBe(probes(atA, from));
    expect(atA.closed ?? atB.closed).toBeUndefined();
  });

  it('a link carrying traffic both ways sends no heartbeat at all', async () => {
    const { time, atA, atB } = await linkedPair();
    const from = time.now;
    for (let i = 0; i < 60; i++) {
      atA.link.send(APP, Buffer.from('a'));
      atB.link.send(APP, Buffer.from('b'));
      await time.runFor(500);
    }
    expect(atA.sent.filter((s) => s.at >= from)).toEqual([]);
    expect(atB.sent.filter((s) => s.at >= from)).toEqual([]);
    expect(atA.closed ?? atB.closed).toBeUndefined();
  });

  it('traffic one way only: the silent direction gets one heartbeat per idle period', async () => {
    for (const talker of ['dialer', 'listener'] as const) {
      const { time, atA, atB } = await linkedPair();
      const [talks, listens] = talker === 'dialer' ? [atA, atB] : [atB, atA];
      const from = time.now;
      for (let i = 0; i < 60; i++) {
        talks.link.send(APP, Buffer.from('x'));
        await time.runFor(500);
      }
      expect(atA.closed ?? atB.closed).toBeUndefined();
      // Whoever only listens writes one heartbeat per idle period (an answer or a plain one).
      const heard = listens.sent.filter((s) => s.at >= from).length;
      expect(heard).toBeGreaterThanOrEqual(8);
      expect(heard).toBeLessThanOrEqual(11);
      // The talker never needs to probe: its frames already prove it alive, and the listener's
      // heartbeats come without being asked (listener) or as answers (dialer's probes).
      expect(probes(atB, from)).toBe(0);
    }
  });

  for (const frozen of ['listener', 'dialer'] as const) {
    it(`a frozen ${frozen} is down on the other end within failureTimeoutMs + one interval, at every phase`, async () => {
      const detections: number[] = [];
      for (let phase = 0; phase < 3000; phase += 250) {
        const { time, network, atA, atB } = await linkedPair(phase + 1);
        const [victim, survivor] = frozen === 'listener' ? ['10.0.0.2', atA] : ['10.0.0.1', atB];
        await time.runFor(10_000 + phase);
        const at = time.now;
        network.clockOf(victim).freeze();
        await time.runFor(TIMEOUT * 3, () => survivor.closed !== undefined);
        expect(survivor.closed?.reason).toBe('heartbeat-timeout');
        detections.push((survivor.closed?.at ?? Infinity) - at);
      }
      expect(Math.max(...detections)).toBeLessThanOrEqual(TIMEOUT + INTERVAL);
      // Never before the peer could have answered: at least the stall tolerance after it froze.
      expect(Math.min(...detections)).toBeGreaterThanOrEqual(
        TIMEOUT - idleProbeMs(INTERVAL, TIMEOUT),
      );
    });
  }

  it('a silently crashed peer is down on both ends within failureTimeoutMs + one interval', async () => {
    for (const victim of ['10.0.0.1', '10.0.0.2']) {
      const { time, network, atA, atB } = await linkedPair();
      await time.runFor(11_234);
      const at = time.now;
      network.crash(victim, true);
      const survivor = victim === '10.0.0.1' ? atB : atA;
      await time.runFor(TIMEOUT * 3, () => survivor.closed !== undefined);
      expect(survivor.closed?.reason).toBe('heartbeat-timeout');
      expect((survivor.closed?.at ?? Infinity) - at).toBeLessThanOrEqual(TIMEOUT + INTERVAL);
    }
  });

  for (const frozen of ['listener', 'dialer'] as const) {
    it(`a ${frozen} stalled for two intervals (2 s) costs no link, at every phase`, async () => {
      for (let phase = 0; phase < 3000; phase += 100) {
        const { time, network, atA, atB } = await linkedPair(phase + 1);
        const victim = frozen === 'listener' ? '10.0.0.2' : '10.0.0.1';
        await time.runFor(10_000 + phase);
        network.clockOf(victim).freeze();
        await time.runFor(2 * INTERVAL);
        network.clockOf(victim).thaw();
        await time.runFor(3 * TIMEOUT);
        expect(atA.closed ?? atB.closed, `phase ${phase}`).toBeUndefined();
      }
    });
  }

  it('a listener whose dialer stopped driving probes by itself and keeps the link', async () => {
    const { time, atA, atB } = await linkedPair();
    // The dialer still answers but never probes (as if it disagreed about who drives).
    Object.defineProperty(atA.link, 'drives', { value: false });
    const answerOnly = atA.link.sendHeartbeat.bind(atA.link);
    atA.link.sendHeartbeat = (now, probe) => {
      if (!probe) answerOnly(now, probe);
    };
    const from = time.now + TIMEOUT;
    await time.runFor(TIMEOUT + 40_000);
    expect(atA.closed ?? atB.closed).toBeUndefined();
    const period = answerProbeMs(INTERVAL, TIMEOUT);
    expect(probes(atB, from)).toBeGreaterThanOrEqual(Math.floor(40_000 / period) - 1);
  });
});
