import { Module } from '@nestjs/common';
import { DigestJob } from './digest.job.js';
import { JobRunsService } from './job-runs.service.js';
import { JobsController } from './jobs.controller.js';

/** A leader-only periodic job, and `GET /jobs` listing its runs as every node heard them. */
@Module({
  controllers: [JobsController],
  providers: [DigestJob, JobRunsService],
})
export class JobsModule {}
