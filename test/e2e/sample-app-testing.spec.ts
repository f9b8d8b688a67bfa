/**
 * The sample app's own module graph as a 3-node in-memory cluster (`nestjs-cluster/testing`):
 * the leader-only digest job driven by its real `@Interval`, the messages module, the
 * feature-flag cache and the request handlers, without processes or sockets.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemberGoneError, RemoteHandlerError } from '../../lib/index.js';
import { ClusterTestingModule, type TestingCluster } from '../../lib/testing/index.js';
import { AppModule } from '../../sample-app/app.module.js';
import { FlagsService } from '../../sample-app/flags/flags.service.js';
import { DIGEST_INTERVAL_MS, LEADER_JOB_TOPIC } from '../../sample-app/jobs/digest.job.js';
import { JobRunsService } from '../../sample-app/jobs/job-runs.service.js';
import { MessagesService } from '../../sample-app/messages/messages.service.js';

describe('sample app, 3 in-memory nodes', () => {
  let cluster: TestingCluster;

  beforeEach(async () => {
    // @nestjs/schedule's intervals on vitest's clock, advanced by hand (the cluster has its own).
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    cluster = await ClusterTestingModule.create({ nodes: 3, imports: [AppModule], seed: 3 });
    await cluster.converged();
  });

  afterEach(async () => {
    await cluster.close();
    vi.useRealTimers();
  });

  const runsOn = (index: number) => cluster.node(index).get(JobRunsService).list();

  it('runs the digest on the leader alone at each tick; every node hears of each run', async () => {
    const [leader] = cluster.nodes;
    expect(cluster.leader()).toBe(leader);

    vi.advanceTimersByTime(DIGEST_INTERVAL_MS);
    await cluster.until(() => [0, 1, 2].every((i) => runsOn(i).length === 1));
    vi.advanceTimersByTime(DIGEST_INTERVAL_MS);
    await cluster.until(() => [0, 1, 2].every((i) => runsOn(i).length === 2));

    for (const i of [0, 1, 2]) {
      expect(runsOn(i).map((r) => [r.node, r.run, r.members])).toEqual([
        [leader.name, 1, 3],
        [leader.name, 2, 3],
      ]);
    }
    const inbox = cluster.node(2).get(MessagesService).list(LEADER_JOB_TOPIC, 10);
    expect(inbox.map((m) => m.from)).toEqual([leader.name, leader.name]);
  });

  it('moves the digest to the next oldest node when the leader crashes', async () => {
    cluster.crash(0);
    await cluster.converged();
    vi.advanceTimersByTime(DIGEST_INTERVAL_MS);
    await cluster.until(() => runsOn(1).length === 1 && runsOn(2).length === 1);
    expect(runsOn(2)).toMatchObject([{ node: cluster.node(1).name, run: 1, members: 2 }]);
  });

  it('delivers a message published on one node to every node, with its sender', async () => {
    const result = cluster.node(1).get(MessagesService).publish('greetings', { text: 'hello' });
    expect(result.failed).toEqual([]);
    await cluster.until(() =>
      cluster.nodes.every((n) => n.get(MessagesService).list('greetings', 10).length === 1),
    );
    for (const node of cluster.nodes) {
      expect(node.get(MessagesService).list('greetings', 10)).toMatchObject([
        { topic: 'greetings', payload: { text: 'hello' }, from: cluster.node(1).name },
      ]);
    }
  });

  it('keeps every feature-flag cache coherent, and a node that joins later gets the flags', async () => {
    cluster.node(0).get(FlagsService).set('dark-mode', true);
    await cluster.until(() => cluster.nodes.every((n) => n.get(FlagsService).get('dark-mode')));
    expect(cluster.node(2).get(FlagsService).get('dark-mode')).toMatchObject({
      enabled: true,
      updatedBy: cluster.node(0).name,
    });

    const late = await cluster.spawn();
    await cluster.converged();
    await cluster.until(() => late.get(FlagsService).get('dark-mode') !== undefined, {
      what: 'the late node to get the flags',
    });
    expect(
      late
        .get(FlagsService)
        .list()
        .map((f) => [f.name, f.enabled]),
    ).toEqual([['dark-mode', true]]);
  });

  it('answers requests through the rpc handlers of the node asked, and fails them as documented', async () => {
    const asker = cluster.service(0);
    await expect(cluster.run(asker.request(cluster.node(2).name, 'echo', 'hi'))).resolves.toEqual({
      echo: 'hi',
      by: cluster.node(2).name,
    });
    await expect(
      cluster.run(asker.request(cluster.node(1).name, 'fail', { message: 'nope' })),
    ).rejects.toThrow(RemoteHandlerError);

    // The member goes down while the request is pending: it fails at once, not at the timeout.
    const pending = asker.request(cluster.node(2).name, 'slow', { ms: 10_000 });
    await cluster.advance(20);
    const startedAt = cluster.time.now;
    cluster.crash(2);
    await expect(cluster.run(pending)).rejects.toThrow(MemberGoneError);
    expect(cluster.time.now - startedAt).toBeLessThan(1_000);
  });
});
