/**
 * Frame types of the link protocol. One byte on the wire.
 *
 * | range   | owner                                   |
 * |---------|-----------------------------------------|
 * | 0–15    | transport (handshake, heartbeat, leave) |
 * | 16–31   | membership                              |
 * | 32–47   | messaging                               |
 * | 48–255  | reserved                                |
 */
export const FrameType = {
  /** Handshake: identity and nonce (dialer), plus proof (listener). JSON payload. */
  HELLO: 1,
  /** Handshake: the dialer's proof. JSON payload. */
  AUTH: 2,
  /** Handshake: the listener accepted the dialer; the link is up. Empty payload. */
  WELCOME: 3,
  /**
   * Liveness signal on an idle link. Payload: one flags byte, bit 0 = the sender asks for an
   * answer (a probe); empty from older nodes (read as a probe).
   */
  HEARTBEAT: 4,
  /** Graceful leave: the sender is shutting down and closes the link next. Empty payload. */
  LEAVE: 5,
  /** Handshake refused (cookie, version, busy, malformed). JSON payload `{ reason }`. */
  REFUSE: 6,
  /**
   * Membership: members the sender knows (peer exchange), JSON `{ b: buckets covered, p: members }`
   * (a plain list from older nodes).
   */
  PEERS: 16,
  /**
   * Membership: of two links to one peer (both dialled at once), the sender keeps the one this
   * frame travels on; the receiver may end its spare. Empty payload.
   */
  LINK_CHOSEN: 17,
  /**
   * Membership: a digest of the sender's member set (a hash per bucket of names); the receiver
   * answers with `PEERS_HAVE` for the buckets that differ. Binary payload.
   */
  PEERS_DIGEST: 18,
  /**
   * Membership: the sender's reachability report, or one it relays (the members its observer
   * lost while others still reach them, and answers about members others lost). JSON; sent
   * only when a report changes. See `lib/membership/reachability.ts`.
   */
  REACHABILITY: 19,
  /**
   * Membership: the entry hashes of the sender's members in the buckets where two digests
   * differ; the receiver sends `PEERS` with the members the sender lacks (and, unless this is
   * a reply, its own `PEERS_HAVE` for those buckets). Binary payload.
   */
  PEERS_HAVE: 20,
  /**
   * Membership: the sender's leadership state (its fencing term, the leader that took it, and
   * whether the sender follows that leader now), JSON `{ t, o, oi, f }`. Sent by a leader to
   * every member when it takes a term, by a follower to its leader, and by both ends of a new
   * link.
   */
  LEADERSHIP: 24,
} as const;

/** First and last frame type of the membership range. */
export const MEMBERSHIP_FRAME_TYPES = { first: 16, last: 31 } as const;
/** First and last frame type of the messaging range. */
export const MESSAGING_FRAME_TYPES = { first: 32, last: 47 } as const;
/** Highest frame type reserved for the transport itself. */
export const LAST_TRANSPORT_FRAME_TYPE = 15;

/** Frame types allowed before a connection is authenticated. */
export const HANDSHAKE_FRAME_TYPES: ReadonlySet<number> = new Set([
  FrameType.HELLO,
  FrameType.AUTH,
  FrameType.WELCOME,
  FrameType.REFUSE,
]);

/** True for types 0–15, which the transport handles itself and never emits. */
export function isTransportFrameType(type: number): boolean {
  return type >= 0 && type <= LAST_TRANSPORT_FRAME_TYPE;
}

/** Readable name of a frame type, for logs. */
export function frameTypeName(type: number): string {
  for (const [name, value] of Object.entries(FrameType)) {
    if (value === type) return name;
  }
  return `type ${type}`;
}
