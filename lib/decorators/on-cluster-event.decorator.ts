import type { ClusterEventType } from '../interfaces/member.interface.js';
import { appendMethodMetadata } from './append-metadata.js';
import { CLUSTER_EVENT_METADATA } from './decorator.constants.js';

/**
 * Calls the decorated method with every `ClusterEvent` of the given type(s) (`join`,
 * `leave`, `down`, `unreachable`, `reachable`). Works on providers and controllers; may be stacked. A throw or rejection
 * in the method is logged and does not stop later events.
 *
 * @example
 * ```ts
 * @OnClusterEvent('join')
 * greet(event: ClusterEvent) { this.logger.log(`${event.member.name} joined`); }
 *
 * @OnClusterEvent('leave', 'down')
 * forget(event: ClusterEvent) { this.sessions.dropOwnedBy(event.member.name); }
 * ```
 */
export function OnClusterEvent(
  ...types: [ClusterEventType, ...ClusterEventType[]]
): MethodDecorator {
  const known: readonly ClusterEventType[] = ['join', 'leave', 'down', 'unreachable', 'reachable'];
  for (const type of types) {
    if (!known.includes(type)) {
      throw new TypeError(
        `@OnClusterEvent: unknown event type "${String(type)}" (use ${known.join(', ')})`,
      );
    }
  }
  return appendMethodMetadata(CLUSTER_EVENT_METADATA, types);
}
