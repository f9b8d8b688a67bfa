import { compareAge } from '../identity/identity.js';
import type { NodeIdentity } from '../interfaces/member.interface.js';

/**
 * The leader is the oldest member: earliest `startedAt`, ties broken by name, then by
 * incarnation. Every node computes the same leader once membership has converged, with no
 * election traffic; a leader that leaves hands over to the next oldest.
 */
export function pickLeader<T extends NodeIdentity>(members: readonly T[]): T | null {
  let best: T | null = null;
  for (const m of members) {
    if (best === null || compareAge(m, best) < 0) best = m;
  }
  return best;
}

export { compareAge };
