import { Injectable } from '@nestjs/common';
import { type ClusterMessage, ClusterSubscribe } from '../../lib/index.js';
import { type JobRun, LEADER_JOB_TOPIC } from './digest.job.js';

/** Job runs kept. */
const MAX_RUNS = 50;

/** The last leader-job runs this node heard of, whichever node ran them. */
@Injectable()
export class JobRunsService {
  private readonly runs: JobRun[] = [];

  /** Oldest first. */
  list(): JobRun[] {
    return [...this.runs];
  }

  @ClusterSubscribe(LEADER_JOB_TOPIC)
  onRun({ payload }: ClusterMessage): void {
    if (!isJobRun(payload)) return;
    this.runs.push(payload);
    if (this.runs.length > MAX_RUNS) this.runs.shift();
  }
}

function isJobRun(value: unknown): value is JobRun {
  const run = value as Partial<JobRun> | null;
  return (
    typeof run?.job === 'string' &&
    typeof run.node === 'string' &&
    typeof run.run === 'number' &&
    typeof run.members === 'number' &&
    (run.term === undefined || typeof run.term === 'number') &&
    typeof run.at === 'string'
  );
}
