/** Verdict of {@link ReplayWindow.check}. */
export type ReplayVerdict = 'fresh' | 'stale' | 'future' | 'replay';

/**
 * Rejects replayed gossip packets with bounded memory.
 *
 * A packet is fresh when its sender timestamp lies within `±windowMs` of our clock and its
 * nonce was not seen before. Nonces are remembered until their packet would be stale
 * anyway. When more than `maxEntries` are live, the oldest is forgotten and its timestamp
 * becomes a watermark: packets stamped at or before it are treated as stale, so a forgotten
 * nonce can never be replayed. Only authenticated packets reach this check, so a sender
 * without the key cannot fill the cache.
 */
export class ReplayWindow {
  private readonly seen = new Map<string, number>();
  private watermark = -Infinity;

  constructor(
    private readonly windowMs: number,
    private readonly maxEntries: number,
  ) {}

  /** Number of nonces remembered. */
  get size(): number {
    return this.seen.size;
  }

  /** Checks a packet and, when fresh, remembers its nonce. */
  check(nonce: Buffer, sentAt: number, now: number): ReplayVerdict {
    if (sentAt > now + this.windowMs) return 'future';
    if (sentAt < now - this.windowMs || sentAt <= this.watermark) return 'stale';
    this.forgetExpired(now);
    const id = nonce.toString('base64');
    if (this.seen.has(id)) return 'replay';
    while (this.seen.size >= this.maxEntries) {
      const oldest = this.seen.entries().next().value;
      if (oldest === undefined) break;
      this.seen.delete(oldest[0]);
      this.watermark = Math.max(this.watermark, oldest[1]);
    }
    this.seen.set(id, sentAt);
    return 'fresh';
  }

  /** Drops nonces whose packets are stale now (insertion order is close to time order). */
  private forgetExpired(now: number): void {
    const limit = now - this.windowMs;
    for (const [id, sentAt] of this.seen) {
      if (sentAt >= limit) break;
      this.seen.delete(id);
    }
  }
}
