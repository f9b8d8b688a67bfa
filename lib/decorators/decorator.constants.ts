/** Metadata key of `@OnClusterEvent()`: the event types a method receives. */
export const CLUSTER_EVENT_METADATA = 'CLUSTER:ON_EVENT';
/** Metadata key of `@ClusterSubscribe()`: the topics a method receives messages of. */
export const CLUSTER_SUBSCRIBE_METADATA = 'CLUSTER:SUBSCRIBE';
/** Metadata key of `@ClusterHandle()`: the topics a method answers requests of. */
export const CLUSTER_HANDLE_METADATA = 'CLUSTER:HANDLE';
/** Metadata key of `@LeaderOnly()`: true on a method that runs on the leader only. */
export const LEADER_ONLY_METADATA = 'CLUSTER:LEADER_ONLY';
/**
 * Metadata key set on a class prototype by every cluster method decorator: the explorer reads
 * the methods of only the providers whose prototype chain carries it. Reflect metadata (not a
 * module-level set), so decorators and explorer agree even when an app loads two copies of
 * the library (its ESM and CommonJS builds).
 */
export const CLUSTER_DECORATED_METADATA = 'CLUSTER:DECORATED';
/**
 * Hidden, non-enumerable property the explorer sets on every instance that has `@LeaderOnly()`
 * methods: the `ClusterService` of the application that instance belongs to.
 */
export const LEADER_ONLY_CLUSTER_REF: unique symbol = Symbol('CLUSTER:LEADER_ONLY_CLUSTER_REF');
/** Hidden per-instance flag: the "no ClusterService wired" warning was logged for it. */
export const LEADER_ONLY_WARNED: unique symbol = Symbol('CLUSTER:LEADER_ONLY_WARNED');
