/** Cluster messaging topics of the microservices transport, for one transport `namespace`. */
export interface TransportTopics {
  /** Request/reply: `ClusterService.request(node, rpc, packet)`, answered by the server. */
  readonly rpc: string;
  /** Events: `ClusterService.publish(event, packet)`, received by every server. */
  readonly event: string;
  /** Request/reply: "which message patterns do you handle?" → `string[]`. */
  readonly patterns: string;
  /** Published by a server when its message patterns change (listen, close). */
  readonly patternsChanged: string;
}

/** Transport namespace used when none is given. */
export const DEFAULT_TRANSPORT_NAMESPACE = 'default';

/** The topics of a transport namespace. */
export function transportTopics(namespace: string): TransportTopics {
  const prefix = `nestjs-cluster:ms:${namespace}`;
  return {
    rpc: `${prefix}:rpc`,
    event: `${prefix}:event`,
    patterns: `${prefix}:patterns`,
    patternsChanged: `${prefix}:patterns-changed`,
  };
}

/** Transport id reported to Nest's processing hooks (`Server#transportId`). */
export const CLUSTER_TRANSPORT = Symbol('CLUSTER_TRANSPORT');

/** Nest's own text for a request no handler matches (`@nestjs/microservices` constants). */
export const NO_MESSAGE_HANDLER =
  'There is no matching message handler defined in the remote service.';

/** Body of `patternsChanged`. */
export interface PatternsAnnouncement {
  readonly patterns: string[];
}
