import { Injectable, Logger } from '@nestjs/common';
import {
  type ClusterEvent,
  type ClusterMessage,
  ClusterService,
  ClusterSubscribe,
  OnClusterEvent,
  type PublishResult,
} from '../../lib/index.js';

/** Topic of flag invalidations, as in Torus (`feature_rollouts`). */
export const FEATURE_ROLLOUTS_TOPIC = 'feature_rollouts';

/** One feature flag as this node's cache holds it. */
export interface FeatureFlag {
  name: string;
  enabled: boolean;
  /** When it was set (ISO 8601); the latest write wins on every node. */
  updatedAt: string;
  /** Node where it was set. */
  updatedBy: string;
}

/** Payload published on `feature_rollouts` when a flag changes. */
interface FlagInvalidation {
  flag: FeatureFlag;
}

/**
 * A per-node feature-flag cache kept coherent by pub/sub: a write on one node is applied
 * locally and published on `feature_rollouts`; every node applies it to its own cache, and
 * reads never leave the node. Concurrent writes of one flag resolve to the latest
 * `updatedAt` (ties: the greater node name) on every node.
 *
 * With a database behind the cache (as in Torus), the invalidation would only name the flag
 * and each node would re-read it. Here the cache is the only copy, so it carries the value,
 * and a node that joins is sent the flags it missed.
 */
@Injectable()
export class FlagsService {
  private readonly logger = new Logger(FlagsService.name);
  private readonly flags = new Map<string, FeatureFlag>();

  constructor(private readonly cluster: ClusterService) {}

  list(): FeatureFlag[] {
    return [...this.flags.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  get(name: string): FeatureFlag | undefined {
    return this.flags.get(name);
  }

  /** Sets a flag here and invalidates it on every other node. */
  set(name: string, enabled: boolean): { flag: FeatureFlag; published: PublishResult } {
    const flag: FeatureFlag = {
      name,
      enabled,
      updatedAt: new Date().toISOString(),
      updatedBy: this.cluster.self.name,
    };
    this.apply(flag);
    const invalidation: FlagInvalidation = { flag };
    return { flag, published: this.cluster.publish(FEATURE_ROLLOUTS_TOPIC, invalidation) };
  }

  @ClusterSubscribe(FEATURE_ROLLOUTS_TOPIC)
  onInvalidation({ payload, from }: ClusterMessage): void {
    const flag = parseInvalidation(payload);
    if (!flag) {
      this.logger.warn(`ignored a malformed ${FEATURE_ROLLOUTS_TOPIC} message from ${from}`);
      return;
    }
    if (this.apply(flag) && from !== this.cluster.self.name) {
      this.logger.log(`flag ${flag.name} = ${flag.enabled} (set on ${flag.updatedBy})`);
    }
  }

  /** A node that joins has an empty cache: send it ours (only to it). */
  @OnClusterEvent('join')
  onJoin({ member }: ClusterEvent): void {
    for (const flag of this.flags.values()) {
      const invalidation: FlagInvalidation = { flag };
      this.cluster.send(member.name, FEATURE_ROLLOUTS_TOPIC, invalidation);
    }
  }

  /** Applies a flag unless the cache holds the same or a newer write; true if it changed. */
  private apply(flag: FeatureFlag): boolean {
    const current = this.flags.get(flag.name);
    if (current && compareWrites(current, flag) >= 0) return false;
    this.flags.set(flag.name, flag);
    return true;
  }
}

function compareWrites(a: FeatureFlag, b: FeatureFlag): number {
  return a.updatedAt.localeCompare(b.updatedAt) || a.updatedBy.localeCompare(b.updatedBy);
}

function parseInvalidation(payload: unknown): FeatureFlag | undefined {
  const flag = (payload as Partial<FlagInvalidation> | null)?.flag as
    Partial<FeatureFlag> | undefined;
  if (
    typeof flag?.name === 'string' &&
    typeof flag.enabled === 'boolean' &&
    typeof flag.updatedAt === 'string' &&
    typeof flag.updatedBy === 'string'
  ) {
    return {
      name: flag.name,
      enabled: flag.enabled,
      updatedAt: flag.updatedAt,
      updatedBy: flag.updatedBy,
    };
  }
  return undefined;
}
