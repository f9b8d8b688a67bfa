import { afterEach, describe, expect, it, vi } from 'vitest';
import { VirtualTime } from '../../../lib/runtime/virtual-time.js';
import { HeartbeatMonitor, type MonitoredLink } from '../../../lib/transport/heartbeat-monitor.js';

class FakeLink implements MonitoredLink {
  lastReceivedAt: number;
  lastSentAt: number;
  readonly drives = true;
  watched = true;
  suspectedAt: number | undefined;
  probeSentAt: number | undefined;
  heartbeats: number[] = [];
  expired: number[] = [];
  constructor(now: number) {
    this.lastReceivedAt = now;
    this.lastSentAt = now;
  }
  grace(now: number): void {
    this.lastReceivedAt = now;
  }
  sendHeartbeat(now: number, probe: boolean): void {
    this.heartbeats.push(now);
    this.lastSentAt = now;
    if (probe) this.probeSentAt = now;
  }
  expire(silentMs: number): void {
    this.expired.push(silentMs);
  }
}

/** A monitor with a 100 ms interval and a 400 ms failure timeout, on virtual time. */
function monitorOnVirtualTime() {
  const time = new VirtualTime();
  const clock = time.process();
  const monitor = new HeartbeatMonitor({ heartbeatIntervalMs: 100, failureTimeoutMs: 400, clock });
  return { time, clock, monitor };
}

/** Records when `link` expires and stops watching it then, as `Transport` does. */
function recordExpiry(
  link: FakeLink,
  monitor: HeartbeatMonitor,
  clock: { now(): number },
): { at: number | undefined } {
  const seen: { at: number | undefined } = { at: undefined };
  link.expire = (silentMs) => {
    seen.at = clock.now();
    link.expired.push(silentMs);
    monitor.delete(link);
  };
  return seen;
}

describe('HeartbeatMonitor', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('probes a silent link once and expires it after failureTimeoutMs', async () => {
    const { time, clock, monitor } = monitorOnVirtualTime();
    const link = new FakeLink(0);
    const expired = recordExpiry(link, monitor, clock);
    monitor.add(link);
    await time.runUntil(2000, () => expired.at !== undefined);
    expect(expired.at).toBeGreaterThan(400);
    expect(expired.at).toBeLessThanOrEqual(400 + monitor.tickMs);
    // One probe once silent for the idle period (the timeout less two intervals), then none:
    // a probe is outstanding until something arrives.
    expect(link.heartbeats[0]).toBe(monitor.idleProbeMs);
    expect(link.probeSentAt).toBe(monitor.idleProbeMs);
    expect(link.heartbeats.length).toBeLessThanOrEqual(2);
    expect(monitor.size).toBe(0);
    await time.runFor(1000);
    expect(time.pending).toBe(0);
  });

  it('an unwatched link is probed only after three failure timeouts and expires after four', async () => {
    const { time, clock, monitor } = monitorOnVirtualTime();
    const link = new FakeLink(0);
    link.watched = false;
    const expired = recordExpiry(link, monitor, clock);
    monitor.add(link);
    await time.runUntil(3000, () => expired.at !== undefined);
    expect(monitor.unwatchedProbeMs).toBe(1200);
    expect(link.heartbeats[0]).toBe(1200);
    expect(expired.at).toBeGreaterThan(1600);
    expect(expired.at).toBeLessThanOrEqual(1600 + monitor.tickMs);
  });

  it('a suspected link expires when nothing arrives within the window of a probe, and lives when something does', async () => {
    const { time, clock, monitor } = monitorOnVirtualTime();
    const silent = new FakeLink(0);
    const answering = new FakeLink(0);
    const silentExpiry = recordExpiry(silent, monitor, clock);
    const answeringExpiry = recordExpiry(answering, monitor, clock);
    for (const link of [silent, answering]) {
      link.watched = false;
      monitor.add(link);
    }
    await time.runFor(500);
    silent.suspectedAt = clock.now();
    answering.suspectedAt = clock.now();
    await time.runFor(100);
    // The answer arrives: the link clears its suspicion (as `Link` does on any bytes).
    answering.lastReceivedAt = clock.now();
    answering.suspectedAt = undefined;
    await time.runFor(1000);
    // The window is the failure timeout less the idle probe: 400 − 200 = 200 ms.
    expect(monitor.suspectWindowMs).toBe(200);
    expect(silent.expired).toHaveLength(1);
    expect(silentExpiry.at! - 500).toBeGreaterThan(200);
    expect(silentExpiry.at! - 500).toBeLessThanOrEqual(200 + monitor.tickMs);
    expect(answeringExpiry.at).toBeUndefined();
    monitor.stop();
  });

  it('a late tick (local stall) judges no one, grants a fresh window and heartbeats at once', async () => {
    const time = new VirtualTime();
    const clock = time.process();
    const stalls: number[] = [];
    const monitor = new HeartbeatMonitor({
      heartbeatIntervalMs: 100,
      failureTimeoutMs: 400,
      clock,
      onStall: (lag) => stalls.push(lag),
    });
    const link = new FakeLink(0);
    monitor.add(link);
    // The process is stopped for 2 s (the event loop blocked): the timer fires once, very late.
    clock.freeze();
    await time.runUntil(2000);
    clock.thaw();
    await time.runUntil(2000);
    expect(stalls).toHaveLength(1);
    expect(stalls[0]).toBeGreaterThan(1500);
    expect(link.expired).toEqual([]);
    expect(link.lastReceivedAt).toBe(2000);
    expect(link.heartbeats).toEqual([2000]);
    // Still silent afterwards: expired one failure window after the stall.
    await time.runUntil(4000, () => link.expired.length > 0);
    expect(clock.now()).toBeGreaterThan(2400);
    expect(link.expired.length).toBe(1);
    monitor.stop();
  });

  it('uses one timer for many links and none without links', () => {
    vi.useFakeTimers();
    const monitor = new HeartbeatMonitor({ heartbeatIntervalMs: 100, failureTimeoutMs: 400 });
    const links = Array.from({ length: 50 }, () => new FakeLink(0));
    links.forEach((l) => monitor.add(l));
    expect(vi.getTimerCount()).toBe(1);
    links.forEach((l) => monitor.delete(l));
    expect(vi.getTimerCount()).toBe(0);
  });
});
