import { systemClock, type Clock, type TimerHandle } from '../runtime/clock.js';

/** What the monitor needs from a link. Times are monotonic milliseconds (the clock's `now()`). */
export interface MonitoredLink {
  /** When bytes were last received. */
  readonly lastReceivedAt: number;
  /** When a frame was last written. */
  readonly lastSentAt: number;
  /**
   * True on the end that drives the link's liveness (the dialer): it sends the idle probes and
   * the other end answers them. Both ends agree on it without exchanging anything.
   */
  readonly drives: boolean;
  /** When this end last sent a HEARTBEAT asking for an answer; undefined before the first. */
  readonly probeSentAt: number | undefined;
  /**
   * True when this end holds the link to the failure timeout; false when it only probes it at
   * the slow pace (`unwatchedProbeMs`), because other members watch the peer.
   */
  readonly watched: boolean;
  /** When `suspect` probed the link; undefined once bytes arrived since (or never suspected). */
  readonly suspectedAt: number | undefined;
  /** Forgets older silence: the peer gets a fresh failure window from `now`. */
  grace(now: number): void;
  /** Sends one HEARTBEAT frame; `probe` asks the peer to answer at once. */
  sendHeartbeat(now: number, probe: boolean): void;
  /** The peer has been silent for longer than the failure timeout. */
  expire(silentMs: number): void;
}

/** Options of the heartbeat monitor. */
export interface HeartbeatMonitorOptions {
  /** Resolution of the failure detector, ms (see `HeartbeatMonitor` for what derives from it). */
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
 * Idle time after which the driving end of a link probes it, ms: the failure timeout less two
 * heartbeat intervals (3 s with the defaults), at least one interval. A peer stalled for less
 * than the remaining two intervals still answers before its failure window ends.
 */
export function idleProbeMs(heartbeatIntervalMs: number, failureTimeoutMs: number): number {
  return Math.max(heartbeatIntervalMs, failureTimeoutMs - 2 * heartbeatIntervalMs);
}

/**
 * Silence after which the answering end probes a link itself, ms: one interval after the
 * driver's probe was due (4 s with the defaults), so it never fires while the driver drives.
 */
export function answerProbeMs(heartbeatIntervalMs: number, failureTimeoutMs: number): number {
  return Math.min(
    idleProbeMs(heartbeatIntervalMs, failureTimeoutMs) + heartbeatIntervalMs,
    failureTimeoutMs - heartbeatIntervalMs / 2,
  );
}

/**
 * Silence after which an end probes a link it does not watch, ms: three failure timeouts (15 s
 * with the defaults). The driver's probe and the answering end's (one interval later) follow
 * the same rule as on a watched link.
 */
export function unwatchedProbeMs(failureTimeoutMs: number): number {
  return 3 * failureTimeoutMs;
}

/**
 * One checker timer for all the links of a transport: keeps idle links alive with as few
 * frames as possible and expires silent ones.
 *
 * Only one end of a link drives it (the dialer). Any frame received counts as a sign of life
 * (Erlang's tick): a link that carried traffic needs no heartbeat. On an idle link the driver
 * sends a probe — a HEARTBEAT asking for an answer — once it has received nothing for
 * `idleProbeMs` (3 s), and the other end answers at once: one round trip per idle period,
 * which over TCP is three packets (probe, answer carrying the acknowledgement, the
 * acknowledgement of the answer). The driver also sends a plain HEARTBEAT when it wrote
 * nothing for that long (traffic only flowing towards it). The answering end probes by itself
 * only when the driver's probes stop coming (`answerProbeMs`, 4 s). Either end closes a link
 * that received nothing for `failureTimeoutMs`, so a crashed or frozen peer is detected on
 * both ends within the failure timeout plus one checker tick.
 *
 * Membership may leave a link unwatched (`watched: false`) when other members watch its peer
 * (the heartbeat ring, see `WatchRing`): then the silence thresholds are the slow ones —
 * probe after `unwatchedProbeMs` (15 s), close after one more failure timeout (20 s) — so a
 * large cluster's idle cost does not grow with its size. When another member reports a loss,
 * membership suspects such links: each gets a probe, and closes with `heartbeat-timeout` if
 * nothing arrives within `suspectWindowMs` (2 s, the time a watched link gives its probe's
 * answer).
 *
 * Lifeguard's lesson: silence measured across a blocked event loop is the local node's
 * fault, not the peer's — frames that arrived while the loop was blocked are still unread in
 * the kernel. The checker measures how late it fires; after a stall it judges no one, gives
 * every link a fresh failure window and probes every link at once.
 */
export class HeartbeatMonitor {
  private readonly links = new Set<MonitoredLink>();
  private readonly clock: Clock;
  /** Period of the checker, ms. */
  readonly tickMs: number;
  /** Lateness above which a tick counts as a stall, ms. */
  readonly stallThresholdMs: number;
  /** Idle time after which the driving end probes, ms. */
  readonly idleProbeMs: number;
  /** Silence after which the answering end probes, ms. */
  readonly answerProbeMs: number;
  /** Silence after which an end probes a link it does not watch, ms. */
  readonly unwatchedProbeMs: number;
  /** Silence after which a link that is not watched closes, ms. */
  readonly unwatchedTimeoutMs: number;
  /** Time a suspected link has to answer its probe, ms. */
  readonly suspectWindowMs: number;
  private timer: TimerHandle | undefined;
  private expectedAt = 0;

  constructor(private readonly options: HeartbeatMonitorOptions) {
    this.clock = options.clock ?? systemClock;
    this.tickMs = Math.max(
      5,
      Math.floor(Math.min(options.heartbeatIntervalMs / 2, options.failureTimeoutMs / 4)),
    );
    this.stallThresholdMs = Math.max(options.heartbeatIntervalMs / 2, this.tickMs);
    this.idleProbeMs = idleProbeMs(options.heartbeatIntervalMs, options.failureTimeoutMs);
    this.answerProbeMs = answerProbeMs(options.heartbeatIntervalMs, options.failureTimeoutMs);
    this.unwatchedProbeMs = unwatchedProbeMs(options.failureTimeoutMs);
    this.unwatchedTimeoutMs = this.unwatchedProbeMs + options.failureTimeoutMs;
    this.suspectWindowMs = Math.max(this.tickMs, options.failureTimeoutMs - this.idleProbeMs);
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
        link.sendHeartbeat(now, true);
        continue;
      }
      this.check(link, now);
    }
    // A link added during the loop may have scheduled the next tick already.
    if (this.links.size === 0 || this.timer !== undefined) return;
    this.expectedAt = now + this.tickMs;
    this.schedule();
  }

  private check(link: MonitoredLink, now: number): void {
    const silentMs = now - link.lastReceivedAt;
    const watched = link.watched;
    if (
      silentMs > (watched ? this.options.failureTimeoutMs : this.unwatchedTimeoutMs) ||
      (link.suspectedAt !== undefined && now - link.suspectedAt > this.suspectWindowMs)
    ) {
      link.expire(silentMs);
      return;
    }
    // Thresholds lose half a tick so that a period lands on the tick that ends it.
    const slack = this.tickMs / 2;
    const idleProbe = watched ? this.idleProbeMs : this.unwatchedProbeMs;
    const probing = link.probeSentAt !== undefined && link.probeSentAt > link.lastReceivedAt;
    const probeAfter = link.drives
      ? idleProbe
      : watched
        ? this.answerProbeMs
        : idleProbe + this.options.heartbeatIntervalMs;
    if (!probing && silentMs >= probeAfter - slack) {
      link.sendHeartbeat(now, true);
      return;
    }
    if (link.drives && now - link.lastSentAt >= idleProbe - slack) link.sendHeartbeat(now, false);
  }
}
