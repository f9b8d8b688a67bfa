import { Logger } from '@nestjs/common';
import { markClusterDecorated } from './append-metadata.js';
import {
  LEADER_ONLY_CLUSTER_REF,
  LEADER_ONLY_METADATA,
  LEADER_ONLY_WARNED,
} from './decorator.constants.js';

/** What `@LeaderOnly()` needs from the application's `ClusterService`. */
export interface LeaderCheck {
  isLeader(): boolean;
}

type HostInstance = {
  [LEADER_ONLY_CLUSTER_REF]?: LeaderCheck;
  [LEADER_ONLY_WARNED]?: boolean;
};

/**
 * Runs the decorated method only on the cluster leader (the oldest member). Called on any
 * other node, the call is skipped: it returns `undefined` (not a promise, even for an async
 * method) and logs at debug level. Meant for work that must happen once per cluster, such as
 * `@Cron()` jobs:
 *
 * ```ts
 * @Cron('0 * * * *')
 * @LeaderOnly()
 * async hourlyReport() { ... }
 * ```
 *
 * How it works: the decorator replaces the method by a wrapper at decoration time, so whoever
 * captures the method (`@nestjs/schedule`, an event emitter, a direct call) gets the wrapper,
 * whatever the decorator order; metadata set on the method by other decorators is kept. The
 * wrapper asks the `ClusterService` of the instance's own application, which `ClusterModule`
 * attaches to every provider and controller with `@LeaderOnly()` methods under a hidden symbol
 * property, so two applications in one process never see each other's leadership.
 *
 * Without a cluster (the instance is not managed by an application that imports
 * `ClusterModule`, or the method is called on a plain object), the method runs, and a warning
 * says so once per instance: a single node is its own leader. Instance methods only.
 *
 * Leadership is checked at each call, so a job moves to the new leader as soon as membership
 * changes. With a quorum guard (`CLUSTER_QUORUM`), a node whose side of a partition is below
 * quorum has no leader, so the job runs on no node of that side; for writes to shared storage,
 * pass the fencing term (`ClusterService.leadership().term`) along. Combined with `@ClusterSubscribe()` or `@OnClusterEvent()`, only the leader handles
 * the message or event; on a `@ClusterHandle()` method, a follower replies `undefined`.
 */
export function LeaderOnly(): MethodDecorator {
  return (target, propertyKey, descriptor) => {
    const original = descriptor.value as unknown;
    if (typeof original !== 'function') {
      throw new TypeError('@LeaderOnly() can only decorate methods');
    }
    const label = `${(target as { constructor?: { name?: string } }).constructor?.name ?? 'anonymous'}.${String(propertyKey)}`;
    const logger = new Logger('LeaderOnly');
    let warnedWithoutInstance = false;

    const wrapper = function (this: unknown, ...args: unknown[]): unknown {
      const host = typeof this === 'object' && this !== null ? (this as HostInstance) : undefined;
      const cluster = host?.[LEADER_ONLY_CLUSTER_REF];
      if (!cluster) {
        const alreadyWarned = host ? host[LEADER_ONLY_WARNED] === true : warnedWithoutInstance;
        if (!alreadyWarned) {
          if (host) {
            Object.defineProperty(host, LEADER_ONLY_WARNED, { value: true, configurable: true });
          } else {
            warnedWithoutInstance = true;
          }
          logger.warn(
            `${label}: no ClusterService is wired to this instance (is ClusterModule imported?); running it as a single node`,
          );
        }
        return (original as (...a: unknown[]) => unknown).apply(this, args);
      }
      if (!cluster.isLeader()) {
        logger.debug(`${label} skipped: this node is not the cluster leader`);
        return undefined;
      }
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    };

    for (const key of Reflect.getOwnMetadataKeys(original) as unknown[]) {
      Reflect.defineMetadata(key, Reflect.getOwnMetadata(key, original), wrapper);
    }
    Object.defineProperty(wrapper, 'name', {
      value: (original as { name: string }).name,
      configurable: true,
    });
    Reflect.defineMetadata(LEADER_ONLY_METADATA, true, wrapper);
    markClusterDecorated(target);
    descriptor.value = wrapper as typeof descriptor.value;
    return descriptor;
  };
}

/** Attaches an application's cluster to an instance with `@LeaderOnly()` methods. */
export function attachLeaderCheck(instance: object, cluster: LeaderCheck): void {
  Object.defineProperty(instance, LEADER_ONLY_CLUSTER_REF, {
    value: cluster,
    configurable: true,
    enumerable: false,
    writable: true,
  });
}
