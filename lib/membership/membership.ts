import { Logger, type LoggerService } from '@nestjs/common';
import { BehaviorSubject, Subject, filter, map, type Observable } from 'rxjs';
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
import type { DiscoveredEndpoint } from '../strategies/strategy.interface.js';
import { FrameType } from '../transport/frame-types.js';
import { pickLeader } from './leader.js';
import type {
  MemberLink,
  MemberLinkCloseReason,
  MemberLinkLeaveCause,
} from './member-link.interface.js';
import type { MembershipChange } from './membership-change.js';

interface Entry {
  member: Member;
  link: MemberLink;
  /**
   * The redundant link of two dialled at once, retired: kept open until the peer is seen using
   * `link` (any frame on it), so that neither end closes the connection the other still uses.
   */
  spare?: MemberLink;
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
}

/** Most members a PEERS frame may list; more is treated as garbage. */
export const MAX_PEERS_PER_FRAME = 4096;

/**
 * The member table — the one owner of links. The transport hands it every admitted link,
 * inbound or outbound; it decides which link is a member's, publishes one typed stream of
 * changes (`changes`), keeps the leader, and exchanges peers (a new link learns the members
 * the peer knows, so the cluster becomes a full mesh — Erlang's transitive connect).
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
 * - The leader (the oldest member) is updated before `members$` emits, so every subscriber
 *   sees a consistent pair.
 */
export class Membership implements PeerChannel {
  private readonly clock: Clock;
  private readonly logger: LoggerService;
  private readonly limited: RateLimitedLogger;
  private readonly table = new Map<string, Entry>();
  private readonly changeSubject = new Subject<MembershipChange>();
  private readonly membersSubject: BehaviorSubject<Member[]>;
  private readonly leaderSubject: BehaviorSubject<Member | null>;
  private readonly frameHandlers = new Map<number, (from: string, payload: Buffer) => void>();
  private readonly goneHandlers = new Set<(name: string) => void>();
  /** Newest incarnation seen per name (members and recent members). */
  private readonly newest = new Map<string, Remembered>();
  /** Processes dropped because discovery no longer lists them, by name. */
  private readonly dropped = new Map<string, Remembered>();
  private readonly supersededHoldMs: number;
  private readonly dropHoldMs: number;
  private readonly rememberMs: number;
  private readonly maxRemembered: number;
  private selfMember: Member;
  private supersededBy: NodeIdentity | undefined;
  private supersededTimer: TimerHandle | undefined;
  private closed = false;

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
    this.selfMember = toMember(self, true, this.clock.wallNow());
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
    this.selfMember = toMember(self, true, this.selfMember.joinedAt);
    this.publish();
  }

  get members$(): Observable<Member[]> {
    return this.membersSubject.asObservable();
  }

  get leader$(): Observable<Member | null> {
    return this.leaderSubject.asObservable();
  }

  /** Members sorted by name, self included. */
  members(): Member[] {
    return this.membersSubject.value;
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
    for (const { member } of this.table.values()) {
      if (member.endpoint === endpoint) return member;
    }
    return undefined;
  }

  memberNames(): string[] {
    return [...this.table.keys()];
  }

  /** Sizes of the internal maps (for bounded-state checks). */
  stateSize(): { members: number; remembered: number; dropped: number } {
    return { members: this.table.size, remembered: this.newest.size, dropped: this.dropped.size };
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
      this.table.delete(peer.name);
      existing.link.close('replaced by a newer incarnation');
      existing.spare?.close('replaced by a newer incarnation');
      this.emitGone(existing.member, 'leave', 'replaced');
    }

    const member = toMember(peer, false, this.clock.wallNow());
    this.table.set(peer.name, { member, link });
    this.remember(this.newest, peer);
    this.watch(link);
    this.publish();
    this.logger.log(`${member.name} joined (${member.address}, ${link.direction})`);
    this.changeSubject.next({ type: 'join', member, at: member.joinedAt });
    this.sendPeers(link);
  }

  /**
   * Discovery no longer lists the member at `endpoint`: tells it so (LEAVE with cause
   * `discovery`, so both ends record a `leave`), closes the link, and refuses that process
   * until discovery lists it again. Only the member advertising exactly that endpoint (and,
   * when given, with that name) is affected. Returns true when a member was dropped.
   */
  drop(endpoint: string, name?: string): boolean {
    const member = this.memberAt(endpoint);
    if (!member || (name !== undefined && member.name !== name)) return false;
    const entry = this.table.get(member.name)!;
    this.table.delete(member.name);
    this.remember(this.dropped, member);
    entry.spare?.close('dropped by discovery');
    void entry.link.leave('discovery');
    this.emitGone(member, 'leave', 'discovery');
    return true;
  }

  sendFrame(node: string, type: number, payload: Buffer): boolean {
    const entry = this.table.get(node);
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

  onMemberGone(handler: (name: string) => void): () => void {
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
    this.complete();
    this.goneHandlers.clear();
    this.frameHandlers.clear();
  }

  private complete(): void {
    this.clock.clearTimeout(this.supersededTimer);
    this.changeSubject.complete();
    this.membersSubject.complete();
    this.leaderSubject.complete();
  }

  private becomeSuperseded(by: NodeIdentity | undefined, why: string): void {
    const first = this.supersededBy === undefined;
    this.supersededBy = by ?? this.supersededBy ?? this.selfMember;
    this.limited.error(
      'superseded',
      `NODE_NAME ${this.selfMember.name} is taken by a newer process: ${why}. This process keeps serving alone and runs no leader-only work — give every process its own NODE_NAME, and stop the old one`,
    );
    this.clock.clearTimeout(this.supersededTimer);
    this.supersededTimer = this.clock.setTimeout(() => {
      this.supersededBy = undefined;
      this.supersededTimer = undefined;
      if (!this.closed) this.publish();
    }, this.supersededHoldMs);
    if (first) this.publish();
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
    if (type === FrameType.PEERS) {
      this.receivePeers(link, payload);
      return;
    }
    if (type === FrameType.LINK_CHOSEN) return;
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
      return;
    }
    entry.spare?.close('the member is gone');
    this.table.delete(link.peer.name);
    if (reason === 'leave')
      this.emitGone(entry.member, 'leave', cause === 'discovery' ? 'discovery' : 'shutdown');
    else this.emitGone(entry.member, 'down', downReason(reason));
  }

  private emitGone(member: Member, type: 'leave' | 'down', reason: LeaveReason | DownReason): void {
    this.publish();
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

  private sendPeers(link: MemberLink): void {
    const peers = [...this.table.values()]
      .filter((e) => e.member.name !== link.peer.name && e.member.endpoint)
      .map(({ member: m }) => ({ name: m.name, incarnation: m.incarnation, endpoint: m.endpoint }));
    link.send(FrameType.PEERS, Buffer.from(JSON.stringify(peers)));
  }

  private receivePeers(link: MemberLink, payload: Buffer): void {
    let list: unknown;
    try {
      list = JSON.parse(payload.toString('utf8'));
    } catch {
      list = undefined;
    }
    if (!Array.isArray(list) || list.length > MAX_PEERS_PER_FRAME) {
      this.limited.warn(
        `peers:${link.peer.name}`,
        `malformed peer list from ${link.peer.name}; ignored`,
      );
      return;
    }
    const learned: DiscoveredEndpoint[] = [];
    for (const item of list as unknown[]) {
      const p = item as { name?: unknown; incarnation?: unknown; endpoint?: unknown };
      if (typeof p.name !== 'string' || typeof p.endpoint !== 'string') continue;
      if (p.name === this.selfMember.name || this.table.has(p.name)) continue;
      const endpoint = parseEndpoint(p.endpoint);
      if (!endpoint) continue;
      learned.push({
        ...endpoint,
        name: p.name,
        ...(typeof p.incarnation === 'string' ? { incarnation: p.incarnation } : {}),
      });
    }
    if (learned.length > 0)
      this.changeSubject.next({ type: 'learned', from: link.peer.name, endpoints: learned });
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

  private publish(): void {
    if (this.membersSubject.closed) return;
    const list = [this.selfMember, ...[...this.table.values()].map((e) => e.member)].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    const leader = this.supersededBy ? null : pickLeader(list);
    const current = this.leaderSubject.value;
    if (leader?.name !== current?.name || leader?.incarnation !== current?.incarnation) {
      this.leaderSubject.next(leader);
    }
    this.membersSubject.next(list);
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
