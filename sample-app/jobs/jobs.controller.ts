import { Controller, Get } from '@nestjs/common';
import { DigestJob, type JobRun, type LocalRuns } from './digest.job.js';
import { JobRunsService } from './job-runs.service.js';

@Controller('jobs')
export class JobsController {
  constructor(
    private readonly runs: JobRunsService,
    private readonly digest: DigestJob,
  ) {}

  /** The last runs of leader-only jobs, announced by whichever node ran them. */
  @Get()
  list(): JobRun[] {
    return this.runs.list();
  }

  /** How often the leader-only job ran on this very node (it counts up on the leader only). */
  @Get('local')
  local(): LocalRuns {
    return this.digest.local();
  }
}
