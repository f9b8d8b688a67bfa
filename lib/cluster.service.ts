import {
  Inject,
  Injectable,
  Optional,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { firstValueFrom, filter, timeout, type Observable, TimeoutError } from 'rxjs';
import {
  CLUSTER_NODE_SEAMS,
  CLUSTER_RESOLVED_OPTIONS,
  CLUSTER_TOPOLOGIES,
} from './cluster.constants.js';
import type { ResolvedClusterOptions } from './config/resolve-options.js';
import { ClusterError } from './errors/cluster.error.js';
import { WaitForMembersTimeoutError } from './errors/wait-for-members-timeout.error.js';
import type { ClusterEvent, Member } from './interfaces/member.interface.js';
import type { Leadership } from './membership/leadership.js';
import type { QuorumState } from './membership/quorum.js';
import { ClusterNode, type ClusterNodeSeams, type TopologyStatus } from './node/cluster-node.js';
import type {
  ClusterMessage,
  PublishOptions,
  PublishResult,
  RequestHandler,
  RequestOptions,
} from './messaging/cluster-message.interface.js';
import type { ClusterMessaging } from './messaging/cluster-messaging.js';
import type { Topology } from './strategies/strategy.factory.js';

/** Default of `waitForMembers`' timeout. */
const WAIT_FOR_MEMBERS_TIMEOUT_MS = 30_000;

/**
 * The cluster as the app sees it: this node, the live membership, events, the leader, and
 * messaging to the other members. Inject it anywhere once `ClusterModule` is imported.
 *
 * With no peers (single instance, `LIBCLUSTER_STRATEGY=none`, or no `NODE_COOKIE`) it behaves
 * exactly as a one-member cluster: `members()` is `[self]`, the node is its own leader, and
 * published messages reach local subscribers.
 *
 * ```ts
 * @Injectable()
 * export class CacheService {
 *   constructor(private readonly cluster: ClusterService) {
 *     cluster.subscribe<string>('feature_rollouts').subscribe(({ payload }) => this.evict(payload));
 *   }
 *   invalidate(key: string) {
 *     this.cluster.publish('feature_rollouts', key);
 *   }
 * }
 * ```
 */
@Injectable()
export class ClusterService
  implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown
{
  private readonly node: ClusterNode;
  private readonly messaging: ClusterMessaging;

  /** Current members, self included, sorted by name: on subscribe, then on every change. */
  readonly members$: Observable<Member[]>;
  /** `join`, `leave` and `down` events of remote members. */
  readonly events$: Observable<ClusterEvent>;
  /**
   * The leader (oldest member of this node's view; `null` below quorum): on subscribe, then on
   * every change.
   */
  readonly leader$: Observable<Member | null>;
  /**
   * The agreed leader and its fencing term: on subscribe, then on every change. The term is
   * larger for every new leader and the same on every member that follows it; pass it with
   * writes to shared storage, which rejects a term lower than one it has seen:
   *
   * ```ts
   * cluster.leadership$.subscribe(({ leader, term }) => { if (leader?.self) this.term = term; });
   * await db.query('UPDATE jobs SET owner = $1, term = $2 WHERE id = $3 AND term <= $2', [...]);
   * ```
   *
   * The leader knows its term at once; a follower shows `{ leader: null }` until the leader's
   * announcement arrives over the link (one round trip).
   */
  readonly leadership$: Observable<Leadership>;
  /** The quorum guard's state (`CLUSTER_QUORUM`): on subscribe, then on every change. */
  readonly quorum$: Observable<QuorumState>;

  constructor(
    @Inject(CLUSTER_RESOLVED_OPTIONS) private readonly options: ResolvedClusterOptions,
    @Inject(CLUSTER_TOPOLOGIES) topologies: Topology[],
    @Optional() @Inject(CLUSTER_NODE_SEAMS) seams: ClusterNodeSeams = {},
  ) {
    this.node = new ClusterNode(options, topologies, seams);
    this.messaging = this.node.messaging;
    this.members$ = this.node.membership.members$;
    this.events$ = this.node.membership.events$;
    this.leader$ = this.node.leadership.leader$;
    this.leadership$ = this.node.leadership.leadership$;
    this.quorum$ = this.node.leadership.quorum$;
  }

  /** `'single-node'` when the node runs alone by configuration (no cookie, or strategy none). */
  get mode(): 'cluster' | 'single-node' {
    return this.options.mode;
  }

  /** This node: name, incarnation, start time and link endpoint. */
  get self(): Member {
    return this.node.membership.self;
  }

  /** Current members, self included, sorted by name. */
  members(): Member[] {
    return this.node.membership.members();
  }

  /**
   * The oldest member (earliest start, ties by name); the same on every converged node. `null`
   * while this node's side is below quorum (`CLUSTER_QUORUM`).
   */
  leader(): Member | null {
    return this.node.leadership.leader();
  }

  /** True when this node is the leader. */
  isLeader(): boolean {
    return this.node.leadership.isLeader();
  }

  /** The agreed leader and its fencing term (see `leadership$`). */
  leadership(): Leadership {
    return this.node.leadership.leadership();
  }

  /**
   * The quorum guard: `required` members (null without a guard), `reachable` members in this
   * node's view (self included), and `ok` — false means this side has no leader.
   */
  get quorum(): QuorumState {
    return this.node.leadership.quorum;
  }

  /** Discovery state of each topology (strategy errors show here and in health). */
  discovery(): TopologyStatus[] {
    return this.node.discovery();
  }

  /**
   * Resolves with the members once at least `count` are present (self included).
   * @throws WaitForMembersTimeoutError after `timeoutMs` (default 30 s)
   */
  async waitForMembers(count: number, options: { timeoutMs?: number } = {}): Promise<Member[]> {
    const timeoutMs = options.timeoutMs ?? WAIT_FOR_MEMBERS_TIMEOUT_MS;
    try {
      return await firstValueFrom(
        this.members$.pipe(
          filter((members) => members.length >= count),
          timeout({ first: timeoutMs }),
        ),
      );
    } catch (error) {
      if (error instanceof TimeoutError) {
        throw new WaitForMembersTimeoutError(
          count,
          this.members().map((m) => m.name),
          timeoutMs,
        );
      }
      throw new ClusterError(`the cluster shut down while waiting for ${count} members`, {
        cause: error,
      });
    }
  }

  /**
   * Publishes to every subscriber of `topic` on every member, this node included unless
   * `options.includeSelf` is `false`.
   */
  publish<T>(topic: string, payload: T, options?: PublishOptions): PublishResult {
    return this.messaging.publish(topic, payload, options);
  }

  /** Messages published or sent to `topic`, from any member. */
  subscribe<T = unknown>(topic: string): Observable<ClusterMessage<T>> {
    return this.messaging.subscribe<T>(topic);
  }

  /** Sends to `topic` subscribers of one member. */
  send<T>(node: string, topic: string, payload: T): void {
    this.messaging.send(node, topic, payload);
  }

  /** Asks one member's `handle(topic)` handler and resolves with its reply. */
  request<R = unknown, T = unknown>(
    node: string,
    topic: string,
    payload: T,
    options?: RequestOptions,
  ): Promise<R> {
    return this.messaging.request<R, T>(node, topic, payload, options);
  }

  /** Answers requests on `topic`; returns the function that removes the handler. */
  handle<T = unknown, R = unknown>(topic: string, fn: RequestHandler<T, R>): () => void {
    return this.messaging.handle<T, R>(topic, fn);
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.node.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.node.leave();
  }

  async onApplicationShutdown(): Promise<void> {
    this.messaging.close();
    await this.node.close();
  }
}
