/**
 * Every default of the gossip strategy, in one place. Each line says why.
 * The first six are libcluster's `Cluster.Strategy.Gossip` defaults, so a node of this
 * module configured like a Torus release behaves the same on the network.
 */
export const GOSSIP_DEFAULTS = Object.freeze({
  /** libcluster's gossip port; the link port (45893) is the next one. */
  port: 45892,
  /** Bind every interface: on Linux only a wildcard (or group) bind receives multicast. */
  ifAddr: '0.0.0.0',
  /** libcluster's group, from 233.252.0.0/24 (MCAST-TEST-NET), unused by real services. */
  multicastAddr: '233.252.1.32',
  /** Limited broadcast, used when `broadcastOnly` is set and no address is given. */
  broadcastAddr: '255.255.255.255',
  /** TTL 1: packets never cross a router, discovery stays on the local subnet. */
  multicastTtl: 1,
  /** Multicast unless asked otherwise; broadcast is for networks that drop IGMP. */
  broadcastOnly: false,
  /** libcluster sends every `:rand.uniform(5_000)` ms; this is the upper bound. */
  heartbeatMaxMs: 5000,
  /** Lower bound of the jittered interval as a share of `heartbeatMaxMs` (1 s by default). */
  heartbeatFloorRatio: 0.2,
  /**
   * Once every node heard is a member and nothing changed for a round, the interval is
   * multiplied by this factor (4: 4–20 s): a settled cluster gossips 4× less, while a
   * newcomer is still linked at once (everyone answers its first heartbeat) and any change
   * — a new peer, a member lost — brings the pace back to 1–5 s.
   */
  settledSlowdownMax: 4,
  /**
   * A group of more than 15 nodes stretches every node's interval in proportion to its size
   * (RTCP's rule for multicast reports, RFC 3550 §6.2), so the group as a whole sends what 15
   * nodes would — about 5 heartbeats a second, each received by every node — instead of a rate
   * that grows with the group while each packet costs every member a wake-up: with 100 nodes
   * starting at once, unscaled heartbeats were about a third of all the packets handled until
   * the mesh formed. A newcomer is still answered at once by everyone who hears it.
   */
  groupScaleNodes: 15,
  /** A peer not heard for three of the slowest intervals is forgotten (unless it is a member). */
  expireAfterHeartbeats: 3,
  /** At most one immediate unicast answer per peer per second, so a chatty peer costs little. */
  replyMinIntervalMs: 1000,
  /**
   * A peer heard before that is not a member yet is answered again at most every 10 s: its
   * link is on the way, and our own heartbeats reach it anyway. Answering every heartbeat of
   * every non-member made a start-up of N nodes cost about N² answers a second (40,000/s with
   * 200 nodes in one process), which starved the handshakes they were meant to speed up.
   */
  nonMemberReplyIntervalMs: 10_000,
  /** Packets stamped further than ±30 s from our clock are replays (or a broken clock). */
  replayWindowMs: 30_000,
  /** Nonces remembered for the replay window; about 8k heartbeats per 30 s is a big cluster. */
  replayCacheEntries: 8192,
  /** Socket receive buffer asked for (the OS may cap it): room for a burst of ~400 answers. */
  receiveBufferBytes: 1024 * 1024,
  /** First reopen delay after the socket failed; doubles per failure. */
  openRetryBaseMs: 1000,
  /** Reopen delay cap: a fixed port or interface is picked up within 30 s. */
  openRetryMaxMs: 30_000,
  /**
   * One warning a minute per source address for packets that fail authentication: a key
   * mismatch (or a second cluster on the group) is visible at the default level, a flood
   * or a neighbour cluster costs one line a minute per sender.
   */
  authWarnIntervalMs: 60_000,
  /** Source addresses tracked for that warning; the oldest is forgotten past this. */
  authWarnAddresses: 256,
  /** One debug line per drop reason per 10 s: a flood cannot flood the log. */
  dropLogIntervalMs: 10_000,
  /** A persisting socket failure is logged again at most every 5 minutes. */
  repeatFailureLogMs: 300_000,
});
