import { appendMethodMetadata } from './append-metadata.js';
import { CLUSTER_SUBSCRIBE_METADATA } from './decorator.constants.js';

/**
 * Calls the decorated method with every `ClusterMessage` that reaches this node on `topic`
 * (from `publish()` on any member, self included, or `send()` to this node). Works on
 * providers and controllers; may be stacked. A throw or rejection is logged and does not stop
 * later messages.
 *
 * @example
 * ```ts
 * @ClusterSubscribe('cache:invalidate')
 * invalidate(message: ClusterMessage<{ key: string }>) { this.cache.delete(message.payload.key); }
 * ```
 */
export function ClusterSubscribe(topic: string): MethodDecorator {
  if (typeof topic !== 'string' || topic.length === 0) {
    throw new TypeError('@ClusterSubscribe: topic must be a non-empty string');
  }
  return appendMethodMetadata(CLUSTER_SUBSCRIBE_METADATA, [topic]);
}
