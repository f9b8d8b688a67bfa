/** Injection token of the resolved, validated options (`ResolvedClusterOptions`). */
export const CLUSTER_RESOLVED_OPTIONS = 'CLUSTER:RESOLVED_OPTIONS';
/** Injection token of the strategy instances, one per topology. */
export const CLUSTER_TOPOLOGIES = 'CLUSTER:TOPOLOGIES';
/**
 * Injection token of the `ClusterNodeSeams` (clock, randomness, network, loggers) the node is
 * built with: `{}` (the real ones) unless overridden, as `nestjs-cluster/testing` does.
 */
export const CLUSTER_NODE_SEAMS = 'CLUSTER:NODE_SEAMS';
/** Injection token of the validated options and the instance metadata read for them. */
export const CLUSTER_STARTUP_OPTIONS = 'CLUSTER:STARTUP_OPTIONS';
/** Injection token of the EC2 instance metadata (`undefined` when no topology uses EC2). */
export const CLUSTER_INSTANCE_METADATA = 'CLUSTER:INSTANCE_METADATA';
