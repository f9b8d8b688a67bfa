import { CLUSTER_DEFAULTS } from '../lib/config/cluster.defaults.js';
import type { ResolvedClusterOptions } from '../lib/config/resolve-options.js';
import { MESSAGING_DEFAULTS } from '../lib/messaging/cluster-messaging.js';

/** What differs between the in-memory nodes of a simulation or a test world. */
export interface InMemoryNodeFields {
  readonly nodeName: string;
  /** The node's address on the in-memory network (bind and advertise). */
  readonly host: string;
  readonly port: number;
  readonly incarnation: string;
  readonly startedAt: number;
  readonly cookie: string;
  readonly appName: string;
}

/**
 * The resolved options of one node on the in-memory network: `CLUSTER_DEFAULTS` for every
 * link and messaging setting, no topologies (discovery is given to `ClusterNode` directly),
 * then `overrides`. The one place the simulator and the test world build node options, so a
 * new option is added here once.
 */
export function inMemoryNodeOptions(
  fields: InMemoryNodeFields,
  overrides: Partial<ResolvedClusterOptions> = {},
): ResolvedClusterOptions {
  return {
    mode: 'cluster',
    cookie: fields.cookie,
    previousCookies: [],
    nodeName: fields.nodeName,
    incarnation: fields.incarnation,
    startedAt: fields.startedAt,
    appName: fields.appName,
    port: fields.port,
    bindAddress: fields.host,
    advertiseAddress: fields.host,
    heartbeatIntervalMs: CLUSTER_DEFAULTS.heartbeatIntervalMs,
    failureTimeoutMs: CLUSTER_DEFAULTS.failureTimeoutMs,
    handshakeTimeoutMs: CLUSTER_DEFAULTS.handshakeTimeoutMs,
    maxPendingHandshakes: CLUSTER_DEFAULTS.maxPendingHandshakes,
    maxPendingHandshakesPerSource: CLUSTER_DEFAULTS.maxPendingHandshakesPerSource,
    maxFrameBytes: CLUSTER_DEFAULTS.maxFrameBytes,
    maxWriteBufferBytes: CLUSTER_DEFAULTS.maxWriteBufferBytes,
    reconnectBaseMs: CLUSTER_DEFAULTS.reconnectBaseMs,
    reconnectMaxMs: CLUSTER_DEFAULTS.reconnectMaxMs,
    debug: false,
    topologies: [],
    messaging: MESSAGING_DEFAULTS,
    ...overrides,
  };
}
