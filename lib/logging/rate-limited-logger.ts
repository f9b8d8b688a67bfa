import type { LoggerService } from '@nestjs/common';

/** Log levels the rate limiter forwards. */
export type RateLimitedLevel = 'error' | 'warn' | 'log' | 'debug';

interface Slot {
  lastAt: number;
  suppressed: number;
}

/**
 * Logs a message at most once per key per interval, so that a misconfigured or hostile peer
 * that reconnects in a loop costs one log line a minute, not thousands. Suppressed repeats
 * are counted and reported with the next line of that key. Keys are bounded: when
 * `maxKeys` are tracked, the oldest is forgotten.
 */
export class RateLimitedLogger {
  private readonly slots = new Map<string, Slot>();

  constructor(
    private readonly logger: LoggerService,
    /** Minimum time between two lines of one key, ms. @default 60000 */
    private readonly intervalMs = 60_000,
    /** Keys tracked at most. @default 1024 */
    private readonly maxKeys = 1024,
    /** Clock seam. @default `Date.now` */
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Logs `message` at `level` unless a line with the same `key` was logged within the interval.
   * A function is only called when the line is logged (a flood builds no strings).
   * @returns true when the line was logged
   */
  write(level: RateLimitedLevel, key: string, message: string | (() => string)): boolean {
    const at = this.now();
    const slot = this.slots.get(key);
    if (slot && at - slot.lastAt < this.intervalMs) {
      slot.suppressed += 1;
      return false;
    }
    const suppressed = slot?.suppressed ?? 0;
    this.slots.delete(key);
    this.slots.set(key, { lastAt: at, suppressed: 0 });
    if (this.slots.size > this.maxKeys) {
      const oldest = this.slots.keys().next().value;
      if (oldest !== undefined) this.slots.delete(oldest);
    }
    const text = typeof message === 'function' ? message() : message;
    const line = suppressed > 0 ? `${text} (${suppressed} similar suppressed)` : text;
    if (level === 'debug') this.logger.debug?.(line);
    else if (level === 'warn') this.logger.warn(line);
    else if (level === 'error') this.logger.error(line);
    else this.logger.log(line);
    return true;
  }

  /** `write('error', key, message)`. */
  error(key: string, message: string | (() => string)): boolean {
    return this.write('error', key, message);
  }

  /** `write('warn', key, message)`. */
  warn(key: string, message: string | (() => string)): boolean {
    return this.write('warn', key, message);
  }

  /** `write('debug', key, message)`. */
  debug(key: string, message: string | (() => string)): boolean {
    return this.write('debug', key, message);
  }
}
