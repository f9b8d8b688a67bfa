import type { ClusterMessagingOptions } from '../messaging/cluster-message.interface.js';
import type { ClusterStrategy, ClusterStrategyClass } from '../strategies/strategy.interface.js';
import type {
  DnsStrategyOptions,
  Ec2StrategyOptions,
  GossipStrategyOptions,
  KubernetesStrategyOptions,
  StaticStrategyOptions,
} from './strategy-options.interface.js';

/** Names of the built-in strategies. */
export type BuiltinStrategyName = 'gossip' | 'ec2' | 'static' | 'dns' | 'kubernetes' | 'none';

/** One configured strategy instance (libcluster's topology). */
export type TopologyOptions =
  | { strategy: 'gossip'; config?: GossipStrategyOptions }
  | { strategy: 'ec2'; config: Ec2StrategyOptions }
  | { strategy: 'static'; config: StaticStrategyOptions }
  | { strategy: 'dns'; config: DnsStrategyOptions }
  | { strategy: 'kubernetes'; config: KubernetesStrategyOptions }
  | { strategy: 'none'; config?: undefined }
  | { strategy: ClusterStrategyClass<never>; config?: unknown }
  | { strategy: ClusterStrategy; config?: undefined };

/**
 * The shorthand for one topology named `default`: `strategy` and its `strategyConfig`,
 * typed together (a discriminated union on `strategy`), so that a misspelt key such as
 * `{ strategy: 'static', strategyConfig: { hostz: [...] } }` does not compile.
 */
export type StrategyShorthand =
  | { strategy?: undefined; strategyConfig?: GossipStrategyOptions }
  | { strategy: 'gossip'; strategyConfig?: GossipStrategyOptions }
  | { strategy: 'ec2'; strategyConfig: Ec2StrategyOptions }
  | { strategy: 'static'; strategyConfig: StaticStrategyOptions }
  | { strategy: 'dns'; strategyConfig: DnsStrategyOptions }
  | { strategy: 'kubernetes'; strategyConfig: KubernetesStrategyOptions }
  | { strategy: 'none'; strategyConfig?: undefined }
  | { strategy: ClusterStrategyClass<never>; strategyConfig?: unknown }
  | { strategy: ClusterStrategy; strategyConfig?: undefined };

/**
 * Options of `ClusterModule.forRoot()`: the {@link ClusterModuleBaseOptions} plus either
 * `topologies` or the {@link StrategyShorthand}. Every field is optional;
 * `clusterOptionsFromEnv()` builds them from the environment variables of the README.
 */
export type ClusterModuleOptions = ClusterModuleBaseOptions & StrategyShorthand;

/** The options of `ClusterModule.forRoot()` other than `strategy` / `strategyConfig`. */
export interface ClusterModuleBaseOptions {
  /**
   * Shared secret of the cluster (`NODE_COOKIE`). Links authenticate with it and gossip
   * packets are keyed from it. @default unset: the node runs single-node and says so once
   */
  cookie?: string;
  /**
   * Cookies still accepted during a rotation (`NODE_COOKIE_PREVIOUS`, comma-separated): a
   * dialer that proves one of them is answered under that same cookie, and gossip sealed with
   * one is read (when no gossip secret is set); this node never dials or seals with them.
   * Requires `cookie`. @default none
   */
  previousCookies?: string[];
  /**
   * A weak cookie — shorter than 16 characters, or a known placeholder such as `change-me` —
   * stops start-up with a configuration error instead of a warning
   * (`CLUSTER_REQUIRE_STRONG_COOKIE`). @default false
   */
  requireStrongCookie?: boolean;
  /** Full node name (`NODE_NAME`). @default `<appName>@<host>` */
  nodeName?: string;
  /** Node-name prefix (`APP_NAME`). @default 'app' */
  appName?: string;
  /** Host part of the default node name. @default `HOSTNAME`, else `os.hostname()` */
  host?: string;
  /** TCP port for links; 0 picks any free port (`CLUSTER_PORT`). @default 45893 */
  port?: number;
  /** Address the link listener binds (`CLUSTER_BIND_ADDRESS`). @default '0.0.0.0' */
  bindAddress?: string;
  /** Address peers dial (`CLUSTER_ADVERTISE_ADDRESS`). @default the node's host */
  advertiseAddress?: string;
  /**
   * Failure-detection tick, ms (`CLUSTER_HEARTBEAT_INTERVAL_MS`): links are checked this often.
   * An idle link is probed once it has been silent for `failureTimeoutMs − 2 × heartbeatIntervalMs`
   * (3 s with the defaults) — any frame counts as a heartbeat — so a peer whose event loop stalls
   * for longer than about `2 × heartbeatIntervalMs` may be taken for down; raise
   * `failureTimeoutMs` for apps with long synchronous work. @default 1000
   */
  heartbeatIntervalMs?: number;
  /** Silence after which a peer is down, ms. @default 5000 */
  failureTimeoutMs?: number;
  /** Handshake deadline, ms. @default 10000 */
  handshakeTimeoutMs?: number;
  /** Inbound connections allowed to be in handshake at once. @default 256 */
  maxPendingHandshakes?: number;
  /**
   * Inbound handshakes one source address may hold once half of `maxPendingHandshakes` is
   * taken; more from it are closed on arrival. @default 4
   */
  maxPendingHandshakesPerSource?: number;
  /** Largest frame accepted or sent, bytes. @default 16 MiB */
  maxFrameBytes?: number;
  /** Bytes queued on one link before sends to it fail. @default 8 MiB */
  maxWriteBufferBytes?: number;
  /** Debug logging of discovery (`LIBCLUSTER_DEBUG`). @default false */
  debug?: boolean;
  /**
   * Split-brain guard (`CLUSTER_QUORUM`): below quorum a node has no leader (`leader()` null,
   * `@LeaderOnly()` skips). An integer from 1 to 10000 is a fixed member count (Akka's
   * static-quorum: pick more than half of the cluster's size); `'majority'` is more than half
   * of the largest membership seen (Akka's keep-majority; a tie goes to the side with the
   * lowest-ordered name). @default unset: no guard, every side of a partition has a leader
   */
  quorum?: number | 'majority';
  /**
   * `quorum: 'majority'`: how long a side that holds quorum keeps an unchanged view before that
   * view becomes the reference, so members that crashed for good stop counting, ms
   * (`CLUSTER_QUORUM_STABLE_MS`). @default 60000
   */
  quorumStableMs?: number;
  /**
   * Discovery topologies by name (libcluster's `topologies`). Shorthand: `strategy` +
   * `strategyConfig` for one topology named `default`.
   * @default { default: { strategy: 'gossip' } }
   */
  topologies?: Record<string, TopologyOptions>;
  /**
   * Messaging limits of `ClusterService` (publish, send, request/reply):
   * `maxPayloadBytes` (largest encoded payload, @default 1 MiB; must be below `maxFrameBytes`)
   * and `defaultRequestTimeoutMs` (`request()` without `timeoutMs`, @default 5000).
   */
  messaging?: ClusterMessagingOptions;
  /**
   * Links over mutual TLS 1.3 (`CLUSTER_TLS_CERT_FILE`, `CLUSTER_TLS_KEY_FILE`,
   * `CLUSTER_TLS_CA_FILE`: all three together). Every node presents a certificate issued by
   * the CA, for the host of its node name (SAN DNS or IP); the cookie handshake still runs
   * inside. The files are re-read when they change. @default unset: plain TCP
   */
  tls?: ClusterTlsOptions;
}

/** Mutual TLS for links (see `ClusterModuleBaseOptions.tls`). */
export interface ClusterTlsOptions {
  /** PEM certificate of this node, intermediates after it (`CLUSTER_TLS_CERT_FILE`). */
  certFile?: string;
  /** PEM private key of the certificate, unencrypted (`CLUSTER_TLS_KEY_FILE`). */
  keyFile?: string;
  /** PEM certificate(s) of the CA that issues the nodes' certificates (`CLUSTER_TLS_CA_FILE`). */
  caFile?: string;
  /**
   * How often the files are checked for changes, ms (`CLUSTER_TLS_RELOAD_INTERVAL_MS`); a
   * change is loaded once it has settled for one more check. @default 5000
   */
  reloadIntervalMs?: number;
}
