import { Injectable, Logger } from '@nestjs/common';
import { Interval } from '@nestjs/schedule';
import { ClusterService, LeaderOnly } from '../../lib/index.js';

/** Topic on which every run of a leader-only job is announced. */
export const LEADER_JOB_TOPIC = 'leader-job';
/** How often the leader runs the digest, ms. */
export const DIGEST_INTERVAL_MS = 2_000;

/** What the leader publishes after each run. */
export interface JobRun {
  job: string;
  /** Node that ran it: always the leader of the moment. */
  node: string;
  /** Run number on that node. */
  run: number;
  /** Members the node saw during the run. */
  members: number;
  at: string;
}

/**
 * A periodic job that must run once per cluster, not once per node (a digest e-mail, a
 * cleanup): `@LeaderOnly()` skips it on every node but the leader. When the leader goes,
 * the next oldest node takes over at its next tick.
 */
@Injectable()
export class DigestJob {
  private readonly logger = new Logger(DigestJob.name);
  private runs = 0;

  constructor(private readonly cluster: ClusterService) {}

  @Interval('digest', DIGEST_INTERVAL_MS)
  @LeaderOnly()
  digest(): void {
    this.runs += 1;
    const run: JobRun = {
      job: 'digest',
      node: this.cluster.self.name,
      run: this.runs,
      members: this.cluster.members().length,
      at: new Date().toISOString(),
    };
    this.logger.debug(`digest run ${run.run} on ${run.node}`);
    this.cluster.publish(LEADER_JOB_TOPIC, run);
  }
}
