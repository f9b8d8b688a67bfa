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
