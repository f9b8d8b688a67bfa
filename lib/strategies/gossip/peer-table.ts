import type { DiscoveredEndpoint } from '../strategy.interface.js';

/** A peer heard through gossip. */
export interface HeardPeer {
  readonly name: string;
  readonly incarnation: string;
  readonly startedAt: number;
  /** Where the peer accepts links. */
  readonly host: string;
  readonly port: number;
  /** Our clock when the latest heartbeat of this incarnation arrived. */
  lastHeardAt: number;
}

/** What hearing a heartbeat changed. */
export type HearOutcome =
  /** A name we did not know. */
  | 'new'
  /** A newer incarnation of a known name (a restart), or a known one at a new endpoint. */
  | 'changed'
  /** Nothing but the time it was last heard. */
  | 'refreshed'
  /** An older incarnation than the one we know: ignored. */
  | 'older';

/**
 * The peers one gossip strategy has heard, by name: the latest incarnation and endpoint of
 * each. A newer incarnation (later `startedAt`; ties broken by incarnation id) replaces an
 * older one; an older one never replaces a newer one.
 */
export class PeerTable {
  private readonly peers = new Map<string, HeardPeer>();

  get size(): number {
    return this.peers.size;
  }

  has(name: string): boolean {
    return this.peers.has(name);
  }

  /** Records a heartbeat and says what changed. */
  hear(peer: Omit<HeardPeer, 'lastHeardAt'>, now: number): HearOutcome {
    const known = this.peers.get(peer.name);
    if (!known) {
      this.peers.set(peer.name, { ...peer, lastHeardAt: now });
      return 'new';
    }
    if (known.incarnation === peer.incarnation) {
      known.lastHeardAt = Math.max(known.lastHeardAt, now);
      if (known.host === peer.host && known.port === peer.port) return 'refreshed';
      this.peers.set(peer.name, { ...peer, lastHeardAt: now });
      return 'changed';
    }
    if (!isNewer(peer, known)) return 'older';
    this.peers.set(peer.name, { ...peer, lastHeardAt: now });
    return 'changed';
  }

  /**
   * Forgets peers not heard since `now - expireMs`, except those `keep` names (current
   * members: a live link is never dropped because multicast packets were lost).
   * Returns the forgotten peers.
   */
  expire(now: number, expireMs: number, keep: (name: string) => boolean): HeardPeer[] {
    const gone: HeardPeer[] = [];
    for (const peer of this.peers.values()) {
      if (now - peer.lastHeardAt > expireMs && !keep(peer.name)) gone.push(peer);
    }
    for (const peer of gone) this.peers.delete(peer.name);
    return gone;
  }

  /** The full discovered set, sorted by name. */
  endpoints(): DiscoveredEndpoint[] {
    return [...this.peers.values()]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((p) => ({ host: p.host, port: p.port, name: p.name, incarnation: p.incarnation }));
  }
}

function isNewer(candidate: Omit<HeardPeer, 'lastHeardAt'>, known: HeardPeer): boolean {
  if (candidate.startedAt !== known.startedAt) return candidate.startedAt > known.startedAt;
  return candidate.incarnation > known.incarnation;
}
