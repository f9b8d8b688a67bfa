import type { Member } from '../interfaces/member.interface.js';

/**
 * The split-brain guard (`CLUSTER_QUORUM`): a fixed member count (Akka's `static-quorum`), or
 * `'majority'` of the largest membership seen (Akka's `keep-majority`). Unset: no guard.
 */
export type QuorumSetting = number | 'majority';

/** What `ClusterService.quorum` reports. */
export interface QuorumState {
  /** Members this side needs to have a leader; `null` without a guard. */
  readonly required: number | null;
  /** Members in this node's view that it does not see as unreachable, self included. */
  readonly reachable: number;
  /** True when this side may have a leader (always true without a guard). */
  readonly ok: boolean;
}

/** Largest `CLUSTER_QUORUM` accepted: no cluster of this module is bigger. */
export const MAX_STATIC_QUORUM = 10_000;

/**
 * True for a member this node can count on: in the view and not seen as unreachable. Members
 * have no reachability state until shared reachability exists; then a member another member
 * reports as unreachable from here is not counted.
 */
export function isReachable(member: Member): boolean {
  return (member as { readonly state?: string }).state !== 'unreachable';
}

/**
 * The reference membership of `'majority'`: the largest set of member names seen.
 *
 * - The view grows past it: the view becomes the reference (at once).
 * - A member leaves gracefully (shutdown, or discovery dropped it): it leaves the reference,
 *   so a scale-down keeps quorum.
 * - A member goes down: it stays in the reference — that is the guard: a side cut off from
 *   the majority cannot tell a crash from a partition, so it stays without a leader.
 * - The side that holds quorum with an unchanged view for the stable window rebases: the view
 *   becomes the reference, so members that crashed for good stop counting. A side without
 *   quorum never rebases, so a minority never talks itself into a majority by waiting.
 *
 * A tie (exactly half of an even reference) goes to the side holding the reference's
 * lowest-ordered name (the same name on every node that saw the same reference).
 */
export class MajorityReference {
  private names = new Set<string>();

  constructor(selfName: string) {
    this.names.add(selfName);
  }

  get size(): number {
    return this.names.size;
  }

  /** The reference's lowest-ordered name (the tie-breaker). */
  lowest(): string {
    let low: string | undefined;
    for (const n of this.names) if (low === undefined || n < low) low = n;
    return low!;
  }

  /** Takes the view when it is larger than the reference; true when the reference changed. */
  grow(view: readonly string[]): boolean {
    if (view.length <= this.names.size) return false;
    this.names = new Set(view);
    return true;
  }

  /** A member left gracefully: it no longer counts (the reference keeps at least one name). */
  left(name: string): boolean {
    if (this.names.size <= 1 || !this.names.has(name)) return false;
    return this.names.delete(name);
  }

  /** The view, held stable with quorum for the window, becomes the reference. */
  rebase(view: readonly string[]): boolean {
    if (view.length === 0) return false;
    const same = view.length === this.names.size && view.every((n) => this.names.has(n));
    if (same) return false;
    this.names = new Set(view);
    return true;
  }

  /** The quorum state of a side whose reachable members are `view`. */
  evaluate(view: readonly string[]): QuorumState {
    const size = this.names.size;
    const reachable = view.length;
    const half = size / 2;
    if (Number.isInteger(half) && view.includes(this.lowest())) {
      return { required: half, reachable, ok: reachable >= half };
    }
    const required = Math.floor(size / 2) + 1;
    return { required, reachable, ok: reachable >= required };
  }
}

/** The state of a static quorum `required` for `reachable` members. */
export function staticQuorum(required: number, reachable: number): QuorumState {
  return { required, reachable, ok: reachable >= required };
}

/** The state without a guard. */
export function noQuorum(reachable: number): QuorumState {
  return { required: null, reachable, ok: true };
}

export function sameQuorum(a: QuorumState, b: QuorumState): boolean {
  return a.required === b.required && a.reachable === b.reachable && a.ok === b.ok;
}
