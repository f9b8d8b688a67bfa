import { describe, expect, it } from 'vitest';
import { dialsFirst } from '../../../lib/identity/identity.js';

const names = Array.from({ length: 200 }, (_, i) => `n${i + 1}@127.0.0.1`);

describe('dialsFirst (who of two nodes dials first)', () => {
  it('is decided the same way on both ends: exactly one of each pair dials first', () => {
    for (const a of names)
      for (const b of names) if (a !== b) expect(dialsFirst(a, b)).toBe(!dialsFirst(b, a));
  });

  it('spreads the dialling: no node dials the whole cluster, each about half of it', () => {
    const dials = names.map((a) => names.filter((b) => b !== a && dialsFirst(a, b)).length);
    const peers = names.length - 1;
    // A global name order would give 199 dials to one node and 0 to another.
    expect(Math.max(...dials)).toBeLessThan(peers * 0.7);
    expect(Math.min(...dials)).toBeGreaterThan(peers * 0.3);
    expect(dials.reduce((s, d) => s + d, 0)).toBe((names.length * peers) / 2);
  });
});
