import type { RateLimitedLogger } from '../logging/rate-limited-logger.js';

/** How many unauthenticated inbound connections a listener holds at once (see `Transport`). */
export interface PendingHandshakeLimits {
  /** Inbound connections in handshake at once; more are dropped on arrival. */
  readonly maxPendingHandshakes: number;
  /** Inbound connections from one source address once half of `maxPendingHandshakes` are taken. */
  readonly maxPendingHandshakesPerSource: number;
}

/**
 * The admission table of one pre-authentication phase: which inbound connections are in it,
 * and how many per source address. A connection is admitted while fewer than
 * `maxPendingHandshakes` are pending and — once half of those slots are taken — while its
 * source holds fewer than `maxPendingHandshakesPerSource`; a refusal is logged at most once a
 * minute per reason and source. Releasing is idempotent, so every way a phase can end may
 * release its entry and the slot is still given back exactly once.
 *
 * The link transport keeps one for the cookie handshake; the mutual-TLS network one for the
 * TLS handshake before it.
 */
export class PendingHandshakes<T> {
  /** Source host of each pending entry. */
  private readonly sources = new Map<T, string>();
  /** Entries pending per source host. */
  private readonly bySource = new Map<string, number>();

  constructor(
    private readonly limits: PendingHandshakeLimits,
    private readonly rateLimited: RateLimitedLogger,
  ) {}

  /** Connections currently pending. */
  get size(): number {
    return this.sources.size;
  }

  /** The pending entries (to destroy them on close). */
  entries(): T[] {
    return [...this.sources.keys()];
  }

  /**
   * Takes a slot for `entry`, a connection from host `source` (`address` is its
   * `host:port`, for the log). Returns false, after a rate-limited warning, when the
   * connection must be dropped.
   */
  admit(entry: T, source: string, address: string): boolean {
    const { maxPendingHandshakes, maxPendingHandshakesPerSource } = this.limits;
    if (this.sources.size >= maxPendingHandshakes) {
      this.rateLimited.warn(
        'pending-cap',
        `${maxPendingHandshakes} handshakes already pending: dropping the connection from ${address}`,
      );
      return false;
    }
    // While the table is less than half full a source may take more than its share (several
    // nodes on one host dialling a newcomer at once); beyond that, no source may hold more.
    const fromSource = this.bySource.get(source) ?? 0;
    if (
      fromSource >= maxPendingHandshakesPerSource &&
      this.sources.size >= maxPendingHandshakes / 2
    ) {
      this.rateLimited.warn(
        `source-cap:${source}`,
        `${fromSource} handshakes from ${source} already pending: dropping the connection from ${address}`,
      );
      return false;
    }
    this.sources.set(entry, source);
    this.bySource.set(source, fromSource + 1);
    return true;
  }

  /** Gives back the slot of `entry`; does nothing when it holds none (any more). */
  release(entry: T): void {
    const source = this.sources.get(entry);
    if (source === undefined) return;
    this.sources.delete(entry);
    const left = (this.bySource.get(source) ?? 1) - 1;
    if (left > 0) this.bySource.set(source, left);
    else this.bySource.delete(source);
  }

  /** Forgets every entry. */
  clear(): void {
    this.sources.clear();
    this.bySource.clear();
  }
}
