export { OnClusterEvent } from './on-cluster-event.decorator.js';
export { ClusterSubscribe } from './cluster-subscribe.decorator.js';
export { ClusterHandle } from './cluster-handle.decorator.js';
export { LeaderOnly } from './leader-only.decorator.js';
export type { LeaderCheck } from './leader-only.decorator.js';
