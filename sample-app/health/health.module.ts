import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { ClusterHealthIndicator } from '../../lib/health/cluster.health.js';
import { HealthController } from './health.controller.js';

/** `GET /health`: the terminus report with the cluster indicator. */
@Module({
  imports: [TerminusModule],
  controllers: [HealthController],
  providers: [ClusterHealthIndicator],
})
export class HealthModule {}
