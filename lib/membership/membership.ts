import { Logger, type LoggerService } from '@nestjs/common';
import { BehaviorSubject, Subject, type Observable } from 'rxjs';
import { NotAMemberError } from '../errors/not-a-member.error.js';
import type {
  ClusterEvent,
  DownReason,
  LeaveReason,
  Member,
  NodeIdentity,
} from '../interfaces/member.interface.js';
import type { PeerChannel } from '../messaging/peer-channel.interface.js';
import type { DiscoveredEndpoint } from '../strategies/strategy.interface.js';
import { FrameType } from '../transport/frame-types.js';
import { compareAge, pickLeader } from './leader.js';
import type { MemberLink, MemberLinkCloseReason } from './member-link.interface.js';

interface Entry {
  member: Member;
  link: MemberLink;
}

/** Most members a PEERS frame may list; more is treated as garbage. */
const MAX_PEERS_PER_FRAME = 4096;

/**
 * The member table: one live link per remote node, join / leave / down events, the leader,
 * and peer exchange (a new link learns the members the peer knows, so the cluster becomes a
 * full mesh — Erlang's transitive connect).
 *
 * Rules, applied the same way on every node so that both ends of a link agree:
 * - Two live links to one node (both dialled at once): keep the one dialled by the node whose
 *   name sorts first; the other is closed without events.
 * - A link from a newer incarnation of a known name replaces the old member (`leave` with
 *   reason `replaced`, then `join`); a link from an older incarnation is refused.
 * - A link whose peer claims this node's own name is closed.
 */
export class Membership implements PeerChannel {
  private readonly logger: LoggerService;
  private readonly table = new Map<string, Entry>();
  private readonly events = new Subject<ClusterEvent>();
  private readonly membersSubject: BehaviorSubject<Member[]>;
  private readonly leaderSubject: BehaviorSubject<Member | null>;
  private readonly frameHandlers = new Map<number, (from: string, payload: Buffer) => void>();
  private readonly goneHandlers = new Set<(name: string) => void>();
  private selfMember: Member;
  private closed = false;

  /** Called with endpoints learned through peer exchange (the reconciler dials them). */
  onPeersLearned: (endpoints: DiscoveredEndpoint[]) => void = () => {};
  /** Called when a remote member is gone (the reconciler redials discovered endpoints). */
  onMemberRemoved: (member: Member, graceful: boolean) => void = () => {};

  constructor(self: NodeIdentity, logger?: LoggerService) {
    this.logger = logger ?? new Logger(Membership.name);
    this.selfMember = toMember(self, true, Date.now());
    this.membersSubject = new BehaviorSubject<Member[]>([this.selfMember]);
    this.leaderSubject = new BehaviorSubject<Member | null>(this.selfMember);
  }

  get selfName(): string {
    return this.selfMember.name;
  }

  get self(): Member {
    return this.selfMember;
  }

  /** Updates the local identity (the endpoint is known once the listener is bound). */
  setSelf(self: NodeIdentity): void {
    this.selfMember = toMember(self, true, this.selfMember.joinedAt);
    this.publish();
  }

  readonly events$: Observable<ClusterEvent> = this.events.asObservable();
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

  /** The member whose advertised endpoint is `endpoint`, if any. */
  byEndpoint(endpoint: string): Member | undefined {
    for (const { member } of this.table.values()) {
      if (member.endpoint === endpoint) return member;
    }
    return undefined;
  }

  memberNames(): string[] {
    return [...this.table.keys()];
  }

  /**
   * Takes a freshly authenticated link (inbound or outbound) and decides whether it becomes
   * the member's link. Returns false when the link was refused and closed.
   */
  addLink(link: MemberLink): boolean {
    const peer = link.peer;
    if (this.closed) {
      link.close('local');
      return false;
    }
    if (peer.name === this.selfMember.name) {
      if (peer.incarnation !== this.selfMember.incarnation) {
        this.logger.error(
          `another node claims this node's name ${peer.name} (at ${link.remoteAddress}); names must be unique — set NODE_NAME`,
        );
      }
      link.close('local');
      return false;
    }

    const existing = this.table.get(peer.name);
    if (existing) {
      if (existing.member.incarnation === peer.incarnation) {
        // Two links to one node: both ends keep the link dialled by the smaller name.
        const keepNew = this.preferred(link, existing.link);
        if (!keepNew) {
          link.close('local');
          return false;
        }
        const old = existing.link;
        existing.link = link;
        this.watch(link);
        old.close('local');
        return true;
      }
      if (compareAge(peer, existing.member) < 0) {
        this.logger.warn(
          `refused link from ${peer.name} (incarnation ${peer.incarnation}): an incarnation that started later is a member`,
        );
        link.close('local');
        return false;
      }
      // A newer incarnation replaces the old process.
      this.table.delete(peer.name);
      existing.link.close('local');
      this.emitGone(existing.member, 'leave', 'replaced');
    }

    const member = toMember(peer, false, Date.now());
    this.table.set(peer.name, { member, link });
    this.watch(link);
    this.publish();
    this.logger.log(`${member.name} joined (${member.address}, ${link.direction})`);
    this.events.next({ type: 'join', member, at: member.joinedAt, reason: 'linked' });
    this.sendPeers(link);
    return true;
  }

  /** Closes the link to `name` and removes it with a `leave` event of `reason`. */
  disconnect(name: string, reason: LeaveReason = 'discovery'): void {
    const entry = this.table.get(name);
    if (!entry) return;
    this.table.delete(name);
    entry.link.close('local');
    this.emitGone(entry.member, 'leave', reason);
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
    await Promise.allSettled(entries.map((e) => e.link.leave()));
    this.complete();
  }

  /** Closes every link and completes the observables. */
  close(): void {
    this.closed = true;
    for (const entry of this.table.values()) entry.link.close('local');
    this.table.clear();
    this.complete();
    this.goneHandlers.clear();
    this.frameHandlers.clear();
  }

  private complete(): void {
    this.events.complete();
    this.membersSubject.complete();
    this.leaderSubject.complete();
  }

  private preferred(candidate: MemberLink, current: MemberLink): boolean {
    // The link dialled by the node whose name sorts first wins on both ends.
    const selfFirst = this.selfMember.name < candidate.peer.name;
    const wanted: MemberLink['direction'] = selfFirst ? 'outbound' : 'inbound';
    // Same direction: the peer dialled again, so it considers the old link dead.
    if (candidate.direction === current.direction) return true;
    return candidate.direction === wanted;
  }

  private watch(link: MemberLink): void {
    link.on('frame', (type, payload) => this.onLinkFrame(link, type, payload));
    link.on('close', (reason) => this.onLinkClose(link, reason));
  }

  private onLinkFrame(link: MemberLink, type: number, payload: Buffer): void {
    const entry = this.table.get(link.peer.name);
    if (!entry || entry.link !== link) return;
    if (type === FrameType.PEERS) {
      this.receivePeers(link, payload);
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

  private onLinkClose(link: MemberLink, reason: MemberLinkCloseReason): void {
    const entry = this.table.get(link.peer.name);
    if (!entry || entry.link !== link) return; // a redundant or replaced link
    this.table.delete(link.peer.name);
    if (reason === 'leave') this.emitGone(entry.member, 'leave', 'shutdown');
    else this.emitGone(entry.member, 'down', downReason(reason));
  }

  private emitGone(member: Member, type: 'leave' | 'down', reason: LeaveReason | DownReason): void {
    this.publish();
    const at = Date.now();
    if (type === 'leave') {
      this.logger.log(`${member.name} left (${reason})`);
      this.events.next({ type: 'leave', member, at, reason: reason as LeaveReason });
    } else {
      this.logger.warn(`${member.name} is down (${reason})`);
      this.events.next({ type: 'down', member, at, reason: reason as DownReason });
    }
    for (const handler of this.goneHandlers) {
      try {
        handler(member.name);
      } catch (error) {
        this.logger.error(`member-gone handler failed: ${(error as Error).message}`);
      }
    }
    if (!this.closed) this.onMemberRemoved(member, type === 'leave');
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
      this.logger.warn(`malformed peer list from ${link.peer.name}; ignored`);
      return;
    }
    if (!Array.isArray(list) || list.length > MAX_PEERS_PER_FRAME) {
      this.logger.warn(`malformed peer list from ${link.peer.name}; ignored`);
      return;
    }
    const learned: DiscoveredEndpoint[] = [];
    for (const item of list as unknown[]) {
      const p = item as { name?: unknown; endpoint?: unknown };
      if (typeof p.name !== 'string' || typeof p.endpoint !== 'string') continue;
      if (p.name === this.selfMember.name || this.table.has(p.name)) continue;
      const endpoint = parseEndpoint(p.endpoint);
      if (endpoint) learned.push({ ...endpoint, name: p.name });
    }
    if (learned.length > 0) this.onPeersLearned(learned);
  }

  private publish(): void {
    if (this.closed && this.membersSubject.closed) return;
    const list = [this.selfMember, ...[...this.table.values()].map((e) => e.member)].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    this.membersSubject.next(list);
    const leader = pickLeader(list);
    const current = this.leaderSubject.value;
    if (leader?.name !== current?.name || leader?.incarnation !== current?.incarnation) {
      this.leaderSubject.next(leader);
    }
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

/** Parses `host:port` or `[v6]:port`. */
export function parseEndpoint(value: string): { host: string; port: number } | undefined {
  const v6 = /^\[([^\]]+)\]:(\d{1,5})$/.exec(value);
  const m = v6 ?? /^([^:\s]+):(\d{1,5})$/.exec(value);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1]!, port };
}
