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

/** Negative when `a` is older than `b` (leads before it). */
export function compareAge(a: NodeIdentity, b: NodeIdentity): number {
  if (a.startedAt !== b.startedAt) return a.startedAt - b.startedAt;
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  return a.incarnation < b.incarnation ? -1 : a.incarnation > b.incarnation ? 1 : 0;
}
