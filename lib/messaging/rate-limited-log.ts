import type { LoggerService } from '@nestjs/common';

/**
 * Logs a warning at most once per key and interval, and says how many were suppressed in
 * between. Keeps a bounded number of keys, so a flood of distinct keys cannot grow memory.
 */
export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly logger: Pick<LoggerService, 'warn'>,
    private readonly intervalMs = 10_000,
    private readonly maxKeys = 1_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Logs `message` unless the same `key` was logged less than the interval ago. */
  warn(key: string, message: string): void {
    const now = this.now();
    const entry = this.last.get(key);
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return;
    }
    const suffix = entry && entry.suppressed > 0 ? ` (${entry.suppressed} more suppressed)` : '';
    if (!entry && this.last.size >= this.maxKeys) {
      this.last.clear();
    }
    this.last.set(key, { at: now, suppressed: 0 });
    this.logger.warn(message + suffix);
  }
}
