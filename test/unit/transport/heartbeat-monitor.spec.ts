import { afterEach, describe, expect, it, vi } from 'vitest';
import { HeartbeatMonitor, type MonitoredLink } from '../../../lib/transport/heartbeat-monitor.js';

class FakeLink implements MonitoredLink {
  lastReceivedAt: number;
  lastSentAt: number;
  heartbeats: number[] = [];
  expired: number[] = [];
  constructor(now: number) {
    this.lastReceivedAt = now;
    this.lastSentAt = now;
  }
  grace(now: number): void {
    this.lastReceivedAt = now;
  }
  sendHeartbeat(now: number): void {
    this.heartbeats.push(now);
    this.lastSentAt = now;
  }
  expire(silentMs: number): void {
    this.expired.push(silentMs);
  }
}

describe('HeartbeatMonitor', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends heartbeats on idle links and expires silent ones after failureTimeoutMs', () => {
    vi.useFakeTimers();
    let now = 0;
    const monitor = new HeartbeatMonitor({ heartbeatIntervalMs: 100, failureTimeoutMs: 400, now: () => now });
    const link = new FakeLink(0);
    let expiredAt: number | undefined;
    link.expire = (silentMs) => {
      expiredAt = now;
      link.expired.push(silentMs);
      monitor.delete(link);
    };
    monitor.add(link);
    for (let step = 0; step < 100 && expiredAt === undefined; step++) {
      now += monitor.tickMs;
      vi.advanceTimersByTime(monitor.tickMs);
    }
    expect(expiredAt).toBeGreaterThan(400);
    expect(expiredAt).toBeLessThanOrEqual(400 + monitor.tickMs);
    // About one heartbeat per interval while idle.
    expect(link.heartbeats.length).toBeGreaterThanOrEqual(3);
    expect(link.heartbeats.length).toBeLessThanOrEqual(5);
    expect(monitor.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a late tick (local stall) judges no one, grants a fresh window and heartbeats at once', () => {
    vi.useFakeTimers();
    let now = 0;
    const stalls: number[] = [];
    const monitor = new HeartbeatMonitor({
      heartbeatIntervalMs: 100,
      failureTimeoutMs: 400,
      now: () => now,
      onStall: (lag) => stalls.push(lag),
    });
    const link = new FakeLink(0);
    monitor.add(link);
    // The loop is blocked for 2 s: the timer fires once, very late.
    now = 2000;
    vi.advanceTimersByTime(monitor.tickMs);
    expect(stalls).toHaveLength(1);
    expect(stalls[0]).toBeGreaterThan(1500);
    expect(link.expired).toEqual([]);
    expect(link.lastReceivedAt).toBe(2000);
    expect(link.heartbeats).toEqual([2000]);
    // Still silent afterwards: expired one failure window after the stall.
    for (let step = 0; step < 100 && link.expired.length === 0; step++) {
      now += monitor.tickMs;
      vi.advanceTimersByTime(monitor.tickMs);
    }
    expect(now).toBeGreaterThan(2400);
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
