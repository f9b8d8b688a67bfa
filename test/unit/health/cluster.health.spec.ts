import { Module, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheckService, TerminusModule, type HealthCheckResult } from '@nestjs/terminus';
import { Test, type TestingModule } from '@nestjs/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClusterModule } from '../../../lib/cluster.module.js';
import { ClusterService } from '../../../lib/cluster.service.js';
import { ClusterHealthIndicator } from '../../../lib/health/cluster.health.js';
import { ClusterTestingModule, type TestingCluster } from '../../../lib/testing/index.js';
import { StubClusterService, stubMember } from '../../support/stub-cluster-service.js';

/** Runs a check and returns the terminus result, whether it passed or failed. */
async function checkWith(
  health: HealthCheckService,
  run: () => ReturnType<ClusterHealthIndicator['isHealthy']>,
): Promise<HealthCheckResult> {
  try {
    return await health.check([run]);
  } catch (error) {
    expect(error).toBeInstanceOf(ServiceUnavailableException);
    return (error as ServiceUnavailableException).getResponse() as HealthCheckResult;
  }
}

describe('ClusterHealthIndicator on an in-memory cluster', () => {
  @Module({
    imports: [TerminusModule.forRoot({ logger: false }), ClusterModule.forRoot({})],
    providers: [ClusterHealthIndicator],
  })
  class HealthApp {}

  let cluster: TestingCluster;
  beforeEach(async () => {
    cluster = await ClusterTestingModule.create({ nodes: 3, imports: [HealthApp] });
    await cluster.converged();
  });
  afterEach(() => cluster.close());

  const checkNode = (index: number, minMembers?: number) =>
    checkWith(cluster.node(index).get(HealthCheckService), () =>
      cluster.node(index).get(ClusterHealthIndicator).isHealthy('cluster', { minMembers }),
    );

  it('is up with membership, leader, mode and discovery in the details', async () => {
    const result = await checkNode(1);
    expect(result.status).toBe('ok');
    expect(result.details.cluster).toEqual({
      status: 'up',
      mode: 'cluster',
      members: 3,
      minMembers: 1,
      memberNames: ['app@10.0.0.1', 'app@10.0.0.2', 'app@10.0.0.3'],
      self: 'app@10.0.0.2',
      leader: 'app@10.0.0.1',
      quorum: { required: null, reachable: 3, ok: true },
      discovery: [{ topology: 'testing', strategy: 'in-memory', ok: true }],
    });
  });

  it('is down when fewer than minMembers are present', async () => {
    expect((await checkNode(0, 3)).status).toBe('ok');
    cluster.crash(2);
    await cluster.converged();
    const result = await checkNode(0, 3);
    expect(result.status).toBe('error');
    expect(result.error?.cluster).toMatchObject({
      status: 'down',
      members: 2,
      minMembers: 3,
      message: '2 of 3 required members',
    });
  });
});

describe('ClusterHealthIndicator', () => {
  let stub: StubClusterService;
  let moduleRef: TestingModule;
  let health: HealthCheckService;
  let indicator: ClusterHealthIndicator;

  beforeEach(async () => {
    stub = new StubClusterService('app@10.0.0.1');
    moduleRef = await Test.createTestingModule({
      imports: [TerminusModule.forRoot({ logger: false })],
      providers: [ClusterHealthIndicator, { provide: ClusterService, useValue: stub }],
    }).compile();
    await moduleRef.init();
    health = moduleRef.get(HealthCheckService);
    indicator = moduleRef.get(ClusterHealthIndicator);
  });

  afterEach(async () => {
    await moduleRef.close();
  });

  const check = (run: () => ReturnType<ClusterHealthIndicator['isHealthy']>) =>
    checkWith(health, run);

  it('is down and lists every discovery error when a topology fails', async () => {
    stub.setMembers([stubMember('app@10.0.0.2')]);
    stub.topologies = [
      { topology: 'lan', strategy: 'gossip', ok: false, error: 'bind EADDRINUSE 0.0.0.0:45892' },
      { topology: 'aws', strategy: 'ec2', ok: false, error: 'DescribeInstances: AccessDenied' },
      { topology: 'static', strategy: 'static', ok: true },
    ];

    const result = await check(() => indicator.isHealthy());

    expect(result.status).toBe('error');
    const details = result.error?.cluster as Record<string, unknown>;
    expect(details.status).toBe('down');
    expect(details.members).toBe(2);
    expect(details.errors).toEqual([
      'lan (gossip): bind EADDRINUSE 0.0.0.0:45892',
      'aws (ec2): DescribeInstances: AccessDenied',
    ]);
    expect(details.message).toContain('discovery failing');
    expect(details.message).toContain('EADDRINUSE');
  });

  it('reports under a custom key, next to other indicators', async () => {
    const result = await check(() => indicator.isHealthy('mesh', { minMembers: 1 }));
    expect(result.status).toBe('ok');
    expect(Object.keys(result.details)).toEqual(['mesh']);
    expect(result.info?.mesh?.status).toBe('up');
  });

  it('reports quorum in the details; with requireQuorum it is down below quorum', async () => {
    stub.setQuorum({ required: 3, reachable: 2, ok: false });
    stub.setLeader(null);
    const relaxed = await check(() => indicator.isHealthy());
    expect(relaxed.status).toBe('ok');
    expect(relaxed.details.cluster).toMatchObject({
      status: 'up',
      leader: null,
      quorum: { required: 3, reachable: 2, ok: false },
    });
    const strict = await check(() => indicator.isHealthy('cluster', { requireQuorum: true }));
    expect(strict.status).toBe('error');
    expect(strict.details.cluster).toMatchObject({
      status: 'down',
      message: 'below quorum: 2 of 3 required members reachable',
    });
    stub.setQuorum({ required: 3, reachable: 3, ok: true });
    const held = await check(() => indicator.isHealthy('cluster', { requireQuorum: true }));
    expect(held.status).toBe('ok');
  });

  it('reports single-node mode with no leader yet', async () => {
    stub.mode = 'single-node';
    stub.topologies = [];
    stub.setLeader(null);
    const result = await check(() => indicator.isHealthy());
    expect(result.details.cluster).toMatchObject({
      status: 'up',
      mode: 'single-node',
      leader: null,
      discovery: [],
    });
  });
});
