/**
 * The example of the README's "Testing your app" section, verbatim between the markers (with
 * the package's import paths); the last test checks the README still shows exactly this code.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it as check } from 'vitest';

// README example start
import { Injectable, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ClusterHandle,
  ClusterModule,
  ClusterService,
  ClusterSubscribe,
  LeaderOnly,
  type ClusterMessage,
} from '../../../lib/index.js';
import { ClusterTestingModule, type TestingCluster } from '../../../lib/testing/index.js';

@Injectable()
class ReportService {
  readonly received: string[] = [];

  constructor(private readonly cluster: ClusterService) {}

  /** Once per cluster, e.g. from a @Cron(): only the leader runs it. */
  @LeaderOnly()
  sendDailyReport(): void {
    this.cluster.publish('reports', `report by ${this.cluster.self.name}`);
  }

  @ClusterSubscribe('reports')
  onReport({ payload }: ClusterMessage<string>): void {
    this.received.push(payload);
  }

  @ClusterHandle('report-count')
  count(): number {
    return this.received.length;
  }
}

@Module({
  imports: [ConfigModule.forRoot(), ClusterModule.forRootFromEnv()],
  providers: [ReportService],
})
class AppModule {}

describe('daily report', () => {
  let cluster: TestingCluster;

  beforeEach(async () => {
    cluster = await ClusterTestingModule.create({ nodes: 3, imports: [AppModule], seed: 1 });
    await cluster.converged(); // every node sees every node
  });

  afterEach(() => cluster.close());

  const reports = (node: number) => cluster.node(node).get(ReportService).received;

  it('is sent once, by the leader, and by the next oldest node once the leader crashes', async () => {
    for (const node of cluster.nodes) node.get(ReportService).sendDailyReport();
    await cluster.until(() => reports(2).length > 0);
    expect(reports(2)).toEqual(['report by app@10.0.0.1']);

    cluster.crash(0);
    await cluster.converged(); // virtual time: the heartbeat timeout passes in milliseconds
    expect(cluster.service(1).isLeader()).toBe(true);
    for (const node of cluster.running) node.get(ReportService).sendDailyReport();
    await cluster.until(() => reports(2).length > 1);
    expect(reports(2)).toEqual(['report by app@10.0.0.1', 'report by app@10.0.0.2']);
  });

  it('answers a request from another node', async () => {
    const count = cluster.service(0).request<number>('app@10.0.0.3', 'report-count', null);
    expect(await cluster.run(count)).toBe(0); // run: virtual time moves until it settles
  });

  it('survives a partition and heals', async () => {
    cluster.partition([0], [1, 2]);
    await cluster.advance(10_000);
    expect(
      cluster
        .service(2)
        .members()
        .map((m) => m.name),
    ).toEqual(['app@10.0.0.2', 'app@10.0.0.3']);
    cluster.heal();
    await cluster.converged();
    expect(cluster.leader()).toBe(cluster.node(0));
  });
});
// README example end

check('the README shows this example verbatim', () => {
  const here = fileURLToPath(import.meta.url);
  const readme = readFileSync(join(dirname(here), '../../../README.md'), 'utf8');
  const source = readFileSync(here, 'utf8');
  const example = source
    .slice(
      source.indexOf('// README example start\n') + '// README example start\n'.length,
      source.indexOf('// README example end'),
    )
    .replace("'../../../lib/index.js'", "'nestjs-cluster'")
    .replace("'../../../lib/testing/index.js'", "'nestjs-cluster/testing'");
  if (!readme.includes('```ts\n' + example + '```')) {
    throw new Error(
      'README.md "Testing your app" no longer shows test/unit/testing/readme-example.spec.ts',
    );
  }
});
