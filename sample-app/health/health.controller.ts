import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { ClusterHealthIndicator } from '../../lib/health/cluster.health.js';

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly cluster: ClusterHealthIndicator,
  ) {}

  /**
   * Terminus report; the `cluster` entry shows membership, discovery and the quorum guard —
   * down on the minority side of a partition when `CLUSTER_QUORUM` is set.
   */
  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.cluster.isHealthy('cluster', { requireQuorum: true })]);
  }
}
