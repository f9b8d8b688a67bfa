import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeEc2Server } from '../support/fake-ec2-server.js';
import { FakeImdsServer } from '../support/fake-imds-server.js';
import {
  randomCookie,
  startNode,
  useNodeCleanup,
  type NodeProcess,
} from '../support/node-process.js';

/**
 * The EC2 API budget, counted at the fake EC2 endpoint: 20 sample-app processes (20 EC2
 * "instances" on 127.0.40.1 … 127.0.40.20, the real AWS SDK, one access key each so every
 * call is attributed) run for 60 s at a 1 s polling interval. Without the budget that is
 * 20 × 60 = 1,200 DescribeInstances calls; the README's bound is one call per interval
 * for the cluster (the leader, jittered ±10 %) plus each newcomer's polls before it joins.
 *
 * Also Torus's names: no APP_NAME, LIBCLUSTER_EC2_STRATEGY_APP_PREFIX=oli → `oli@<local-ipv4>`.
 */
const N = 20;
const POLL_MS = 1000;
const WINDOW_MS = 60_000;
const PORT = 46093;
const TAG = 'cluster';
const TAG_VALUE = 'budget-test';
const hostOf = (i: number) => `127.0.40.${i}`;
const nameOf = (i: number) => `oli@${hostOf(i)}`;
const keyOf = (i: number) => `AKIDBUDGET${String(i).padStart(4, '0')}`;
const NODES = Array.from({ length: N }, (_, k) => k + 1);

useNodeCleanup();

describe(`EC2 API budget: ${N} nodes for ${WINDOW_MS / 1000} s`, () => {
  let ec2: FakeEc2Server;
  const imds: FakeImdsServer[] = [];
  const nodes = new Map<number, NodeProcess>();
  const cookie = randomCookie();
  let firstStart = 0;

  beforeAll(async () => {
    ec2 = await FakeEc2Server.start({
      instances: NODES.map((i) => ({
        instanceId: `i-0budget${String(i).padStart(8, '0')}`,
        privateIpAddress: hostOf(i),
        tags: { [TAG]: TAG_VALUE },
      })),
    });
    firstStart = Date.now();
    // In batches, so that 20 Nest processes do not all start on two cores at once.
    for (let b = 0; b < N; b += 5) {
      await Promise.all(
        NODES.slice(b, b + 5).map(async (i) => {
          const md = await FakeImdsServer.start({
            instanceId: `i-0budget${String(i).padStart(8, '0')}`,
            region: 'eu-west-1',
            localIpv4: hostOf(i),
          });
          imds.push(md);
          const n = await startNode({
            name: nameOf(i),
            readyTimeoutMs: 60_000,
            env: {
              NODE_NAME: undefined,
              NODE_COOKIE: cookie,
              LIBCLUSTER_STRATEGY: 'ClusterEC2.Strategy.Tags',
              LIBCLUSTER_EC2_STRATEGY_TAG_NAME: TAG,
              LIBCLUSTER_EC2_STRATEGY_TAG_VALUE: TAG_VALUE,
              LIBCLUSTER_EC2_STRATEGY_APP_PREFIX: 'oli',
              LIBCLUSTER_POLLING_INTERVAL: String(POLL_MS),
              CLUSTER_PORT: String(PORT),
              CLUSTER_BIND_ADDRESS: hostOf(i),
              CLUSTER_HEARTBEAT_INTERVAL_MS: '500',
              CLUSTER_FAILURE_TIMEOUT_MS: '5000',
              AWS_EC2_METADATA_SERVICE_ENDPOINT: md.url,
              AWS_ENDPOINT_URL_EC2: ec2.url,
              AWS_ACCESS_KEY_ID: keyOf(i),
              AWS_SECRET_ACCESS_KEY: 'budget-test-secret-not-real',
              AWS_CONFIG_FILE: '/nonexistent/aws-config',
              AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
            },
          });
          nodes.set(i, n);
        }),
      );
    }
  }, 240_000);

  afterAll(async () => {
    await ec2?.close();
    await Promise.all(imds.map((s) => s.close()));
  });

  it("stays within one DescribeInstances call per polling interval once formed, plus each newcomer's first polls", async () => {
    const all = NODES.map(nameOf);
    await Promise.all(NODES.map((i) => nodes.get(i)!.waitForMembers(all, 60_000)));
    const formed = Date.now();
    const formationCalls = ec2.requestsOf('DescribeInstances').length;

    await new Promise((r) => setTimeout(r, WINDOW_MS));
    const end = Date.now();
    const calls = ec2.requestsOf('DescribeInstances');
    const inWindow = calls.slice(formationCalls);
    const byKey = new Map<string, number>();
    for (const c of inWindow)
      byKey.set(c.accessKeyId ?? '?', (byKey.get(c.accessKeyId ?? '?') ?? 0) + 1);

    // The stated bound: the leader polls at most once per 0.9 × interval (jitter ±10 %).
    const windowBound = Math.ceil((end - formed) / (0.9 * POLL_MS)) + 1;
    // Whole run: the leader's polls over the run plus at most 3 polls per node before it joins.
    const runBound = Math.ceil((end - firstStart) / (0.9 * POLL_MS)) + 1 + 3 * N;
    const naive = Math.round(N * ((end - firstStart) / POLL_MS));
    const leader = (await nodes.get(1)!.cluster()).leader;
    console.log(
      `EC2 budget: ${N} nodes, ${Math.round((end - formed) / 1000)} s after forming: ${inWindow.length} DescribeInstances calls ` +
        `(bound ${windowBound}; without the budget ≈ ${N * Math.round((end - formed) / POLL_MS)}), from ${byKey.size} node(s); ` +
        `whole run ${Math.round((end - firstStart) / 1000)} s: ${calls.length} calls (formation ${formationCalls}; bound ${runBound}; naive ≈ ${naive}); leader ${leader}`,
    );
    expect(inWindow.length).toBeLessThanOrEqual(windowBound);
    expect(calls.length).toBeLessThanOrEqual(runBound);
    // In steady state the leader alone polls, and it keeps polling at the interval.
    expect(leader).not.toBeNull();
    const leaderIndex = NODES.find((i) => nameOf(i) === leader)!;
    expect([...byKey.keys()]).toEqual([keyOf(leaderIndex)]);
    expect(inWindow.length).toBeGreaterThanOrEqual(
      Math.floor((end - formed) / (1.1 * POLL_MS)) - 2,
    );
    // Everyone still sees everyone, with Torus's names.
    for (const i of NODES) {
      const view = await nodes.get(i)!.cluster();
      expect(view.self.name).toBe(nameOf(i));
      expect(view.members).toHaveLength(N);
      expect(view.topologies.every((t) => t.ok)).toBe(true);
    }
  }, 200_000);
});
