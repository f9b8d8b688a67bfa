import type { LoggerService } from '@nestjs/common';
import { describe, expect, it } from 'vitest';
import { RateLimitedLogger } from '../../../lib/logging/rate-limited-logger.js';

function sink(): { logger: LoggerService; lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    logger: {
      log: (m: unknown) => lines.push(`log: ${String(m)}`),
      warn: (m: unknown) => lines.push(`warn: ${String(m)}`),
      error: (m: unknown) => lines.push(`error: ${String(m)}`),
      debug: (m: unknown) => lines.push(`debug: ${String(m)}`),
    },
  };
}

describe('RateLimitedLogger', () => {
  it('logs once per key per interval and reports how many were suppressed', () => {
    const { logger, lines } = sink();
    let now = 0;
    const limited = new RateLimitedLogger(logger, 60_000, 1024, () => now);
    expect(limited.warn('cookie:10.0.1.7', 'cookie mismatch from 10.0.1.7:1')).toBe(true);
    now = 1000;
    expect(limited.warn('cookie:10.0.1.7', 'cookie mismatch from 10.0.1.7:2')).toBe(false);
    expect(limited.warn('cookie:10.0.1.7', 'cookie mismatch from 10.0.1.7:3')).toBe(false);
    expect(limited.warn('cookie:10.0.1.8', 'cookie mismatch from 10.0.1.8:1')).toBe(true);
    now = 61_000;
    expect(limited.warn('cookie:10.0.1.7', 'cookie mismatch from 10.0.1.7:4')).toBe(true);
    expect(lines).toEqual([
      'warn: cookie mismatch from 10.0.1.7:1',
      'warn: cookie mismatch from 10.0.1.8:1',
      'warn: cookie mismatch from 10.0.1.7:4 (2 similar suppressed)',
    ]);
  });

  it('tracks a bounded number of keys', () => {
    const { logger, lines } = sink();
    const limited = new RateLimitedLogger(logger, 60_000, 10, () => 0);
    for (let i = 0; i < 1000; i++) limited.debug(`k${i}`, `line ${i}`);
    expect(lines).toHaveLength(1000);
    // The oldest keys were forgotten, so k0 logs again; the newest is still limited.
    expect(limited.debug('k0', 'again')).toBe(true);
    expect(limited.debug('k999', 'again')).toBe(false);
  });
});
