import { Logger, type LoggerService } from '@nestjs/common';
import { BehaviorSubject, Subject, defer, filter, map, type Observable } from 'rxjs';
import { MemberUnreachableError } from '../errors/member-unreachable.error.js';
import { NotAMemberError } from '../errors/not-a-member.error.js';
import type { AdmissionRefusal, LinkRefusedError } from '../errors/link-refused.error.js';
import { parseEndpoint } from '../identity/endpoint.js';
import { compareAge, describeIdentity, dialsFirst, sameProcess } from '../identity/identity.js';
import type {
  ClusterEvent,
  DownReason,
  LeaveReason,
  Member,
  NodeIdentity,
} from '../interfaces/member.interface.js';
import { RateLimitedLogger } from '../logging/rate-limited-logger.js';
import type { PeerChannel } from '../messaging/peer-channel.interface.js';
import { systemClock, type Clock, type TimerHandle } from '../runtime/clock.js';
import { systemRandom, type Random } from '../runtime/random.js';
import type { DiscoveredEndpoint } from '../strategies/strategy.interface.js';
import { FrameType } from '../transport/frame-types.js';
import { leaderOf, pickLeader, type MergedView } from './leader.js';
import type {
  MemberLink,
  MemberLinkCloseReason,
  MemberLinkLeaveCause,
} from './member-link.interface.js';
import type { MembershipChange } from './membership-change.js';
import {
  DIGEST_BUCKETS,
  PeerDigest,
  bucketOf,
  decodeDigest,
  decodeHave,
  encodeHave,
  entryHash,
  MAX_HAVE_HASHES,
  type BucketHashes,
} from './peer-digest.js';
import {
  ReachabilityTable,
  decodeReachability,
  encodeReachability,
  markKey,
  sameAnswers,
  type ReachabilityAnswer,
  type ReachabilityRow,
} from './reachability.js';
import { WatchRing } from './watch-ring.js';

/**
 * Least time between two rounds of probes of every unwatched link (`suspectUnwatched`), ms: a
 * burst of reports during a start-up storm costs one round, not one per report.
 */
const SUSPECT_ALL_INTERVAL_MS = 2000;

interface Entry {
  member: Member;
  link: MemberLink;
  /**
   * The redundant link of two dialled at once, retired: kept open until the peer is seen using
   * `link` (any frame on it), so that neither end closes the connection the other still uses.
   */
  spare?: MemberLink;
  /** Digest bucket of the member's name. */
  readonly bucket: number;
  /** The member's entry hash (`entryHash`). */
  readonly hash: number;
}

/** An endpoint a member listed in peer exchange that was not a member here then. */
interface Listed {
  readonly endpoint: DiscoveredEndpoint;
  readonly bucket: number;
  /** Its entry hash, as the lister would compute it. */
  readonly hash: number;
}

/** A member whose link from this node failed while other members still reach it. */
interface Lost {
  /** The member, `state: 'unreachable'`. */
  readonly member: Member;
  readonly reason: DownReason;
  /**
   * True when it was already down here and came back only through a relayed report: if no
   * member vouches for it, it goes again without an event.
   */
  readonly relayed?: boolean;
  /** Since when no linked member vouches for it (clock time); undefined while one does. */
  unvouchedSince: number | undefined;
  /**
   * False until a linked member vouches for it. Until then it is in `members()` as unreachable
   * but no `unreachable` event has been published, so a member that is simply gone (every
   * linked member denies it within a round trip or two) is only ever `down`.
   */
  shown: boolean;
}

interface Remembered {
  readonly identity: NodeIdentity;
  readonly until: number;
}

/** Options of the member table. */
export interface MembershipOptions {
  readonly clock?: Clock;
  readonly logger?: LoggerService;
  /**
   * How long this node stays without a leader after learning that a newer process runs under
   * its name, ms; every further refusal renews it. @default 30000
   */
  readonly supersededHoldMs?: number;
  /** How long a node dropped by discovery is refused unless discovery lists it again, ms. @default 60000 */
  readonly dropHoldMs?: number;
  /** How long the newest incarnation of a departed name is remembered, ms. @default 600000 */
  readonly rememberMs?: number;
  /** Entries of each remembered-identity map at most. @default 4096 */
  readonly maxRemembered?: number;
  /**
   * How long after a link comes up the two nodes compare peer digests, ms. Meanwhile both
   * usually learn the same members from discovery, and then nothing but the digest is sent.
   * @default 1000
   */
  readonly exchangeDelayMs?: number;
  /**
   * Pace of the repeated exchanges, ms: each interval, one random member, and every member that
   * listed endpoints that are still not members here, compare digests again — so endpoints
   * learned from a member are kept while it still lists them, and forgotten when it no longer
   * does. @default 10000
   */
  readonly exchangeIntervalMs?: number;
  /**
   * How long a due exchange waits at most for membership to be quiet, ms: a start-up storm
   * that links members every few milliseconds is progress, and exchanges during it would ship
   * what discovery is delivering anyway. @default 30000
   */
  readonly exchangeQuietCapMs?: number;
  /** Endpoints listed by members, kept at most (all members together). @default 4096 */
  readonly maxListed?: number;
  /** Randomness seam (which member the repeated exchange picks). @default systemRandom */
  readonly random?: Random;
  /**
   * How long a member whose link failed stays `unreachable` with no linked member vouching for
   * it before it is `down`, ms (a member that every linked member denies is down at once; one
   * that some member vouches for stays unreachable as long as that lasts). @default 1000
   */
  readonly reachabilityWaitMs?: number;
  /**
   * While this node marks any member unreachable, it sends its report again to every member
   * this often, ms (reports are otherwise sent only when they change). @default 30000
   */
  readonly reachabilityRefreshMs?: number;
  /**
   * Members watched on each side of this node on the heartbeat ring (`WatchRing`): links to
   * them are held to the failure timeout, the others are probed at the slow pace until another
   * member reports a loss. A cluster of at most `2 × watchedPerSide + 1` members watches every
   * link. @default 8
   */
  readonly watchedPerSide?: number;
}

/** Most members a PEERS frame may list; more is treated as garbage. */
export const MAX_PEERS_PER_FRAME = 4096;
/** Members per PEERS frame this node sends (whole buckets; a larger exchange takes several). */
const PEERS_CHUNK = 512;
/** Digests sent at once when many exchanges are due, and the pause before the next batch, ms. */
const EXCHANGE_BATCH = 8;
const EXCHANGE_BATCH_GAP_MS = 50;

/**
 * The member table — the one owner of links. The transport hands it every admitted link,
 * inbound or outbound; it decides which link is a member's, publishes one typed stream of
 * changes (`changes`), keeps the leader, and exchanges peers (a new link learns the members
 * the peer knows, so the cluster becomes a full mesh — Erlang's transitive connect).
 *
 * Peer exchange is digest-first: a moment after a link comes up (once membership is quiet),
 * the node first in the pair's order sends a digest of its view (`PEERS_DIGEST`: a hash per
 * bucket of member names); the other answers with the entry hashes it has in the buckets that
 * differ (`PEERS_HAVE`); the first sends the members the other lacks (`PEERS`) and its own
 * hashes, and the other does the same. Equal views cost one small frame; a start-up storm, in
 * which discovery tells every node about every other, costs no member lists at all, and an
 * exchange otherwise costs what is new to each side (plus four bytes per member of the
 * differing buckets).
 *
 * Rules, the same on every node so that both ends of a link agree:
 * - Admission (in the handshake, once the peer proved the cookie — see `admit`): this very
 *   process is refused `self`; another process with this node's name `name-taken`; an
 *   incarnation older than one known for its name `superseded`; a node this node's discovery
 *   dropped `dropped`, until discovery lists it again.
 * - Two live links to one process (both dialled at once): keep the one dialled by the node
 *   that dials first (`dialsFirst`); the other is retired without events and without losing a frame.
 * - A link from a newer incarnation of a member's name replaces it (`leave` with reason
 *   `replaced`, then `join`).
 * - A node that learns that a newer process runs under its own name is *superseded*: it logs
 *   an error naming `NODE_NAME`, keeps serving alone, and has no leader (so runs no
 *   leader-only work) while that lasts.
 * - Shared reachability (see `reachability.ts`): a member whose link fails while other linked
 *   members still vouch for it (they have a live link to it) is not `down` but `unreachable`:
 *   it stays in `members()` with that state, messages to it fail at once with
 *   `MemberUnreachableError`, and this node's report marks it. It is `reachable` again when a
 *   link to it comes back, and `down` once no linked member vouches for it (every linked member
 *   denies it, or none vouches within `reachabilityWaitMs`).
 * - The leader is `leaderOf` the merged view (`view()`): the member the fewest members report
 *   unreachable, oldest first — with no reports, simply the oldest member. It is updated with
 *   the table, before the change is published;
 *   `members()` is current at once; `members$` emits once per turn of the event loop (after the
 *   changes of that turn, which `changes` reports one by one, in order).
 */
export class Membership implements PeerChannel {
  private readonly clock: Clock;
  private readonly logger: LoggerService;
  private readonly limited: RateLimitedLogger;
  private readonly table = new Map<string, Entry>();
  /** The heartbeat ring of the linked members, and the names watched at its last update. */
  private readonly ring: WatchRing;
  private watchedNames = new Set<string>();
  /** When `suspectUnwatched` last probed every unwatched link (monotonic ms). */
  private suspectedAllAt = Number.NEGATIVE_INFINITY;
  private reassessPending = false;
  private readonly changeSubject = new Subject<MembershipChange>();
  private readonly membersSubject: BehaviorSubject<Member[]>;
  private readonly leaderSubject: BehaviorSubject<Member | null>;
  private readonly frameHandlers = new Map<number, (from: string, payload: Buffer) => void>();
  /** The frames membership itself reads, by type; every other type goes to `frameHandlers`. */
  private readonly ownFrames = new Map<number, (link: MemberLink, payload: Buffer) => void>([
    [FrameType.PEERS, (link, payload) => this.receivePeers(link, payload)],
    [FrameType.PEERS_DIGEST, (link, payload) => this.receiveDigest(link, payload)],
    [FrameType.PEERS_HAVE, (link, payload) => this.receiveHave(link, payload)],
    [FrameType.REACHABILITY, (link, payload) => this.receiveReport(link, payload)],
    // Its arrival on the winning link has already ended the spare (onLinkFrame); no payload.
    [FrameType.LINK_CHOSEN, () => undefined],
  ]);
  private readonly goneHandlers = new Set<(name: string, unreachable?: boolean) => void>();
  /** Newest incarnation seen per name (members and recent members). */
  private readonly newest = new Map<string, Remembered>();
  /** Processes dropped because discovery no longer lists them, by name. */
  private readonly dropped = new Map<string, Remembered>();
  private readonly supersededHoldMs: number;
  private readonly dropHoldMs: number;
  private readonly rememberMs: number;
  private readonly maxRemembered: number;
  private readonly exchangeDelayMs: number;
  private readonly exchangeIntervalMs: number;
  private readonly exchangeQuietCapMs: number;
  /** Clock time before which the next batch of due digests is not sent (they go out paced). */
  private nextExchangeAt = Number.NEGATIVE_INFINITY;
  private readonly maxListed: number;
  private readonly random: Random;
  /** Advertised endpoint → member name (names, in join order, when several advertise it). */
  private readonly byEndpoint = new Map<string, string | string[]>();
  /** Members per digest bucket. */
  private readonly inBucket: Set<Entry>[] = Array.from({ length: DIGEST_BUCKETS }, () => new Set());
  private readonly digest = new PeerDigest();
  /** Digest exchanges waiting, member name → due time (insertion order is due order). */
  private readonly exchangeDue = new Map<string, number>();
  private exchangeTimer: TimerHandle | undefined;
  /** Clock time of the last join, leave or down (digest exchanges wait for a quiet moment). */
  private lastChangeAt = Number.NEGATIVE_INFINITY;
  private refreshTimer: TimerHandle | undefined;
  /** Endpoints each member listed that were not members here then, by member and name. */
  private readonly listed = new Map<string, Map<string, Listed>>();
  private listedCount = 0;
  /** Per digest bucket: entry hash of a listed endpoint → how many members list it. */
  private readonly listedHashes: Map<number, number>[] = Array.from(
    { length: DIGEST_BUCKETS },
    () => new Map<number, number>(),
  );
  /** Members sorted by name, self included; rebuilt on demand after a change. */
  private snapshot: Member[] | undefined;
  private flushPending = false;
  /** The oldest member, self included (the leader unless superseded). */
  private oldest: Member;
  private selfMember: Member;
  private supersededBy: NodeIdentity | undefined;
  private supersededTimer: TimerHandle | undefined;
  private closed = false;
  /** Members unreachable from this node while others reach them, by name. */
  private readonly lost = new Map<string, Lost>();
  /** Reachability reports held: this node's own and its members'. */
  private readonly reach = new ReachabilityTable();
  /** Version of this node's own report (0: it never had one). */
  private reportVersion = 0;
  private reportSent = 0;
  private reportPending = false;
  private ownAnswers: ReachabilityAnswer[] = [];
  /** Per member (`markKey`), how many members in the view report it unreachable. */
  private marks = new Map<string, number>();
  private reachTimer: TimerHandle | undefined;
  private reportRefreshTimer: TimerHandle | undefined;
  private readonly reachabilityWaitMs: number;
  private readonly reachabilityRefreshMs: number;
  /** While set, `changed()` leaves the leader alone (a change in several steps). */
  private holdLeader = false;

  /** Every change, in order: join, leave, down, learned peers. */
  readonly changes: Observable<MembershipChange> = this.changeSubject.asObservable();
  /** Join / leave / down, as the app sees them. */
  readonly events$: Observable<ClusterEvent> = this.changes.pipe(
    filter((c): c is Exclude<MembershipChange, { type: 'learned' }> => c.type !== 'learned'),
    map((c): ClusterEvent => (c.type === 'join' ? { ...c, reason: 'linked' } : c)),
  );

  constructor(self: NodeIdentity, options: MembershipOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? new Logger(Membership.name);
    this.limited = new RateLimitedLogger(this.logger, 60_000, 1024, () => this.clock.now());
    this.supersededHoldMs = options.supersededHoldMs ?? 30_000;
    this.dropHoldMs = options.dropHoldMs ?? 60_000;
    this.rememberMs = options.rememberMs ?? 600_000;
    this.maxRemembered = options.maxRemembered ?? 4096;
    this.exchangeDelayMs = options.exchangeDelayMs ?? 1000;
    this.exchangeIntervalMs = options.exchangeIntervalMs ?? 10_000;
    this.exchangeQuietCapMs = options.exchangeQuietCapMs ?? 30_000;
    this.maxListed = options.maxListed ?? 4096;
    this.random = options.random ?? systemRandom;
    this.reachabilityWaitMs = options.reachabilityWaitMs ?? 1000;
    this.reachabilityRefreshMs = options.reachabilityRefreshMs ?? 30_000;
    this.selfMember = toMember(self, true, this.clock.wallNow());
    this.ring = new WatchRing(self.name, options.watchedPerSide ?? 8);
    this.oldest = this.selfMember;
    this.digest.add(this.selfMember);
    this.leaderSubject = new BehaviorSubject<Member | null>(this.selfMember);
    this.membersSubject = new BehaviorSubject<Member[]>([this.selfMember]);
  }

  get selfName(): string {
    return this.selfMember.name;
  }

  get self(): Member {
    return this.selfMember;
  }

  /** True while a newer process is known to run under this node's name. */
  get superseded(): boolean {
    return this.supersededBy !== undefined;
  }

  /** Updates the local identity (the endpoint is known once the listener is bound). */
  setSelf(self: NodeIdentity): void {
    this.digest.remove(this.selfMember);
    this.selfMember = toMember(self, true, this.selfMember.joinedAt);
    this.ring.setSelf(self.name);
    this.digest.add(this.selfMember);
    this.oldest = pickLeader([this.selfMember, ...this.remoteMembers()])!;
    this.changed();
  }

  /** The members (see `members()`): the current list at subscription, then once per turn with changes. */
  get members$(): Observable<Member[]> {
    return defer(() => {
      this.sync();
      return this.membersSubject;
    });
  }

  get leader$(): Observable<Member | null> {
    return this.leaderSubject.asObservable();
  }

  /**
   * Members sorted by name, self included: those with a live link (`state: 'up'`) and those
   * this node lost while others still reach them (`state: 'unreachable'`).
   */
  members(): Member[] {
    this.snapshot ??= [this.selfMember, ...this.remoteMembers(), ...this.lostMembers()].sort(
      (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
    );
    return this.snapshot;
  }

  /** Members this node has a live link to, plus itself. */
  reachableCount(): number {
    return 1 + this.table.size;
  }

  /** Names of the members unreachable from this node (in `members()`, not in `memberNames()`). */
  unreachableNames(): string[] {
    return this.lostMembers().map((m) => m.name);
  }

  /**
   * The merged view the leader is chosen from (`leaderOf`): `members()`, and per member how
   * many members (self included, unreachable ones too) report it unreachable.
   */
  view(): MergedView<Member> {
    return {
      members: this.members(),
      unreachableBy: (m) => this.marks.get(markKey(m)) ?? 0,
    };
  }

  leader(): Member | null {
    return this.leaderSubject.value;
  }

  has(name: string): boolean {
    return this.table.has(name);
  }

  /** The remote member named `name`, if any. */
  member(name: string): Member | undefined {
    return this.table.get(name)?.member;
  }

  /** The remote member whose advertised endpoint is `endpoint`, if any. */
  memberAt(endpoint: string): Member | undefined {
    const at = this.byEndpoint.get(endpoint);
    const name = Array.isArray(at) ? at[0] : at;
    return name === undefined ? undefined : this.table.get(name)?.member;
  }

  memberNames(): string[] {
    return [...this.table.keys()];
  }

  /** Sizes of the internal maps (for bounded-state checks). */
  stateSize(): {
    members: number;
    remembered: number;
    dropped: number;
    listed: number;
    exchanges: number;
    unreachable: number;
    reports: number;
  } {
    return {
      unreachable: this.lost.size,
      reports: this.reach.size,
      members: this.table.size,
      remembered: this.newest.size,
      dropped: this.dropped.size,
      listed: this.listedCount,
      exchanges: this.exchangeDue.size,
    };
  }

  /**
   * The admission rule, run by the transport in every handshake once the peer has proven the
   * cookie: undefined admits, a reason refuses (the peer's dial fails with it).
   */
  admit(peer: NodeIdentity): AdmissionRefusal | undefined {
    const self = this.selfMember;
    if (peer.name === self.name) {
      if (peer.incarnation === self.incarnation) return 'self';
      this.nameClash(peer, peer.endpoint || 'a link');
      return 'name-taken';
    }
    const existing = this.table.get(peer.name);
    if (existing && !sameProcess(existing.member, peer) && compareAge(peer, existing.member) < 0)
      return 'superseded';
    const known = this.recall(this.newest, peer.name);
    if (known && !sameProcess(known, peer) && compareAge(peer, known) < 0) return 'superseded';
    const dropped = this.recall(this.dropped, peer.name);
    if (dropped && sameProcess(dropped, peer)) return 'dropped';
    return undefined;
  }

  /** Discovery lists the node at `endpoint` again: it is admitted again. */
  readmit(endpoint: string): void {
    for (const [name, entry] of this.dropped) {
      if (entry.identity.endpoint === endpoint) this.dropped.delete(name);
    }
  }

  /**
   * A handshake ended in a refusal (the transport's `'refused'`). Refusals are logged once a
   * minute per peer address and reason; being told `superseded`, or meeting a newer process
   * with this node's name, makes this node superseded.
   */
  noteRefusal(refusal: LinkRefusedError): void {
    if (this.closed) return;
    const { peer, reason, by, address } = refusal;
    if (reason === 'self') return;
    if (by === 'remote' && reason === 'superseded') {
      this.becomeSuperseded(
        undefined,
        `${peer.name} at ${address} knows a newer process named ${this.selfMember.name}`,
      );
      return;
    }
    if (reason === 'name-taken') {
      this.nameClash(peer, address);
      return;
    }
    // Keyed by the peer's advertised endpoint: an inbound address changes port on every dial.
    const key = `refused:${reason}:${peer.endpoint || address}`;
    if (by === 'local') {
      this.limited.warn(
        key,
        reason === 'superseded'
          ? `refused a link with ${describeIdentity(peer)} at ${address}: a newer process named ${peer.name} is known — the old process must stop, or NODE_NAME must be unique per process`
          : `refused a link with ${describeIdentity(peer)} at ${address}: this node's discovery no longer lists it`,
      );
    } else {
      this.limited.write(
        'log',
        key,
        `${peer.name} at ${address} does not take this node (${reason}); waiting until its discovery lists this node again`,
      );
    }
  }

  /**
   * Another process claims this node's name (gossip heard it, or a handshake met it). Logged
   * as an error naming `NODE_NAME`; when that process is the newer one, this node is superseded.
   */
  nameClash(other: NodeIdentity, where: string): void {
    if (this.closed || sameProcess(other, this.selfMember)) return;
    if (compareAge(this.selfMember, other) < 0) {
      this.becomeSuperseded(
        other,
        `${describeIdentity(other)} (${where}) runs under this node's name`,
      );
    } else {
      this.limited.error(
        `name-clash:${other.incarnation}`,
        `another process runs under this node's name ${this.selfMember.name}: ${describeIdentity(other)} (${where}) — give every process its own NODE_NAME (or APP_NAME and host); this node, the newer one, keeps its membership`,
      );
    }
  }

  /**
   * Takes an admitted link (inbound or outbound) and decides whether it becomes the member's
   * link. The rules are re-applied: the table may have changed while the handshake ran.
   */
  addLink(link: MemberLink): void {
    const peer = link.peer;
    if (this.closed) {
      link.close('this node is leaving');
      return;
    }
    if (peer.name === this.selfMember.name) {
      link.close('the peer has this node name');
      return;
    }
    const existing = this.table.get(peer.name);
    if (existing) {
      if (sameProcess(existing.member, peer)) {
        this.watch(link);
        existing.spare?.end();
        if (existing.link.closed || this.preferred(link, existing.link)) {
          existing.spare = existing.link;
          existing.link = link;
          link.watch(this.watchedNames.has(peer.name));
        } else {
          existing.spare = link;
        }
        existing.spare.retire();
        existing.link.send(FrameType.LINK_CHOSEN, Buffer.alloc(0));
        return;
      }
      if (compareAge(peer, existing.member) < 0) {
        link.close('an incarnation that started later is a member');
        return;
      }
      this.remove(peer.name);
      existing.link.close('replaced by a newer incarnation');
      existing.spare?.close('replaced by a newer incarnation');
      this.emitGone(existing.member, 'leave', 'replaced');
    }

    const lost = this.lost.get(peer.name);
    if (lost && sameProcess(lost.member, peer)) {
      // Reachable again: the same member, back to `up`, with no join.
      const member = toMember(peer, false, lost.member.joinedAt);
      this.holdLeader = true;
      this.lost.delete(peer.name);
      this.insert({ member, link, bucket: bucketOf(member.name), hash: entryHash(member) });
      this.holdLeader = false;
      this.watch(link);
      this.reassess(true);
      this.logger.log(`${member.name} is reachable again (${member.address}, ${link.direction})`);
      this.lastChangeAt = this.clock.now();
      this.changeSubject.next({
        type: 'reachable',
        member,
        at: this.clock.wallNow(),
        reason: 'linked',
      });
      this.sendReportsTo(link);
      if (dialsFirst(this.selfMember.name, member.name)) this.scheduleExchange(member.name);
      return;
    }
    if (lost) {
      if (compareAge(peer, lost.member) < 0) {
        link.close('an incarnation that started later is a member');
        return;
      }
      this.lost.delete(peer.name);
      this.reach.delete(peer.name);
      this.reassess(true);
      this.emitGone(lost.member, 'leave', 'replaced');
    }

    const member = toMember(peer, false, this.clock.wallNow());
    this.insert({ member, link, bucket: bucketOf(member.name), hash: entryHash(member) });
    this.remember(this.newest, peer);
    this.watch(link);
    this.reassess();
    this.logger.log(`${member.name} joined (${member.address}, ${link.direction})`);
    this.lastChangeAt = this.clock.now();
    this.changeSubject.next({ type: 'join', member, at: member.joinedAt });
    this.sendReportsTo(link);
    // One side starts the digest exchange; the answer carries the other direction.
    if (dialsFirst(this.selfMember.name, member.name)) this.scheduleExchange(member.name);
    this.startRefresh();
  }

  /**
   * Discovery no longer lists the member at `endpoint`: tells it so (LEAVE with cause
   * `discovery`, so both ends record a `leave`), closes the link, and refuses that process
   * until discovery lists it again. Only the member advertising exactly that endpoint (and,
   * when given, with that name) is affected. Returns true when a member was dropped.
   */
  drop(endpoint: string, name?: string): boolean {
    const member = this.memberAt(endpoint);
    if (!member || (name !== undefined && member.name !== name)) {
      for (const l of this.lost.values()) {
        if (l.member.endpoint !== endpoint || (name !== undefined && l.member.name !== name))
          continue;
        this.lost.delete(l.member.name);
        this.remember(this.dropped, l.member);
        this.reassess(true);
        this.emitGone(l.member, 'leave', 'discovery');
        return true;
      }
      return false;
    }
    const entry = this.remove(member.name)!;
    this.remember(this.dropped, member);
    entry.spare?.close('dropped by discovery');
    void entry.link.leave('discovery');
    this.reassess();
    this.emitGone(member, 'leave', 'discovery');
    return true;
  }

  sendFrame(node: string, type: number, payload: Buffer): boolean {
    const entry = this.table.get(node);
    if (!entry && this.lost.has(node)) throw new MemberUnreachableError(node);
    // A link that is closing is as good as gone: report it as such, not as backpressure.
    if (!entry || entry.link.closed) throw new NotAMemberError(node);
    return entry.link.send(type, payload);
  }

  onFrame(type: number, handler: (from: string, payload: Buffer) => void): () => void {
    this.frameHandlers.set(type, handler);
    return () => {
      if (this.frameHandlers.get(type) === handler) this.frameHandlers.delete(type);
    };
  }

  onMemberGone(handler: (name: string, unreachable?: boolean) => void): () => void {
    this.goneHandlers.add(handler);
    return () => this.goneHandlers.delete(handler);
  }

  /**
   * Graceful leave: tells every peer, waits (bounded) for the frames to flush, and completes
   * the observables — here rather than at close, so that streams built on them (SSE
   * responses) end before the HTTP server waits for its connections to close.
   */
  async leave(): Promise<void> {
    const entries = [...this.table.values()];
    this.closed = true;
    this.table.clear();
    this.lost.clear();
    this.byEndpoint.clear();
    for (const set of this.inBucket) set.clear();
    for (const e of entries) e.spare?.close('this node is leaving');
    await Promise.allSettled(entries.map((e) => e.link.leave('shutdown')));
    this.complete();
  }

  /** Closes every link and completes the observables. */
  close(): void {
    this.closed = true;
    for (const entry of this.table.values()) {
      entry.spare?.close('this node is closing');
      entry.link.close('this node is closing');
    }
    this.table.clear();
    this.lost.clear();
    this.byEndpoint.clear();
    for (const set of this.inBucket) set.clear();
    this.complete();
    this.goneHandlers.clear();
    this.frameHandlers.clear();
  }

  private complete(): void {
    this.clock.clearTimeout(this.supersededTimer);
    this.clock.clearTimeout(this.exchangeTimer);
    this.clock.clearTimeout(this.refreshTimer);
    this.clock.clearTimeout(this.reachTimer);
    this.clock.clearTimeout(this.reportRefreshTimer);
    this.reach.clear();
    this.exchangeDue.clear();
    this.listed.clear();
    for (const hashes of this.listedHashes) hashes.clear();
    this.listedCount = 0;
    this.changeSubject.complete();
    this.membersSubject.complete();
    this.leaderSubject.complete();
  }

  private becomeSuperseded(by: NodeIdentity | undefined, why: string): void {
    const first = this.supersededBy === undefined;
    this.supersededBy = by ?? this.supersededBy ?? this.selfMember;
    this.limited.error(
      'superseded',
      `NODE_NAME ${this.selfMember.name} is taken by a newer process: ${why}. This process keeps serving alone and runs no leader-only work. If both processes are meant to run (several instances on one host), give each its own NODE_NAME (or APP_NAME); if this one was replaced by a restart or deploy, stop it`,
    );
    this.clock.clearTimeout(this.supersededTimer);
    this.supersededTimer = this.clock.setTimeout(() => {
      this.supersededBy = undefined;
      this.supersededTimer = undefined;
      if (!this.closed) this.changed();
    }, this.supersededHoldMs);
    if (first) this.changed();
  }

  private preferred(candidate: MemberLink, current: MemberLink): boolean {
    // The link dialled by the node that dials first (the pair's order) wins on both ends.
    const selfFirst = dialsFirst(this.selfMember.name, candidate.peer.name);
    const wanted: MemberLink['direction'] = selfFirst ? 'outbound' : 'inbound';
    // Same direction: the peer dialled again, so it considers the old link dead.
    if (candidate.direction === current.direction) return true;
    return candidate.direction === wanted;
  }

  private watch(link: MemberLink): void {
    link.on('frame', (type, payload) => this.onLinkFrame(link, type, payload));
    link.on('close', (reason, cause) => this.onLinkClose(link, reason, cause));
  }

  private onLinkFrame(link: MemberLink, type: number, payload: Buffer): void {
    const entry = this.table.get(link.peer.name);
    // Frames from a retired duplicate of the member's link are the member's frames too.
    if (!entry || !sameProcess(entry.member, link.peer)) return;
    if (entry.spare && link === entry.link) {
      // The peer uses the winning link: the spare can go (what is in flight on it still arrives).
      entry.spare.end();
      entry.spare = undefined;
    }
    const own = this.ownFrames.get(type);
    if (own) {
      own(link, payload);
      return;
    }
    const handler = this.frameHandlers.get(type);
    if (!handler) {
      this.logger.debug?.(`no handler for frame type ${type} from ${link.peer.name}`);
      return;
    }
    try {
      handler(link.peer.name, payload);
    } catch (error) {
      this.logger.error(`frame handler for type ${type} failed: ${(error as Error).message}`);
    }
  }

  private onLinkClose(
    link: MemberLink,
    reason: MemberLinkCloseReason,
    cause?: MemberLinkLeaveCause,
  ): void {
    const entry = this.table.get(link.peer.name);
    if (!entry) return;
    if (entry.spare === link) {
      entry.spare = undefined;
      return;
    }
    if (entry.link !== link) return; // a replaced link
    if (entry.spare?.reinstate()) {
      // The winning link failed before the peer switched to it: the spare carries on.
      entry.link = entry.spare;
      entry.spare = undefined;
      entry.link.watch(this.watchedNames.has(entry.member.name));
      return;
    }
    entry.spare?.close('the member is gone');
    // Lost while other linked members may still reach it: unreachable until they say.
    // (A superseded node keeps serving alone: it only ever loses members.)
    const unreachable =
      reason !== 'leave' && this.table.size > 1 && !this.closed && !this.supersededBy;
    this.holdLeader = true;
    this.remove(link.peer.name);
    if (unreachable) {
      const member: Member = Object.freeze({ ...entry.member, state: 'unreachable' as const });
      this.lost.set(member.name, {
        member,
        reason: downReason(reason),
        unvouchedSince: undefined,
        shown: false,
      });
    }
    this.holdLeader = false;
    if (reason === 'heartbeat-timeout') this.suspectUnwatched();
    this.reassess(unreachable);
    if (unreachable) return; // `unreachable` once a member vouches for it, else `down`
    if (reason === 'leave')
      this.emitGone(entry.member, 'leave', cause === 'discovery' ? 'discovery' : 'shutdown');
    else this.emitGone(entry.member, 'down', downReason(reason));
  }

  private emitUnreachable(lost: Lost): void {
    const { member, reason } = lost;
    this.lastChangeAt = this.clock.now();
    this.logger.warn(
      `${member.name} is unreachable from this node (${reason}); other members still reach it`,
    );
    this.changeSubject.next({ type: 'unreachable', member, at: this.clock.wallNow(), reason });
    for (const handler of this.goneHandlers) {
      try {
        handler(member.name, true);
      } catch (error) {
        this.logger.error(`member-gone handler failed: ${(error as Error).message}`);
      }
    }
  }

  private emitGone(member: Member, type: 'leave' | 'down', reason: LeaveReason | DownReason): void {
    this.lastChangeAt = this.clock.now();
    const at = this.clock.wallNow();
    if (type === 'leave') {
      this.logger.log(`${member.name} left (${reason})`);
      this.changeSubject.next({ type: 'leave', member, at, reason: reason as LeaveReason });
    } else {
      this.logger.warn(`${member.name} is down (${reason})`);
      this.changeSubject.next({ type: 'down', member, at, reason: reason as DownReason });
    }
    for (const handler of this.goneHandlers) {
      try {
        handler(member.name);
      } catch (error) {
        this.logger.error(`member-gone handler failed: ${(error as Error).message}`);
      }
    }
  }

  // ---- the table -------------------------------------------------------------------------

  private remoteMembers(): Member[] {
    const out: Member[] = [];
    for (const entry of this.table.values()) out.push(entry.member);
    return out;
  }

  private lostMembers(): Member[] {
    const out: Member[] = [];
    for (const l of this.lost.values()) out.push(l.member);
    return out;
  }

  private insert(entry: Entry): void {
    const { member } = entry;
    this.table.set(member.name, entry);
    if (member.endpoint) {
      // Two members may advertise one endpoint for a moment (a stale one and its successor).
      const at = this.byEndpoint.get(member.endpoint);
      if (at === undefined) this.byEndpoint.set(member.endpoint, member.name);
      else if (Array.isArray(at)) at.push(member.name);
      else this.byEndpoint.set(member.endpoint, [at, member.name]);
    }
    this.inBucket[entry.bucket].add(entry);
    this.digest.add(member);
    if (compareAge(member, this.oldest) < 0) this.oldest = member;
    this.ring.add(member.name);
    this.rewatch();
    entry.link.watch(this.watchedNames.has(member.name));
    this.changed();
  }

  private remove(name: string): Entry | undefined {
    const entry = this.table.get(name);
    if (!entry) return undefined;
    const { member } = entry;
    this.table.delete(name);
    const at = this.byEndpoint.get(member.endpoint);
    if (at === name) this.byEndpoint.delete(member.endpoint);
    else if (Array.isArray(at)) {
      const rest = at.filter((n) => n !== name);
      this.byEndpoint.set(member.endpoint, rest.length === 1 ? rest[0] : rest);
    }
    this.inBucket[entry.bucket].delete(entry);
    this.digest.remove(member);
    this.exchangeDue.delete(name);
    this.forgetListings(name);
    this.ring.delete(name);
    this.rewatch();
    if (this.oldest === member)
      this.oldest = pickLeader([this.selfMember, ...this.remoteMembers()])!;
    this.changed();
    return entry;
  }

  /**
   * The table changed: the leader is updated at once (so `leader()` and `members()` are
   * current when `changes` reports the change); `members$` emits once after this turn.
   */
  private changed(): void {
    if (this.membersSubject.closed) return;
    this.snapshot = undefined;
    if (!this.holdLeader) {
      const leader = this.supersededBy
        ? null
        : this.marks.size === 0 && this.lost.size === 0
          ? this.oldest
          : leaderOf(this.view());
      const current = this.leaderSubject.value;
      if (leader?.name !== current?.name || leader?.incarnation !== current?.incarnation) {
        this.leaderSubject.next(leader);
      }
    }
    if (this.flushPending) return;
    this.flushPending = true;
    this.clock.defer(() => {
      this.flushPending = false;
      // Nobody listens: the list is built when someone subscribes or asks.
      if (this.membersSubject.observed) this.sync();
    });
  }

  /**
   * Updates which links are held to the failure timeout after the ring changed: only the
   * members that entered or left this node's neighbourhood are touched (at most a few per
   * change), so a start-up storm costs O(perSide) per join, not O(members).
   */
  private rewatch(): void {
    const next = this.ring.watched();
    for (const name of this.watchedNames) {
      if (!next.has(name)) this.table.get(name)?.link.watch(false);
    }
    for (const name of next) {
      if (!this.watchedNames.has(name)) this.table.get(name)?.link.watch(true);
    }
    this.watchedNames = next;
  }

  /**
   * This node lost a link for silence, or a member reports a loss: every link it does not watch
   * is probed now and closes unless its peer answers within a probe's window (at most once per
   * `SUSPECT_ALL_INTERVAL_MS`; the members a report names are probed at once, `suspectNamed`). So
   * a freeze or a partition seen by a member's ring neighbours reaches every node within about
   * two failure windows, whatever the cluster's size — a member whose ring neighbours are all on
   * its own side of a partition included.
   */
  private suspectUnwatched(): void {
    if (this.ring.complete) return;
    const now = this.clock.now();
    if (now - this.suspectedAllAt < SUSPECT_ALL_INTERVAL_MS) return;
    this.suspectedAllAt = now;
    for (const [name, entry] of this.table) {
      if (!this.watchedNames.has(name)) entry.link.suspect();
    }
  }

  /** Probes the unwatched links to the members a report marks unreachable (see `suspectUnwatched`). */
  private suspectNamed(names: readonly NodeIdentity[]): void {
    if (this.ring.complete) return;
    for (const m of names) {
      if (this.watchedNames.has(m.name)) continue;
      const entry = this.table.get(m.name);
      if (entry && entry.member.incarnation === m.incarnation) entry.link.suspect();
    }
  }

  /**
   * Reassesses reachability once after this turn: a burst of reports (every observer's row
   * changes when one member is lost) costs one pass, not one per report.
   */
  private reassessSoon(): void {
    if (this.reassessPending || this.closed) return;
    this.reassessPending = true;
    this.clock.defer(() => {
      this.reassessPending = false;
      if (!this.closed) this.reassess();
    });
  }

  /** Brings `members$`'s current value up to date. */
  private sync(): void {
    if (this.membersSubject.closed) return;
    const list = this.members();
    if (list !== this.membersSubject.value) this.membersSubject.next(list);
  }

  // ---- reachability ----------------------------------------------------------------------

  /** Self, linked members and unreachable members: the observers whose reports count here. */
  private observers(): NodeIdentity[] {
    const out: NodeIdentity[] = [this.selfMember];
    for (const e of this.table.values()) out.push(e.member);
    for (const l of this.lost.values()) out.push(l.member);
    return out;
  }

  private linkedTo(name: string, incarnation: string): boolean {
    const e = this.table.get(name);
    return e !== undefined && e.member.incarnation === incarnation && !e.link.closed;
  }

  private ownReport(): ReachabilityRow {
    return {
      observer: this.selfMember.name,
      incarnation: this.selfMember.incarnation,
      version: this.reportVersion,
      unreachable: [...this.lost.values()]
        .map((l) => l.member)
        .sort((a, b) => (a.name < b.name ? -1 : 1)),
      answers: this.ownAnswers,
    };
  }

  /**
   * Brings reachability up to date after a change of links or reports: lost members that a
   * linked member vouches for stay unreachable; those every linked member denies, or none has
   * vouched for within `reachabilityWaitMs`, are down. Then this node's report is rebuilt (and
   * sent once this turn when it changed), the marks are recounted and the leader updated; the
   * `down` events come last.
   */
  private reassess(lostChanged = false): void {
    if (this.closed || (!lostChanged && this.lost.size === 0 && this.reach.size === 0)) {
      this.changed();
      return;
    }
    const now = this.clock.now();
    const gone: Lost[] = [];
    const appeared: Lost[] = [];
    for (const l of this.lost.values()) {
      let vouched = false;
      let denied = true;
      for (const e of this.table.values()) {
        const answer = this.reach.answerOf(e.member, l.member);
        if (answer === true) {
          vouched = true;
          break;
        }
        if (answer === undefined) denied = false;
      }
      if (vouched) {
        l.unvouchedSince = undefined;
        if (!l.shown) {
          l.shown = true;
          appeared.push(l);
        }
        continue;
      }
      l.unvouchedSince ??= now;
      if (denied || now >= l.unvouchedSince + this.reachabilityWaitMs) gone.push(l);
    }
    for (const l of gone) this.lost.delete(l.member.name);
    if (gone.length > 0) lostChanged = true;
    // Reports of nodes that are neither linked nor unreachable here no longer count.
    for (const name of [...this.reach.observers()]) {
      if (name !== this.selfMember.name && !this.table.has(name) && !this.lost.has(name))
        this.reach.delete(name);
    }
    const observers = this.observers();
    const answers = this.reach.answers(observers, this.selfMember.name, (n, i) =>
      this.linkedTo(n, i),
    );
    if (lostChanged || !sameAnswers(answers, this.ownAnswers)) {
      this.ownAnswers = answers;
      this.reportVersion++;
      this.reach.merge(this.ownReport());
      this.scheduleReport();
    }
    this.marks = this.reach.marks(observers);
    this.armReachTimer();
    this.changed();
    for (const l of appeared) this.emitUnreachable(l);
    for (const l of gone) if (l.shown || !l.relayed) this.emitGone(l.member, 'down', l.reason);
  }

  /** Wakes `reassess` when the first unvouched member's wait ends. */
  private armReachTimer(): void {
    this.clock.clearTimeout(this.reachTimer);
    this.reachTimer = undefined;
    let due = Number.POSITIVE_INFINITY;
    for (const l of this.lost.values()) {
      if (l.unvouchedSince !== undefined)
        due = Math.min(due, l.unvouchedSince + this.reachabilityWaitMs);
    }
    if (due === Number.POSITIVE_INFINITY) return;
    this.reachTimer = this.clock.setTimeout(
      () => {
        this.reachTimer = undefined;
        this.reassess();
      },
      Math.max(0, due - this.clock.now()),
    );
  }

  /** Sends this node's report to every linked member, once this turn, when it changed. */
  private scheduleReport(): void {
    if (this.reportPending || this.closed) return;
    this.reportPending = true;
    this.clock.defer(() => {
      this.reportPending = false;
      if (this.closed || this.reportSent === this.reportVersion) return;
      this.reportSent = this.reportVersion;
      this.broadcastReport();
    });
  }

  private broadcastReport(): void {
    const payload = encodeReachability(this.ownReport());
    for (const e of this.table.values())
      if (!e.link.closed) e.link.send(FrameType.REACHABILITY, payload);
    this.armReportRefresh();
  }

  /** While this node marks members unreachable, its report goes out again now and then. */
  private armReportRefresh(): void {
    if (this.reportRefreshTimer !== undefined || this.closed) return;
    this.reportRefreshTimer = this.clock.setTimeout(() => {
      this.reportRefreshTimer = undefined;
      // Only an observer that marks someone refreshes: answers follow the marks they answer.
      if (this.closed || this.lost.size === 0) return;
      this.broadcastReport();
    }, this.reachabilityRefreshMs);
  }

  /**
   * A new link: this node's report (unless it never had one), and the reports it holds that
   * mark the new member (their observers may not reach it).
   */
  private sendReportsTo(link: MemberLink): void {
    if (this.reach.size === 0) return;
    for (const name of this.reach.observers()) {
      const row = this.reach.get(name)!;
      if (name === this.selfMember.name) {
        if (this.reportVersion > 0) link.send(FrameType.REACHABILITY, encodeReachability(row));
      } else if (
        name !== link.peer.name &&
        row.unreachable.some((m) => m.name === link.peer.name)
      ) {
        link.send(FrameType.REACHABILITY, encodeReachability(row));
      }
    }
  }

  /**
   * A report from a member (its own, or one it relays). Malformed or oversized reports, and
   * reports whose observer is not a member here, are ignored (logged once a minute); members a
   * report names that are unknown here are left out of it. A newer report is relayed to the
   * members it marks that this node has a link to.
   */
  private receiveReport(link: MemberLink, payload: Buffer): void {
    const from = link.peer.name;
    const decoded = decodeReachability(payload);
    if (typeof decoded === 'string') {
      this.limited.warn(
        `reach:${from}`,
        `malformed reachability report from ${from} (${decoded}); ignored`,
      );
      return;
    }
    let row = decoded;
    if (row.observer === this.selfMember.name) return; // this node's own, relayed back
    const observer: NodeIdentity | undefined =
      this.table.get(row.observer)?.member ?? this.lost.get(row.observer)?.member;
    if (!observer && row.observer !== from) {
      // A member this node gave up on is alive after all: another member relays its report.
      const known = this.recall(this.newest, row.observer);
      if (
        known?.incarnation === row.incarnation &&
        row.unreachable.some((m) => m.name === this.selfMember.name)
      ) {
        const member: Member = Object.freeze({
          ...toMember(known, false, this.clock.wallNow()),
          state: 'unreachable' as const,
        });
        this.lost.set(member.name, {
          member,
          reason: 'heartbeat-timeout',
          unvouchedSince: undefined,
          shown: false,
          relayed: true,
        });
        this.reach.merge(row, member.incarnation);
        this.reassess(true);
        return;
      }
    }
    // Members that were here recently are skipped quietly (a report can lag behind a `down`);
    // names never seen here are logged.
    if (!observer) {
      if (!this.recall(this.newest, row.observer))
        this.limited.warn(
          `reach-observer:${from}`,
          `reachability report from ${from} about ${row.observer}, which is not a member here; ignored`,
        );
      return;
    }
    const unknown = row.unreachable.filter(
      (m) => m.name !== this.selfMember.name && !this.table.has(m.name) && !this.lost.has(m.name),
    );
    if (unknown.some((m) => !this.recall(this.newest, m.name))) {
      this.limited.warn(
        `reach-names:${row.observer}`,
        `reachability report of ${row.observer} (from ${from}) names ${unknown.length} members unknown here (${unknown
          .slice(0, 3)
          .map((m) => m.name)
          .join(', ')}${unknown.length > 3 ? ', …' : ''}); they are ignored`,
      );
    }
    if (unknown.length > 0) {
      const skip = new Set(unknown);
      row = { ...row, unreachable: row.unreachable.filter((m) => !skip.has(m)) };
    }
    const previous = this.reach.get(row.observer);
    if (this.reach.merge(row, observer.incarnation) !== 'newer') return;
    if (row.unreachable.length > 0) {
      this.suspectNamed(row.unreachable);
      this.suspectUnwatched();
    }
    const targets = new Set(row.unreachable.map((m) => m.name));
    if (previous?.incarnation === row.incarnation)
      for (const m of previous.unreachable) targets.add(m.name);
    for (const name of targets) {
      if (name === from || name === row.observer) continue;
      const entry = this.table.get(name);
      if (entry && !entry.link.closed) entry.link.send(FrameType.REACHABILITY, payload);
    }
    this.reassessSoon();
  }

  // ---- peer exchange ---------------------------------------------------------------------

  private scheduleExchange(name: string): void {
    if (this.closed || this.exchangeDue.has(name)) return;
    // One delay for all: insertion order is due order.
    this.exchangeDue.set(name, this.clock.now() + this.exchangeDelayMs);
    if (this.exchangeTimer === undefined) this.armExchange();
  }

  /**
   * Sends the digests that are due — once membership has been quiet for `exchangeDelayMs`:
   * while a start-up storm joins members every few milliseconds, digests differ everywhere and
   * comparing them would only ship member lists that discovery is delivering anyway. A due
   * exchange waits at most `exchangeQuietCapMs` for that quiet moment. Due digests go out
   * `EXCHANGE_BATCH` at a time, `EXCHANGE_BATCH_GAP_MS` apart, so that what one exchange
   * brought is known (and not asked for again) when the next starts.
   */
  private armExchange(): void {
    const first = this.exchangeDue.values().next();
    if (first.done || this.closed) return;
    const quietAt = this.lastChangeAt + this.exchangeDelayMs;
    const at = Math.max(
      first.value,
      this.nextExchangeAt,
      Math.min(quietAt, first.value + this.exchangeQuietCapMs),
    );
    this.exchangeTimer = this.clock.setTimeout(
      () => {
        this.exchangeTimer = undefined;
        const now = this.clock.now();
        const quiet = now >= this.lastChangeAt + this.exchangeDelayMs;
        let sent = 0;
        for (const [name, due] of this.exchangeDue) {
          if (due > now || (!quiet && now < due + this.exchangeQuietCapMs)) break;
          if (sent === EXCHANGE_BATCH) {
            this.nextExchangeAt = now + EXCHANGE_BATCH_GAP_MS;
            break;
          }
          sent++;
          this.exchangeDue.delete(name);
          const entry = this.table.get(name);
          if (entry && !entry.link.closed)
            entry.link.send(FrameType.PEERS_DIGEST, this.digest.encode(false));
        }
        this.armExchange();
      },
      Math.max(0, at - this.clock.now()),
    );
  }

  /** Every interval: one random member, and every member whose listed endpoints are not members here. */
  private startRefresh(): void {
    if (this.refreshTimer !== undefined || this.closed) return;
    this.refreshTimer = this.clock.setTimeout(() => {
      this.refreshTimer = undefined;
      if (this.closed || this.table.size === 0) return;
      // One lister per endpoint that is still not a member: a storm in which every member
      // lists the same newcomers costs a few exchanges, not one per member.
      const covered = new Set<string>();
      for (const [lister, entries] of this.listed) {
        let due = false;
        for (const name of entries.keys()) {
          if (!this.table.has(name) && !covered.has(name)) {
            due = true;
            break;
          }
        }
        if (!due) continue;
        this.scheduleExchange(lister);
        for (const name of entries.keys()) covered.add(name);
      }
      const index = Math.floor(this.random.next() * this.table.size);
      let i = 0;
      for (const name of this.table.keys()) {
        if (i++ === index) {
          this.scheduleExchange(name);
          break;
        }
      }
      this.startRefresh();
    }, this.exchangeIntervalMs);
  }

  private receiveDigest(link: MemberLink, payload: Buffer): void {
    const from = link.peer.name;
    const frame = decodeDigest(payload);
    if (!frame) {
      this.limited.warn(`digest:${from}`, `malformed peer digest from ${from}; ignored`);
      return;
    }
    const differing = this.digest.differing(frame);
    const covered = new Set(differing);
    // Where the views agree, the peer lists nothing this node lacks.
    this.forgetListings(from, (bucket) => !covered.has(bucket));
    if (differing.length === 0) return;
    if (frame.reply) {
      // Only an older node answers a digest with a digest: it expects whole buckets.
      this.sendBuckets(link, differing);
      return;
    }
    link.send(FrameType.PEERS_HAVE, encodeHave(false, this.hashesOf(differing, from)));
  }

  /**
   * The peer's entry hashes in the buckets where the digests differ: sends the members it
   * lacks (so an exchange costs what is new, plus four bytes per member of those buckets) and,
   * unless this answers a `PEERS_HAVE`, this node's hashes of the same buckets.
   */
  private receiveHave(link: MemberLink, payload: Buffer): void {
    const from = link.peer.name;
    const frame = decodeHave(payload);
    if (!frame) {
      this.limited.warn(`have:${from}`, `malformed peer hashes from ${from}; ignored`);
      return;
    }
    const buckets = frame.buckets.map((b) => b.bucket);
    const has = new Set<number>();
    for (const b of frame.buckets) for (const h of b.hashes) has.add(h);
    this.sendBuckets(link, buckets, has);
    if (!frame.reply)
      link.send(FrameType.PEERS_HAVE, encodeHave(true, this.hashesOf(buckets, from)));
  }

  /**
   * What this node knows in `buckets`, as entry hashes for `peer`: its members (self
   * included), and the endpoints other members listed (they are being dialled already; in a
   * start-up storm each newcomer then travels once to each node, not once per exchange).
   * What `peer` itself listed is left out, so that it lists it again and it is kept.
   */
  private hashesOf(buckets: readonly number[], peer: string): BucketHashes[] {
    const selfBucket = bucketOf(this.selfMember.name);
    const mine = new Set<number>();
    for (const l of this.listed.get(peer)?.values() ?? []) mine.add(l.hash);
    const out = buckets.map((bucket) => {
      const hashes: number[] = [];
      if (bucket === selfBucket) hashes.push(entryHash(this.selfMember));
      for (const entry of this.inBucket[bucket]) hashes.push(entry.hash);
      return { bucket, hashes };
    });
    // Members first; listed endpoints while the frame has room (the rest is merely resent).
    let room = MAX_HAVE_HASHES - out.reduce((n, b) => n + b.hashes.length, 0);
    for (const { bucket, hashes } of out) {
      const listed = this.listedHashes[bucket];
      if (listed.size === 0 || room <= 0) continue;
      for (const [hash, listers] of listed) {
        if (room <= 0) break;
        if (listers > 1 || !mine.has(hash)) {
          hashes.push(hash);
          room--;
        }
      }
    }
    return out;
  }

  /**
   * Sends this node's members of `buckets` — those whose entry hash is not in `has`, when
   * given (whole buckets per frame, bounded in all). A frame covering buckets with nothing to
   * send is still sent: it tells the peer those buckets list nothing it lacks.
   */
  private sendBuckets(link: MemberLink, buckets: readonly number[], has?: Set<number>): void {
    let covered: number[] = [];
    let peers: { name: string; incarnation: string; endpoint: string }[] = [];
    let sent = 0;
    const flush = (): void => {
      if (covered.length === 0) return;
      link.send(FrameType.PEERS, Buffer.from(JSON.stringify({ b: covered, p: peers })));
      covered = [];
      peers = [];
    };
    for (const bucket of buckets) {
      const members = this.inBucket[bucket];
      if (peers.length > 0 && peers.length + members.size > PEERS_CHUNK) flush();
      if (sent + members.size > MAX_PEERS_PER_FRAME) break;
      covered.push(bucket);
      for (const { member: m, hash } of members) {
        if (m.name === link.peer.name || !m.endpoint || has?.has(hash)) continue;
        peers.push({ name: m.name, incarnation: m.incarnation, endpoint: m.endpoint });
        sent++;
      }
    }
    flush();
  }

  private receivePeers(link: MemberLink, payload: Buffer): void {
    const from = link.peer.name;
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload.toString('utf8'));
    } catch {
      parsed = undefined;
    }
    // `{ b: buckets covered, p: members }`, or a plain list (from an older node).
    let list: unknown = parsed;
    let covered: Set<number> | undefined;
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
      const frame = parsed as { b?: unknown; p?: unknown };
      list = frame.p;
      covered = Array.isArray(frame.b)
        ? new Set(frame.b.filter((b): b is number => Number.isInteger(b)))
        : undefined;
      if (!covered) list = undefined;
    }
    if (!Array.isArray(list) || list.length > MAX_PEERS_PER_FRAME) {
      this.limited.warn(
        `peers:${from}`,
        Array.isArray(list)
          ? `peer list from ${from} has ${list.length} entries (at most ${MAX_PEERS_PER_FRAME}); ignored`
          : `malformed peer list from ${from}; ignored`,
      );
      return;
    }
    if (covered) this.forgetListings(from, (bucket) => covered.has(bucket));
    const learned: DiscoveredEndpoint[] = [];
    for (const item of list as unknown[]) {
      const p = item as { name?: unknown; incarnation?: unknown; endpoint?: unknown };
      if (typeof p.name !== 'string' || typeof p.endpoint !== 'string') continue;
      if (p.name === this.selfMember.name || this.table.has(p.name)) continue;
      const endpoint = parseEndpoint(p.endpoint);
      if (!endpoint) continue;
      const found: DiscoveredEndpoint = {
        ...endpoint,
        name: p.name,
        ...(typeof p.incarnation === 'string' ? { incarnation: p.incarnation } : {}),
      };
      learned.push(found);
      this.list(from, found, p.endpoint);
    }
    if (learned.length > 0) this.changeSubject.next({ type: 'learned', from, endpoints: learned });
  }

  /** Records that member `lister` lists `endpoint` (bounded; a full table takes no more). */
  private list(lister: string, endpoint: DiscoveredEndpoint, advertised: string): void {
    let entries = this.listed.get(lister);
    const name = endpoint.name!;
    if (!entries?.has(name) && this.listedCount >= this.maxListed) {
      this.limited.warn(
        'listed-full',
        `members list more than ${this.maxListed} endpoints that are not members here; the rest are dialled once and not kept`,
      );
      return;
    }
    if (!entries) {
      entries = new Map();
      this.listed.set(lister, entries);
    }
    const before = entries.get(name);
    if (before) this.unhash(before);
    else this.listedCount++;
    const entry: Listed = {
      endpoint,
      bucket: bucketOf(name),
      hash: entryHash({ name, incarnation: endpoint.incarnation ?? '', endpoint: advertised }),
    };
    entries.set(name, entry);
    const hashes = this.listedHashes[entry.bucket];
    hashes.set(entry.hash, (hashes.get(entry.hash) ?? 0) + 1);
  }

  private unhash(entry: Listed): void {
    const hashes = this.listedHashes[entry.bucket];
    const n = (hashes.get(entry.hash) ?? 1) - 1;
    if (n > 0) hashes.set(entry.hash, n);
    else hashes.delete(entry.hash);
  }

  /** Forgets what `lister` listed (in the buckets `which` selects, or all). */
  private forgetListings(lister: string, which?: (bucket: number) => boolean): void {
    const entries = this.listed.get(lister);
    if (!entries) return;
    for (const [name, entry] of entries) {
      if (which && !which(entry.bucket)) continue;
      entries.delete(name);
      this.unhash(entry);
      this.listedCount--;
    }
    if (entries.size === 0) this.listed.delete(lister);
  }

  private remember(map: Map<string, Remembered>, identity: NodeIdentity): void {
    map.delete(identity.name);
    map.set(identity.name, {
      identity,
      until: this.clock.now() + (map === this.dropped ? this.dropHoldMs : this.rememberMs),
    });
    while (map.size > this.maxRemembered) map.delete(map.keys().next().value!);
  }

  private recall(map: Map<string, Remembered>, name: string): NodeIdentity | undefined {
    const entry = map.get(name);
    if (!entry) return undefined;
    if (entry.until <= this.clock.now()) {
      map.delete(name);
      return undefined;
    }
    return entry.identity;
  }
}

function toMember(identity: NodeIdentity, self: boolean, joinedAt: number): Member {
  return Object.freeze({
    name: identity.name,
    incarnation: identity.incarnation,
    startedAt: identity.startedAt,
    endpoint: identity.endpoint,
    address: identity.endpoint,
    self,
    joinedAt,
    state: 'up',
  });
}

function downReason(reason: MemberLinkCloseReason): DownReason {
  switch (reason) {
    case 'heartbeat-timeout':
      return 'heartbeat-timeout';
    case 'protocol-error':
      return 'error';
    default:
      return 'connection-closed';
  }
}
