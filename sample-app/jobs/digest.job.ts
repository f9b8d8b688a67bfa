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
  /** The leader's fencing term during the run (what a write to shared storage would carry). */
  term: number;
  at: string;
}

/** The runs of the leader-only job on this node (`GET /jobs/local`). */
export interface LocalRuns {
  node: string;
  /** Runs on this node since it started. */
  runs: number;
  /** Time of the last run here, or null. */
  lastRunAt: string | null;
  /** Term of the last run here, or null. */
  lastTerm: number | null;
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
  private lastRunAt: string | null = null;
  private lastTerm: number | null = null;

  constructor(private readonly cluster: ClusterService) {}

  /** What ran here: a node that is not the leader (or is below quorum) does not count up. */
  local(): LocalRuns {
    return {
      node: this.cluster.self.name,
      runs: this.runs,
      lastRunAt: this.lastRunAt,
      lastTerm: this.lastTerm,
    };
  }

  @Interval('digest', DIGEST_INTERVAL_MS)
  @LeaderOnly()
  digest(): void {
    this.runs += 1;
    const run: JobRun = {
      job: 'digest',
      node: this.cluster.self.name,
      run: this.runs,
      members: this.cluster.members().length,
      term: this.cluster.leadership().term,
      at: new Date().toISOString(),
    };
    this.lastRunAt = run.at;
    this.lastTerm = run.term;
    this.logger.debug(`digest run ${run.run} on ${run.node}`);
    this.cluster.publish(LEADER_JOB_TOPIC, run);
  }
}
