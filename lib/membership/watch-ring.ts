/** FNV-1a, 32 bits: spreads names that differ in one character (`app@10.0.0.7`) over the ring. */
function ringKey(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Which members this node holds to the failure timeout: its `perSide` neighbours on either
 * side of a ring of the linked members (and itself) ordered by a hash of their names — Akka's
 * heartbeat ring (`monitored-by-nr-of-members`). Every member is watched by the `2 × perSide`
 * members around it, so a frozen or cut-off member is seen by some of them within the failure
 * timeout, whatever the cluster's size, while the idle cost per node stays constant instead of
 * growing with the number of members. The relation is symmetric (a watches b exactly when b
 * watches a, given the same view), and in a cluster of at most `2 × perSide + 1` members every
 * member watches every other.
 *
 * Any partition into two non-empty sides cuts the ring in at least two places, so each side
 * watches at least one member of the other: that member's loss is reported on its side, and
 * every node there then probes the links it does not watch (see `Membership`).
 */
export class WatchRing {
  /** Member names, self included, ordered by (key, name). */
  private readonly ring: string[] = [];
  private readonly keys = new Map<string, number>();
  private selfName: string;

  constructor(
    selfName: string,
    /** Neighbours watched on each side. */
    readonly perSide: number,
  ) {
    this.selfName = selfName;
    this.add(selfName);
  }

  get size(): number {
    return this.ring.length;
  }

  /** Renames this node on the ring. */
  setSelf(name: string): void {
    if (name === this.selfName) return;
    this.delete(this.selfName);
    this.selfName = name;
    this.add(name);
  }

  add(name: string): void {
    if (this.keys.has(name)) return;
    const key = ringKey(name);
    this.keys.set(name, key);
    this.ring.splice(this.position(key, name), 0, name);
  }

  delete(name: string): void {
    const key = this.keys.get(name);
    if (key === undefined || name === this.selfName) return;
    const at = this.position(key, name);
    if (this.ring[at] === name) this.ring.splice(at, 1);
    this.keys.delete(name);
  }

  /** True when every member is a neighbour (nothing is left unwatched). */
  get complete(): boolean {
    return this.ring.length - 1 <= 2 * this.perSide;
  }

  /** The watched members: up to `perSide` on each side of this node (all of them when `complete`). */
  watched(): Set<string> {
    const out = new Set<string>();
    const n = this.ring.length;
    if (this.complete) {
      for (const name of this.ring) if (name !== this.selfName) out.add(name);
      return out;
    }
    const at = this.position(this.keys.get(this.selfName)!, this.selfName);
    for (let d = 1; d <= this.perSide; d++) {
      out.add(this.ring[(at + d) % n]);
      out.add(this.ring[(at - d + n) % n]);
    }
    return out;
  }

  /** Index of (key, name) in the ring, or where it would be inserted. */
  private position(key: number, name: string): number {
    let lo = 0;
    let hi = this.ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const other = this.ring[mid];
      const k = this.keys.get(other)!;
      if (k < key || (k === key && other < name)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
