export { ClusterHealthIndicator } from './cluster.health.js';
export type { ClusterHealthDetails, ClusterHealthOptions } from './cluster.health.js';
