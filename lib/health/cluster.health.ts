import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { ClusterService } from '../cluster.service.js';

/** Options of `ClusterHealthIndicator.isHealthy()`. */
export interface ClusterHealthOptions {
  /** Members (self included) needed to be healthy. @default 1 */
  minMembers?: number;
  /**
   * Down while this node's side is below quorum (`CLUSTER_QUORUM`), so a load balancer or
   * orchestrator can take the minority side out. Without a guard, quorum is always held.
   * @default false: quorum is reported in the details only
   */
  requireQuorum?: boolean;
}

/** What the indicator reports under its key, besides `status`. */
export interface ClusterHealthDetails {
  [key: string]: unknown;
  /** `cluster`, or `single-node` when the node runs alone by configuration. */
  mode: 'cluster' | 'single-node';
  /** Number of members, self included. */
  members: number;
  /** The required minimum. */
  minMembers: number;
  /** Member names, sorted. */
  memberNames: string[];
  /** Name of this node. */
  self: string;
  /** Name of the leader, or null. */
  leader: string | null;
  /** The quorum guard: members required (null without a guard), reachable, and whether held. */
  quorum: { required: number | null; reachable: number; ok: boolean };
  /** Each topology's discovery state. */
  discovery: { topology: string; strategy: string; ok: boolean; error?: string }[];
  /** Every discovery error as `topology (strategy): message`; present only when there are some. */
  errors?: string[];
  /** Why the indicator is down; present only when it is. */
  message?: string;
}

/**
 * Health indicator of the cluster for `@nestjs/terminus` (v11+, built on
 * `HealthIndicatorService`; tested with v12). Up when every topology's discovery works, at
 * least `minMembers` members (self included) are present and, with `requireQuorum`, the node's
 * side holds quorum; the details
 * list the members, the leader, the mode and every discovery error (a gossip port in use, an
 * EC2 API failure, …).
 *
 * `@nestjs/terminus` is an optional peer dependency: this file is the only one that imports
 * it, and it is exported from the `nestjs-cluster/health` entry point, not the main one.
 * Provide the indicator in a module that imports `TerminusModule` (and sees `ClusterModule`):
 *
 * ```ts
 * import { ClusterHealthIndicator } from 'nestjs-cluster/health';
 *
 * @Module({ imports: [TerminusModule], controllers: [HealthController], providers: [ClusterHealthIndicator] })
 * export class HealthModule {}
 *
 * @Get('health') @HealthCheck()
 * check() { return this.health.check([() => this.cluster.isHealthy('cluster', { minMembers: 2 })]); }
 * ```
 */
@Injectable()
export class ClusterHealthIndicator {
  constructor(
    private readonly cluster: ClusterService,
    private readonly healthIndicatorService: HealthIndicatorService,
  ) {}

  /**
   * Checks discovery and membership.
   * @param key key of the result in the terminus report @default 'cluster'
   */
  isHealthy<const Key extends string = 'cluster'>(
    key: Key = 'cluster' as Key,
    options: ClusterHealthOptions = {},
  ): HealthIndicatorResult<Key> {
    const indicator = this.healthIndicatorService.check(key);
    const minMembers = options.minMembers ?? 1;
    const members = this.cluster.members();
    const discovery = this.cluster
      .discovery()
      .map(({ topology, strategy, ok, error }) =>
        error === undefined ? { topology, strategy, ok } : { topology, strategy, ok, error },
      );
    const errors = discovery
      .filter((status) => !status.ok)
      .map(
        (status) =>
          `${status.topology} (${status.strategy}): ${status.error ?? 'discovery failed'}`,
      );
    const details: ClusterHealthDetails = {
      mode: this.cluster.mode,
      members: members.length,
      minMembers,
      memberNames: members.map((member) => member.name).sort(),
      self: this.cluster.self.name,
      leader: this.cluster.leader()?.name ?? null,
      quorum: { ...this.cluster.quorum },
      discovery,
    };
    if (errors.length > 0) details.errors = errors;

    const problems: string[] = [];
    if (members.length < minMembers)
      problems.push(`${members.length} of ${minMembers} required members`);
    if (errors.length > 0) problems.push(`discovery failing: ${errors.join('; ')}`);
    if (options.requireQuorum === true && !details.quorum.ok)
      problems.push(
        `below quorum: ${details.quorum.reachable} of ${details.quorum.required} required members reachable`,
      );
    if (problems.length === 0) return indicator.up(details);
    details.message = problems.join('; ');
    return indicator.down(details);
  }
}
