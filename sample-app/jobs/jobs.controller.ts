import { Controller, Get } from '@nestjs/common';
import type { JobRun } from './digest.job.js';
import { JobRunsService } from './job-runs.service.js';

@Controller('jobs')
export class JobsController {
  constructor(private readonly runs: JobRunsService) {}

  /** The last runs of leader-only jobs, announced by whichever node ran them. */
  @Get()
  list(): JobRun[] {
    return this.runs.list();
  }
}
