import { appendMethodMetadata } from './append-metadata.js';
import { CLUSTER_HANDLE_METADATA } from './decorator.constants.js';

/**
 * Makes the decorated method this node's handler of requests on `topic`
 * (`ClusterService.request(node, topic, payload)` from any member, self included). The method
 * receives `(payload, from)`; its return value (or resolved value) is the reply; a throw or
 * rejection reaches the caller as `RemoteHandlerError`. One handler per topic per node: a
 * second one fails at bootstrap with `DuplicateHandlerError`.
 *
 * @example
 * ```ts
 * @ClusterHandle('stats')
 * stats(_payload: unknown, from: string) { return { node: this.cluster.self.name, load: os.loadavg()[0] }; }
 * ```
 */
export function ClusterHandle(topic: string): MethodDecorator {
  if (typeof topic !== 'string' || topic.length === 0) {
    throw new TypeError('@ClusterHandle: topic must be a non-empty string');
  }
  return appendMethodMetadata(CLUSTER_HANDLE_METADATA, [topic]);
}
