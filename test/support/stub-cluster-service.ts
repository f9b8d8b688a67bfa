import { BehaviorSubject, Subject, filter, type Observable } from 'rxjs';
import { DuplicateHandlerError } from '../../lib/errors/duplicate-handler.error.js';
import { NoHandlerError } from '../../lib/errors/no-handler.error.js';
import type { ClusterEvent, Member } from '../../lib/interfaces/member.interface.js';
import type {
  ClusterMessage,
  PublishResult,
} from '../../lib/messaging/cluster-message.interface.js';
import type { ClusterService } from '../../lib/cluster.service.js';
import type { Leadership } from '../../lib/membership/leadership.js';
import type { QuorumState } from '../../lib/membership/quorum.js';
import type { TopologyStatus } from '../../lib/node/cluster-node.js';

type StubTopologyStatus = TopologyStatus;

/** The public API of `ClusterService` the stub provides. */
type ClusterServiceApi = Pick<
  ClusterService,
  | 'self'
  | 'members'
  | 'members$'
  | 'events$'
  | 'leader'
  | 'isLeader'
  | 'leader$'
  | 'leadership'
  | 'leadership$'
  | 'quorum'
  | 'quorum$'
  | 'waitForMembers'
  | 'discovery'
  | 'mode'
  | 'publish'
  | 'subscribe'
  | 'send'
  | 'request'
  | 'handle'
>;

/** A member with sensible defaults, for tests. */
export function stubMember(name: string, overrides: Partial<Member> = {}): Member {
  return {
    name,
    incarnation: `${name}-inc`,
    startedAt: 1_000,
    endpoint: `${name}:45893`,
    address: `${name}:45893`,
    self: false,
    joinedAt: 2_000,
    state: 'up',
    ...overrides,
  };
}

/**
 * A stand-in for `ClusterService` with the same public API, backed by Subjects and fields the
 * test sets directly. Messaging is local only: `publish()`/`send()` reach this stub's own
 * subscribers; `request()` calls this stub's own handlers.
 */
export class StubClusterService implements ClusterServiceApi {
  mode: 'cluster' | 'single-node' = 'cluster';
  /** What `isLeader()` answers. */
  leaderFlag = true;
  /** What `discovery()` answers. */
  topologies: StubTopologyStatus[] = [{ topology: 'default', strategy: 'gossip', ok: true }];
  /** Every `publish()` call, in order. */
  readonly published: { topic: string; payload: unknown }[] = [];

  private readonly selfMember: Member;
  private readonly membersSubject: BehaviorSubject<Member[]>;
  private readonly eventsSubject = new Subject<ClusterEvent>();
  private readonly messagesSubject = new Subject<ClusterMessage<unknown>>();
  private readonly leaderSubject: BehaviorSubject<Member | null>;
  private readonly handlers = new Map<string, (payload: unknown, from: string) => unknown>();

  readonly members$: Observable<Member[]>;
  readonly events$: Observable<ClusterEvent>;
  readonly leader$: Observable<Member | null>;
  readonly leadership$: Observable<Leadership>;
  readonly quorum$: Observable<QuorumState>;
  private readonly leadershipSubject: BehaviorSubject<Leadership>;
  private readonly quorumSubject = new BehaviorSubject<QuorumState>({
    required: null,
    reachable: 1,
    ok: true,
  });

  constructor(selfName = 'app@stub') {
    this.selfMember = stubMember(selfName, { self: true });
    this.membersSubject = new BehaviorSubject<Member[]>([this.selfMember]);
    this.leaderSubject = new BehaviorSubject<Member | null>(this.selfMember);
    this.members$ = this.membersSubject.asObservable();
    this.events$ = this.eventsSubject.asObservable();
    this.leader$ = this.leaderSubject.asObservable();
    this.leadershipSubject = new BehaviorSubject<Leadership>({ leader: this.selfMember, term: 1 });
    this.leadership$ = this.leadershipSubject.asObservable();
    this.quorum$ = this.quorumSubject.asObservable();
  }

  leadership(): Leadership {
    return this.leadershipSubject.value;
  }

  get quorum(): QuorumState {
    return this.quorumSubject.value;
  }

  /** Sets the quorum state. */
  setQuorum(state: QuorumState): void {
    this.quorumSubject.next(state);
  }

  get self(): Member {
    return this.selfMember;
  }

  members(): Member[] {
    return this.membersSubject.value;
  }

  leader(): Member | null {
    return this.leaderSubject.value;
  }

  isLeader(): boolean {
    return this.leaderFlag;
  }

  waitForMembers(n: number): Promise<Member[]> {
    if (this.members().length >= n) return Promise.resolve(this.members());
    return Promise.reject(new Error(`stub has ${this.members().length} members, not ${n}`));
  }

  discovery(): StubTopologyStatus[] {
    return this.topologies;
  }

  publish<T>(topic: string, payload: T): PublishResult {
    this.published.push({ topic, payload });
    this.messagesSubject.next({ topic, payload, from: this.self.name, at: Date.now() });
    return { delivered: [this.self.name], failed: [] };
  }

  subscribe<T>(topic: string): Observable<ClusterMessage<T>> {
    return this.messagesSubject.pipe(filter((m) => m.topic === topic)) as Observable<
      ClusterMessage<T>
    >;
  }

  send<T>(_node: string, topic: string, payload: T): void {
    this.messagesSubject.next({ topic, payload, from: this.self.name, at: Date.now() });
  }

  async request<R = unknown, T = unknown>(node: string, topic: string, payload: T): Promise<R> {
    return this.callHandler<R>(topic, payload, node);
  }

  handle<T = unknown, R = unknown>(
    topic: string,
    fn: (payload: T, from: string) => R | Promise<R>,
  ): () => void {
    if (this.handlers.has(topic)) throw new DuplicateHandlerError(topic);
    const handler = fn as (payload: unknown, from: string) => unknown;
    this.handlers.set(topic, handler);
    return () => {
      if (this.handlers.get(topic) === handler) this.handlers.delete(topic);
    };
  }

  // ---- test controls ----

  /** Sets the membership (self is always included first). */
  setMembers(others: Member[]): void {
    this.membersSubject.next([this.selfMember, ...others]);
  }

  /** Sets the leader. */
  setLeader(member: Member | null, term = this.leadershipSubject.value.term + 1): void {
    this.leaderSubject.next(member);
    this.leadershipSubject.next({ leader: member, term });
    this.leaderFlag = member?.name === this.self.name;
  }

  /** Emits a cluster event. */
  emitEvent(event: ClusterEvent): void {
    this.eventsSubject.next(event);
  }

  /** Delivers a message as if it came from `from`. */
  deliver<T>(topic: string, payload: T, from = 'app@remote'): void {
    this.messagesSubject.next({ topic, payload, from, at: Date.now() });
  }

  /** Calls the handler registered for `topic`, as a request from `from` would. */
  async callHandler<R>(topic: string, payload: unknown, from = 'app@remote'): Promise<R> {
    const handler = this.handlers.get(topic);
    if (!handler) throw new NoHandlerError(this.self.name, topic);
    return (await handler(payload, from)) as R;
  }

  /** Topics with a registered handler. */
  handledTopics(): string[] {
    return [...this.handlers.keys()];
  }

  /** True while anything is subscribed to events or messages. */
  hasObservers(): boolean {
    return this.eventsSubject.observed || this.messagesSubject.observed;
  }

  /** Completes every subject, as the real service does on shutdown. */
  close(): void {
    this.eventsSubject.complete();
    this.messagesSubject.complete();
    this.membersSubject.complete();
    this.leaderSubject.complete();
    this.leadershipSubject.complete();
    this.quorumSubject.complete();
  }
}
