import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { ClusterHealthIndicator } from '../../lib/health/cluster.health.js';

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly cluster: ClusterHealthIndicator,
  ) {}

  /** Terminus report; the `cluster` entry shows membership and discovery. */
  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.cluster.isHealthy('cluster')]);
  }
}
