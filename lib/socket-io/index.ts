export { ClusterIoAdapter } from './cluster-io.adapter.js';
export {
  ClusterSocketIoAdapter,
  CLUSTER_SOCKET_IO_DEFAULTS,
  createClusterAdapter,
} from './cluster-socket-io-adapter.js';
export type { ClusterSocketIoAdapterOptions } from './cluster-socket-io-adapter.js';
export { BINARY_KEY } from './wire-codec.js';
