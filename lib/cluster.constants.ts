/** Injection token of the resolved, validated options (`ResolvedClusterOptions`). */
export const CLUSTER_RESOLVED_OPTIONS = 'CLUSTER:RESOLVED_OPTIONS';
/** Injection token of the strategy instances, one per topology. */
export const CLUSTER_TOPOLOGIES = 'CLUSTER:TOPOLOGIES';
