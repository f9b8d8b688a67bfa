import { describe, expect, it } from 'vitest';
import { RateLimitedLogger } from '../../../lib/logging/rate-limited-logger.js';
import { PendingHandshakes } from '../../../lib/transport/pending-handshakes.js';
import { RecordingLogger } from '../strategies/fake-context.js';

function table(maxPendingHandshakes: number, maxPendingHandshakesPerSource: number) {
  const logger = new RecordingLogger();
  const pending = new PendingHandshakes<string>(
    { maxPendingHandshakes, maxPendingHandshakesPerSource },
    new RateLimitedLogger(logger, 60_000, 1024, () => 0),
  );
  return { pending, logger };
}

describe('PendingHandshakes', () => {
  it('lets one source past its share only while the table is less than half full', () => {
    const { pending, logger } = table(8, 2);
    const admitted = ['a1', 'a2', 'a3', 'a4', 'a5'].map((id) => pending.admit(id, 'A', `A:${id}`));
    // four from A fill half the table; the fifth is over its share
    expect(admitted).toEqual([true, true, true, true, false]);
    // another source still gets in, up to the global cap
    expect(['b1', 'b2', 'b3', 'b4'].map((id) => pending.admit(id, 'B', `B:${id}`))).toEqual([
      true,
      true,
      false,
      false,
    ]);
    expect(pending.size).toBe(6);
    expect(logger.at('warn')).toEqual([
      '4 handshakes from A already pending: dropping the connection from A:a5',
      '2 handshakes from B already pending: dropping the connection from B:b3',
    ]);
  });

  it('warns once per reason and source when the global cap is reached', () => {
    const { pending, logger } = table(2, 2);
    expect(pending.admit('a1', 'A', 'A:1')).toBe(true);
    expect(pending.admit('b1', 'B', 'B:1')).toBe(true);
    expect(pending.admit('c1', 'C', 'C:1')).toBe(false);
    expect(pending.admit('c2', 'C', 'C:2')).toBe(false);
    expect(logger.at('warn')).toEqual([
      '2 handshakes already pending: dropping the connection from C:1',
    ]);
  });

  it('gives a slot back exactly once, however many ways its phase ends', () => {
    const { pending } = table(8, 1);
    for (const id of ['a1', 'a2', 'a3', 'a4']) expect(pending.admit(id, 'A', id)).toBe(true);
    expect(pending.admit('a5', 'A', 'a5')).toBe(false);
    pending.release('a1');
    pending.release('a1');
    pending.release('never-admitted');
    expect(pending.size).toBe(3);
    // A holds 3 of 8: below half, so it may take one more, and no more than that
    expect(pending.admit('a5', 'A', 'a5')).toBe(true);
    expect(pending.admit('a6', 'A', 'a6')).toBe(false);
    expect(pending.entries().sort()).toEqual(['a2', 'a3', 'a4', 'a5']);
    pending.clear();
    expect(pending.size).toBe(0);
    expect(pending.admit('a7', 'A', 'a7')).toBe(true);
  });
});
