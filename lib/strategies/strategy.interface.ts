import type { LoggerService } from '@nestjs/common';
import type { Member, NodeIdentity } from '../interfaces/member.interface.js';

/** An endpoint a strategy discovered: where a node may accept links. */
export interface DiscoveredEndpoint {
  readonly host: string;
  readonly port: number;
  /**
   * The node name expected at this endpoint, when the strategy knows it
   * (gossip heartbeats carry it; EC2 derives `<app_prefix>@<ip>`). Used for logs and to
   * skip endpoints that are already members; the handshake is what proves identity.
   */
  readonly name?: string;
  /**
   * The incarnation expected there, when the strategy knows it (gossip heartbeats and peer
   * exchange carry it): an incarnation known to have left is not dialled again.
   */
  readonly incarnation?: string;
}

/**
 * What the core gives a strategy. A strategy only *finds endpoints*: it hands the full
 * current set to `connect`, and the core diffs, dials with backoff, excludes itself and
 * logs the results, the same way for every strategy (libcluster's `connect_nodes`).
 */
export interface StrategyContext {
  /** Name of the topology this strategy instance serves (`topologies` key). */
  readonly topology: string;
  /** The local node (name, incarnation, link endpoint already bound). */
  readonly self: NodeIdentity;
  /** Logger whose messages are prefixed with the topology name. */
  readonly logger: LoggerService;
  /** True when discovery debug logging is on (`LIBCLUSTER_DEBUG`). */
  readonly debug: boolean;
  /**
   * Hands over the full set of endpoints this topology currently discovers. The core
   * dials those without a link and keeps retrying them while they stay in the set;
   * endpoints that drop out of a later set are no longer dialled and their links are
   * closed (unless another topology still discovers them).
   */
  connect(endpoints: readonly DiscoveredEndpoint[]): void;
  /** Removes endpoints from this topology's set at once and closes their links. */
  disconnect(endpoints: readonly DiscoveredEndpoint[]): void;
  /** The current members, self included. */
  members(): Member[];
  /**
   * Reports that discovery is failing (poll error, socket that cannot open). The core keeps
   * the current members and shows the error in health. Never call `connect([])` on failure.
   */
  reportError(error: unknown): void;
  /** Reports that discovery works again (clears the error shown in health). */
  reportOk(): void;
  /**
   * Reports another process that announces this node's own name (gossip hears it): the core
   * logs it as an error naming `NODE_NAME` and, when that process is the newer one, this node
   * runs no leader-only work. Optional for contexts outside a node.
   */
  reportNameClash?(other: NodeIdentity, where: string): void;
  /**
   * True when this node is the cluster's leader (the oldest member, as
   * `ClusterService.isLeader()`); a node alone is its own leader. Lets a strategy that calls a
   * rate-limited API poll on one node only (the EC2 strategy does). Optional: a context
   * without it means "act as if leader".
   */
  isLeader?(): boolean;
  /**
   * Messages between this topology's strategy instances on every member, over the cluster's
   * messaging (topic `nestjs-cluster:discovery:<topology>`): what one strategy `publish`es,
   * the others' `subscribe` handlers receive with the sender's name (never the sender's own).
   * Lets one node share what it discovered. Optional: without it a strategy discovers alone.
   */
  readonly peers?: StrategyPeers;
}

/** See {@link StrategyContext.peers}. Payloads are JSON, at most 1 MiB. */
export interface StrategyPeers {
  /** Sends `payload` to this topology's strategy on every other member. */
  publish(payload: unknown): void;
  /** Calls `handler` for every payload another member's strategy publishes; returns the unsubscribe function. */
  subscribe(handler: (payload: unknown, from: string) => void): () => void;
}

/** A discovery mechanism. One instance serves one topology. */
export interface ClusterStrategy {
  /** Starts discovery; may call `ctx.connect` at once and then whenever the set changes. */
  start(ctx: StrategyContext): void | Promise<void>;
  /** Stops every timer and socket of the strategy. */
  stop(): void | Promise<void>;
}

/** A strategy class an app plugs in: constructed with its topology's `config`. */
export interface ClusterStrategyClass<C = unknown> {
  new (config: C): ClusterStrategy;
}
