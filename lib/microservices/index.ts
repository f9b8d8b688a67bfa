export { ClusterTransport } from './cluster-transport.server.js';
export type {
  ClusterTransportOptions,
  ClusterTransportStatus,
} from './cluster-transport.server.js';
export { ClusterClientProxy, CLUSTER_CLIENT_DEFAULTS } from './cluster-client.proxy.js';
export type { ClusterClientOptions, ClusterClientStatus } from './cluster-client.proxy.js';
export { ClusterContext } from './cluster.context.js';
export type { ClusterContextArgs } from './cluster.context.js';
export { CLUSTER_TRANSPORT, DEFAULT_TRANSPORT_NAMESPACE } from './cluster-transport.constants.js';
export { NoPatternHandlerError } from '../errors/no-pattern-handler.error.js';
