import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeEc2Server, type FakeInstance } from '../support/fake-ec2-server.js';
import { FakeImdsServer } from '../support/fake-imds-server.js';
import {
  freePort,
  pollUntil,
  randomCookie,
  startNode,
  useNodeCleanup,
  type NodeProcess,
} from '../support/node-process.js';
import type { SseCollector } from '../support/sse.js';

/**
 * Three sample-app processes on the EC2 strategy, each playing one EC2 instance on its own
 * loopback address (127.0.0.2 … 127.0.0.4, all on the same link port, as real instances
 * would be). Each has its own fake instance metadata service (instance id, region,
 * local-ipv4); all share one fake EC2 API. Shown as a user sees it over HTTP and SSE:
 * names from the metadata, the mesh, an instance dropping out of DescribeInstances, an EC2
 * API outage that removes nobody, and a node whose metadata service is down.
 */
const APP = 'oli';
const TAG = 'cluster';
const TAG_VALUE = 'oli-ec2-test';
const REGION = 'eu-west-1';
const PORT = 45893;
const POLL_MS = 500;
const hostOf = (i: number) => `127.0.0.${i + 1}`;
const nameOf = (i: number) => `${APP}@${hostOf(i)}`;
const instanceIdOf = (i: number) => `i-0ec2test000000${i}`;
const ALL = [1, 2, 3];

interface EventView {
  type: string;
  member: string;
  address: string;
  incarnation: string;
  reason: string;
  at: string;
}

interface HealthBody {
  status: string;
  details?: { cluster?: { status: string; members?: number; errors?: string[]; message?: string } };
}

useNodeCleanup();

describe('EC2 strategy: three instances found by their tag', () => {
  let ec2: FakeEc2Server;
  const imds = new Map<number, FakeImdsServer>();
  const nodes = new Map<number, NodeProcess>();
  const streams = new Map<number, SseCollector>();
  const node = (i: number) => nodes.get(i)!;
  const cookie = randomCookie();

  function instance(i: number, extra: Partial<FakeInstance> = {}): FakeInstance {
    return {
      instanceId: instanceIdOf(i),
      privateIpAddress: hostOf(i),
      ipAddress: `203.0.113.${i}`,
      tags: { [TAG]: TAG_VALUE, Name: `oli-${i}` },
      ...extra,
    };
  }

  /** Environment of the instance at `hostOf(i)`: no NODE_NAME, no AWS_REGION — metadata gives both. */
  function envFor(i: number, metadataUrl: string, extra: Record<string, string | undefined> = {}) {
    return {
      NODE_NAME: undefined,
      APP_NAME: APP,
      NODE_COOKIE: cookie,
      LIBCLUSTER_STRATEGY: 'ClusterEC2.Strategy.Tags',
      LIBCLUSTER_EC2_STRATEGY_TAG_NAME: TAG,
      LIBCLUSTER_EC2_STRATEGY_TAG_VALUE: TAG_VALUE,
      LIBCLUSTER_POLLING_INTERVAL: String(POLL_MS),
      CLUSTER_PORT: String(PORT),
      CLUSTER_BIND_ADDRESS: hostOf(i),
      AWS_EC2_METADATA_SERVICE_ENDPOINT: metadataUrl,
      AWS_ENDPOINT_URL_EC2: ec2.url,
      AWS_ACCESS_KEY_ID: 'AKIDEC2TESTEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'ec2-test-secret-not-real',
      // Keep the developer's own AWS config out of the node.
      AWS_CONFIG_FILE: '/nonexistent/aws-config',
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
      ...extra,
    };
  }

  const events = (i: number, since: number, types = ['join', 'leave', 'down']) =>
    streams
      .get(i)!
      .events.filter((e) => types.includes(e.type) && e.receivedAt >= since)
      .map((e) => e.data as EventView);

  async function health(i: number): Promise<{ status: number; body: HealthBody }> {
    return await node(i).http('GET', '/health');
  }

  /** Waits until `GET /health` of node `i` satisfies `predicate`; fails with the last body. */
  async function waitForHealth(
    i: number,
    predicate: (status: number, body: HealthBody) => boolean,
    description: string,
    timeoutMs: number,
  ): Promise<{ status: number; body: HealthBody }> {
    let last: { status: number; body: HealthBody } | undefined;
    const ok = await pollUntil(async () => {
      last = await health(i);
      return predicate(last.status, last.body);
    }, timeoutMs);
    if (!ok || !last) {
      throw new Error(
        `${nameOf(i)}: no ${description} in GET /health within ${timeoutMs} ms; ` +
          `last: ${last?.status} ${JSON.stringify(last?.body)}`,
      );
    }
    return last;
  }

  beforeAll(async () => {
    ec2 = await FakeEc2Server.start({
      instances: [
        ...ALL.map((i) => instance(i)),
        // Tagged but stopped, and running with another tag value: neither may be dialled.
        instance(8, { state: 'stopped' }),
        instance(9, { tags: { [TAG]: 'someone-else' } }),
      ],
    });
    for (const i of ALL) {
      imds.set(
        i,
        await FakeImdsServer.start({
          instanceId: instanceIdOf(i),
          region: REGION,
          localIpv4: hostOf(i),
        }),
      );
    }
    const start = async (i: number): Promise<void> => {
      // Node 3 has no tag value configured: it reads its own instance's tag.
      const extra = i === 3 ? { LIBCLUSTER_EC2_STRATEGY_TAG_VALUE: undefined } : {};
      const n = await startNode({ name: nameOf(i), env: envFor(i, imds.get(i)!.url, extra) });
      nodes.set(i, n);
      streams.set(i, await n.events());
    };
    // Node 1 starts first, so it is the oldest member and leads: with the EC2 budget only the
    // leader polls, and the stop scenario below stops node 3, a follower. (A frozen leader is
    // noticed by the failure detector, after which the next oldest polls.)
    await start(1);
    await Promise.all([2, 3].map(start));
  }, 60_000);

  afterAll(async () => {
    for (const s of streams.values()) s.close();
    await ec2?.close();
    await Promise.all([...imds.values()].map((s) => s.close()));
  });

  it('names each node <APP_NAME>@<its local-ipv4> and forms one mesh from DescribeInstances', async () => {
    const all = ALL.map(nameOf);
    const views = await Promise.all(ALL.map((i) => node(i).waitForMembers(all, 15_000)));
    for (const [k, i] of ALL.entries()) {
      const view = views[k];
      expect(view.mode).toBe('cluster');
      expect(view.self.name).toBe(nameOf(i));
      expect(view.self.address).toBe(`${hostOf(i)}:${PORT}`);
      for (const m of view.members) {
        expect(m.address).toBe(`${m.name.slice(APP.length + 1)}:${PORT}`);
      }
      expect(view.topologies.every((t) => t.ok)).toBe(true);
    }
    // Every node read its own metadata.
    for (const i of ALL) {
      const paths = imds
        .get(i)!
        .metadataRequests()
        .map((r) => r.path);
      expect(paths).toEqual(
        expect.arrayContaining(['/latest/meta-data/local-ipv4', '/latest/meta-data/instance-id']),
      );
    }

    const described = ec2.requestsOf('DescribeInstances');
    const polls = described.filter((r) => r.filters.some((f) => f.name === `tag:${TAG}`));
    expect(polls.length).toBeGreaterThanOrEqual(3);
    for (const r of polls) {
      expect(r.filters).toEqual(
        expect.arrayContaining([
          { name: `tag:${TAG}`, values: [TAG_VALUE] },
          { name: 'instance-state-name', values: ['running'] },
        ]),
      );
      // Signed for the region the metadata gave, with the configured credentials.
      expect(r.region).toBe(REGION);
      expect(r.accessKeyId).toBe('AKIDEC2TESTEXAMPLE');
    }
    // Node 3 looked up its own tag value by its instance id, from its metadata.
    const ownLookup = described.filter((r) =>
      r.filters.some((f) => f.name === 'instance-id' && f.values.includes(instanceIdOf(3))),
    );
    expect(ownLookup.length).toBeGreaterThanOrEqual(1);
    await node(3).waitForOutput(
      new RegExp(`tagged ${TAG}=${TAG_VALUE} \\(this instance's own tag\\)`),
      1000,
    );

    // The stopped instance and the one with another tag value are never dialled.
    for (const i of ALL) {
      expect(node(i).output()).not.toMatch(/127\.0\.0\.(9|10)\b/);
    }
  });

  it('EC2 API throttling, then 500s, remove nobody; health shows the error, then recovers', async () => {
    const since = Date.now();
    const requestsBefore = ec2.requests.length;
    // Membership as every node shows it, sampled all through the outage and the recovery.
    let fewest = 3;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const i of ALL) fewest = Math.min(fewest, (await node(i).cluster()).members.length);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    let outageMs = 0;
    let failed = 0;
    let watchError: unknown;
    try {
      ec2.failAll('throttle');
      const throttled = await Promise.all(
        ALL.map((i) =>
          waitForHealth(
            i,
            (_, b) =>
              (b.details?.cluster?.errors ?? []).some((e) => e.includes('RequestLimitExceeded')),
            'RequestLimitExceeded discovery error',
            8000,
          ),
        ),
      );
      for (const h of throttled) {
        expect(h.status).toBe(503);
        expect(h.body.details!.cluster!.status).toBe('down');
        expect(h.body.details!.cluster!.members).toBe(3);
        expect(h.body.details!.cluster!.errors!.join('\n')).toMatch(
          /EC2 API throttled DescribeInstances/,
        );
      }
      for (const i of ALL) {
        await node(i).waitForOutput(
          /EC2 discovery failed: EC2 API throttled DescribeInstances/,
          1000,
        );
      }

      ec2.failAll('internal');
      const internal = await Promise.all(
        ALL.map((i) =>
          waitForHealth(
            i,
            (_, b) => (b.details?.cluster?.errors ?? []).some((e) => e.includes('InternalError')),
            'InternalError discovery error',
            10_000,
          ),
        ),
      );
      for (const h of internal) expect(h.body.details!.cluster!.members).toBe(3);
      outageMs = Date.now() - since;
      failed = ec2.requests.slice(requestsBefore).filter((r) => r.fault !== undefined).length;

      ec2.failAll(null);
      await Promise.all(
        ALL.map((i) =>
          waitForHealth(
            i,
            (s, b) => s === 200 && b.status === 'ok' && !b.details?.cluster?.errors,
            'healthy report',
            15_000,
          ),
        ),
      );
      for (const i of ALL)
        await node(i).waitForOutput(/EC2 discovery works again \(3 instances\)/, 1000);
    } finally {
      ec2.failAll(null);
      watching = false;
      watchError = await watcher.then(
        () => undefined,
        (error: unknown) => error,
      );
    }

    console.log(
      `EC2 API outage: ${outageMs} ms, ${failed} failed requests; ` +
        `healthy again ${Date.now() - since - outageMs} ms later`,
    );
    expect(watchError).toBeUndefined();
    // Several polls failed on every node, and nobody was removed.
    expect(failed).toBeGreaterThanOrEqual(2 * ALL.length);
    expect(fewest).toBe(3);
    for (const i of ALL) {
      expect(events(i, since)).toEqual([]);
      expect(await node(i).memberNames()).toEqual(ALL.map(nameOf).sort());
    }
  }, 40_000);

  it('an instance that stops drops out of DescribeInstances: the others see leave (discovery)', async () => {
    const gone = nameOf(3);
    const since = Date.now();
    // A hard stop: the instance vanishes without a goodbye, and EC2 lists it as stopped.
    node(3).stop();
    ec2.instances = ec2.instances.map((i) =>
      i.instanceId === instanceIdOf(3) ? { ...i, state: 'stopped' } : i,
    );
    const leaves = await Promise.all(
      [1, 2].map((i) =>
        streams
          .get(i)!
          .waitFor<EventView>(
            (e) => e.type !== 'members' && e.receivedAt >= since && e.data.member === gone,
            `leave of ${gone} on ${nameOf(i)}`,
            4000,
          ),
      ),
    );
    for (const e of leaves) {
      expect(e.type).toBe('leave');
      expect(e.data.reason).toBe('discovery');
      expect(e.data.address).toBe(`${hostOf(3)}:${PORT}`);
      // Within a couple of polls, long before the failure detector (5 s) would say down.
      expect(e.receivedAt - since).toBeLessThan(3000);
    }
    await Promise.all([1, 2].map((i) => node(i).waitForMembers([nameOf(1), nameOf(2)], 3000)));
    for (const i of [1, 2]) {
      const line = await node(i).waitForOutput(/is no longer discovered; closing its link/, 1000);
      expect(line).toContain(`${gone} (${hostOf(3)}:${PORT}) is no longer discovered`);
      expect(events(i, since, ['down'])).toEqual([]);
    }
    node(3).kill('SIGKILL');
    await node(3).exited;
    nodes.delete(3);
  });

  it('metadata service down: the node starts, warns, is named after HOSTNAME, and still joins', async () => {
    // Instance 5 (127.0.0.6) with nothing listening at its metadata endpoint; region and tag
    // value are set, as the guide says to do then.
    const closedPort = await freePort();
    const deadUrl = `http://127.0.0.1:${closedPort}`;
    const startedAt = Date.now();
    const d = await startNode({
      name: `${APP}@some-host`,
      env: envFor(5, deadUrl, {
        HOSTNAME: 'some-host',
        AWS_REGION: REGION,
        AWS_ACCESS_KEY_ID: 'AKIDNOMETADATA',
      }),
    });
    nodes.set(5, d);
    const warning = await d.waitForOutput(/instance metadata unreachable/, 5000);
    expect(warning).toContain(`instance metadata unreachable at ${deadUrl}`);
    expect(warning).toContain('falling back to HOSTNAME for the node name');
    const view = await d.cluster();
    expect(view.self.name).toBe(`${APP}@some-host`);
    // The link address comes from the specific bind address, not from the (unresolvable) name.
    expect(view.self.address).toBe(`${hostOf(5)}:${PORT}`);
    expect(view.mode).toBe('cluster');
    // It polls EC2 with the configured region and tag value (its requests carry its own key).
    // Once it has joined, the leader polls for it (the EC2 API budget), so it may poll only once.
    const own = () =>
      ec2.requestsOf('DescribeInstances').filter((r) => r.accessKeyId === 'AKIDNOMETADATA');
    const polled = await pollUntil(() => own().length >= 1, 5000);
    expect(polled, 'a DescribeInstances poll by the node within 5 s').toBe(true);
    for (const r of own()) {
      expect(r.region).toBe(REGION);
      expect(r.filters).toEqual(
        expect.arrayContaining([{ name: `tag:${TAG}`, values: [TAG_VALUE] }]),
      );
    }
    // It dials the instances it discovers, which accept it under its HOSTNAME-based name.
    const members = [nameOf(1), nameOf(2), `${APP}@some-host`];
    await Promise.all([d, node(1), node(2)].map((n) => n.waitForMembers(members, 10_000)));
    const seen = (await node(1).cluster()).members.find((m) => m.name === `${APP}@some-host`)!;
    expect(seen.address).toBe(`${hostOf(5)}:${PORT}`);
    expect(d.running).toBe(true);
    expect(d.output()).not.toMatch(/\bERROR\b/);
    console.log(`node with metadata down answered after ${Date.now() - startedAt} ms`);
  });
});
