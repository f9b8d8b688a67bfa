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

/**
 * What a node knows about reachability, merged from every member's report: its members (self
 * included, `up` and `unreachable` alike) and, per member, how many of those members report it
 * unreachable.
 */
export interface MergedView<T extends NodeIdentity = NodeIdentity> {
  readonly members: readonly T[];
  /** Members of `members` (self included) whose latest report marks `member` unreachable. */
  unreachableBy(member: T): number;
}

/**
 * The leader of a merged view: among its members, the one the fewest members report
 * unreachable, and of those the oldest (`pickLeader`'s order).
 *
 * Why this rule. Every node holds the same reports once they have spread (each node sends its
 * own on change; a member relays a report to the members it marks, who cannot get it
 * directly), so every node that sees the same members picks the same leader — under one-way
 * loss between h1 and h2, h1 and h2 mark each other, h3 and h4 mark nobody, and all four agree
 * on the oldest of h3 and h4. With no reports at all it is the oldest member, as before. A
 * member marked by anyone is never preferred over one marked by no one, so in the steady state
 * the leader has a live link to every member that reports; a node that cannot reach the
 * leader knows it is not the leader. Only when every member is marked by someone (two broken
 * pairs in four nodes) is the least-marked oldest chosen, so that a connected view always has
 * a leader. Akka's leader rule is the same without that fallback (a member unreachable by any
 * observer cannot lead); a split into sides that see nothing of each other still has a leader
 * per side, which is what a quorum guard is for.
 */
export function leaderOf<T extends NodeIdentity>(view: MergedView<T>): T | null {
  let best: T | null = null;
  let bestMarks = Number.POSITIVE_INFINITY;
  for (const m of view.members) {
    const marks = view.unreachableBy(m);
    if (best === null || marks < bestMarks || (marks === bestMarks && compareAge(m, best) < 0)) {
      best = m;
      bestMarks = marks;
    }
  }
  return best;
}

export { compareAge };
