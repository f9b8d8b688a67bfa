import { systemClock, type Clock, type TimerHandle } from '../runtime/clock.js';

/** What the monitor needs from a link. Times are monotonic milliseconds (the clock's `now()`). */
export interface MonitoredLink {
  /** When bytes were last received. */
  readonly lastReceivedAt: number;
  /** When a frame was last written. */
  readonly lastSentAt: number;
  /** Forgets older silence: the peer gets a fresh failure window from `now`. */
  grace(now: number): void;
  /** Sends one HEARTBEAT frame. */
  sendHeartbeat(now: number): void;
  /** The peer has been silent for longer than the failure timeout. */
  expire(silentMs: number): void;
}

/** Options of the heartbeat monitor. */
export interface HeartbeatMonitorOptions {
  /** A HEARTBEAT is sent on a link idle for this long, ms. */
  readonly heartbeatIntervalMs: number;
  /** A link that received nothing for this long expires, ms. */
  readonly failureTimeoutMs: number;
  /**
   * Called when the checker fired late by more than half a heartbeat interval: the local event
   * loop was blocked, so nobody is judged on that tick.
   */
  readonly onStall?: (lagMs: number) => void;
  /** Time seam. @default systemClock */
  readonly clock?: Clock;
}

/**
 * One checker timer for all the links of a transport: sends heartbeats on idle links and
 * expires silent ones.
 *
 * Lifeguard's lesson: silence measured across a blocked event loop is the local node's
 * fault, not the peer's — frames that arrived while the loop was blocked are still unread in
 * the kernel. The checker measures how late it fires; after a stall it judges no one, gives
 * every link a fresh failure window and sends heartbeats at once.
 */
export class HeartbeatMonitor {
  private readonly links = new Set<MonitoredLink>();
  private readonly clock: Clock;
  /** Period of the checker, ms. */
  readonly tickMs: number;
  /** Lateness above which a tick counts as a stall, ms. */
  readonly stallThresholdMs: number;
  private timer: TimerHandle | undefined;
  private expectedAt = 0;

  constructor(private readonly options: HeartbeatMonitorOptions) {
    this.clock = options.clock ?? systemClock;
    this.tickMs = Math.max(
      5,
      Math.floor(Math.min(options.heartbeatIntervalMs / 2, options.failureTimeoutMs / 4)),
    );
    this.stallThresholdMs = Math.max(options.heartbeatIntervalMs / 2, this.tickMs);
  }

  /** Number of links watched. */
  get size(): number {
    return this.links.size;
  }

  /** Starts watching a link (and the timer, for the first link). */
  add(link: MonitoredLink): void {
    this.links.add(link);
    if (this.timer === undefined) {
      this.expectedAt = this.clock.now() + this.tickMs;
      this.schedule();
    }
  }

  /** Stops watching a link (and the timer, after the last link). */
  delete(link: MonitoredLink): void {
    this.links.delete(link);
    if (this.links.size === 0) this.stop();
  }

  /** Stops the timer and forgets every link. */
  stop(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.links.clear();
  }

  private schedule(): void {
    this.timer = this.clock.setTimeout(
      () => this.tick(),
      Math.max(0, this.expectedAt - this.clock.now()),
    );
  }

  private tick(): void {
    this.timer = undefined;
    const now = this.clock.now();
    const lagMs = now - this.expectedAt;
    const stalled = lagMs > this.stallThresholdMs;
    if (stalled) this.options.onStall?.(lagMs);
    for (const link of [...this.links]) {
      if (stalled) {
        link.grace(now);
        link.sendHeartbeat(now);
        continue;
      }
      const silentMs = now - link.lastReceivedAt;
      if (silentMs > this.options.failureTimeoutMs) {
        link.expire(silentMs);
        continue;
      }
      if (now - link.lastSentAt >= this.options.heartbeatIntervalMs - this.tickMs / 2)
        link.sendHeartbeat(now);
    }
    // A link added during the loop may have scheduled the next tick already.
    if (this.links.size === 0 || this.timer !== undefined) return;
    this.expectedAt = now + this.tickMs;
    this.schedule();
  }
}
