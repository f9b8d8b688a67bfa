import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetnsLab } from '../support/netns.js';
import {
  pollUntil,
  randomCookie,
  startNode,
  useNodeCleanup,
  type ClusterView,
  type LocalRunsView,
  type NodeProcess,
} from '../support/node-process.js';

/**
 * The quorum guard and the fencing term across simulated hosts: five network namespaces on
 * one bridge (198.18.0.1–5), one sample-app process in each, static strategy listing all five,
 * heartbeat 500 ms / failure timeout 2 s, `CLUSTER_QUORUM=3`. Partitions are iptables rules
 * inside the hosts' namespaces (`INPUT -s <other host> -j DROP`), so the observer on the bridge
 * still reaches every host's HTTP API.
 */
const available = NetnsLab.available() && NetnsLab.hasIptables();
const HTTP_PORT = 3000;
const LINK_PORT = 45893;
const HEARTBEAT_MS = 500;
const FAILURE_TIMEOUT_MS = 2000;
const HOSTS = [0, 1, 2, 3, 4];
/**
 * Bound of the waits for a heal. The figure (heal → one leader and full membership ≤ 2 s) is
 * measured by bench/partition-lab.mjs on an otherwise quiet lab; here, with the whole suite
 * running beside it on two cores, the bound is the correctness check with room for load.
 */
const HEAL_BOUND_MS = 5000;

useNodeCleanup();

describe('partitions across hosts (network namespaces, iptables)', () => {
  it('runs in CI (root, private namespace, iptables)', () => {
    if (process.env.CI === 'true') expect(available).toBe(true);
  });

  describe.skipIf(!available)('five hosts, CLUSTER_QUORUM=3', () => {
    const lab = new NetnsLab(5);
    const nodes: NodeProcess[] = [];
    const name = (i: number) => `app@host${i + 1}`;
    const cookie = randomCookie();

    async function boot(i: number): Promise<NodeProcess> {
      const address = lab.hosts[i].address;
      const node = await startNode({
        name: name(i),
        prefix: lab.exec(i),
        httpHost: address,
        httpPort: HTTP_PORT,
        env: {
          NODE_COOKIE: cookie,
          LIBCLUSTER_STRATEGY: 'static',
          LIBCLUSTER_HOSTS: HOSTS.map((h) => `${lab.hosts[h].address}:${LINK_PORT}`).join(','),
          LIBCLUSTER_POLLING_INTERVAL: '500',
          CLUSTER_PORT: String(LINK_PORT),
          CLUSTER_BIND_ADDRESS: address,
          CLUSTER_ADVERTISE_ADDRESS: address,
          CLUSTER_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
          CLUSTER_FAILURE_TIMEOUT_MS: String(FAILURE_TIMEOUT_MS),
          CLUSTER_QUORUM: '3',
        },
      });
      nodes[i] = node;
      return node;
    }

    const views = (hosts: number[]) => Promise.all(hosts.map((i) => nodes[i].cluster()));
    const localRuns = (hosts: number[]) =>
      Promise.all(hosts.map((i) => nodes[i].json<LocalRunsView>('/jobs/local')));
    /** Leader names as each host sees them. */
    const leadersOf = async (hosts: number[]) => (await views(hosts)).map((v) => v.leader);
    /** Hosts that consider themselves the leader. */
    const selfLeaders = async (hosts: number[]) =>
      (await views(hosts)).filter((v) => v.leader === v.self.name).map((v) => v.self.name);
    const fullAndAgreed = (all: ClusterView[], count: number) =>
      all.every((v) => v.members.length === count) &&
      new Set(all.map((v) => v.leader)).size === 1 &&
      all[0].leader !== null &&
      new Set(all.map((v) => v.term)).size === 1;

    async function waitHealed(what: string, timeoutMs: number): Promise<number> {
      const since = Date.now();
      let last: ClusterView[] = [];
      const ok = await pollUntil(async () => {
        last = await views(HOSTS);
        return fullAndAgreed(last, 5);
      }, timeoutMs);
      const took = Date.now() - since;
      expect(
        ok,
        `${what}: ${last.map((v) => `${v.self.name} sees ${v.members.length}, leader ${v.leader}, term ${v.term}`).join('; ')}`,
      ).toBe(true);
      return took;
    }

    beforeAll(async () => {
      lab.create();
      // Host 1 starts first: the oldest member, so the leader of the whole cluster.
      await boot(0);
      await Promise.all([1, 2, 3, 4].map((i) => boot(i)));
    }, 90_000);

    afterAll(async () => {
      await Promise.all(nodes.map((n) => n?.shutdown()));
      lab.destroy();
    });

    it('five nodes form one cluster with one leader, one term and quorum held everywhere', async () => {
      await Promise.all(HOSTS.map((i) => nodes[i].waitForMembers(HOSTS.map(name), 20_000)));
      await waitHealed('formation', 5000);
      for (const v of await views(HOSTS)) {
        expect(v.quorum).toEqual({ required: 3, reachable: 5, ok: true });
        expect(v.leader).toBe(name(0));
      }
    });

    it('3|2 split with the leader in the minority: the minority has no leader within failure timeout + 1 s, the majority exactly one, the leader-only job runs on one node; heal: one leader, a larger term', async () => {
      const minority = [0, 1];
      const majority = [2, 3, 4];
      const before = (await views([0]))[0];
      const since = Date.now();
      lab.split(minority, majority);
      const lost = await pollUntil(
        async () => (await leadersOf(minority)).every((l) => l === null),
        FAILURE_TIMEOUT_MS + 1000,
      );
      const lostAfter = Date.now() - since;
      expect(lost, `minority leaders: ${(await leadersOf(minority)).join(', ')}`).toBe(true);
      expect(lostAfter).toBeLessThanOrEqual(FAILURE_TIMEOUT_MS + 1000 + 250);
      for (const v of await views(minority))
        expect(v.quorum).toEqual({ required: 3, reachable: 2, ok: false });

      // The oldest of the majority (hosts 2–5 started together, so any of them) leads it.
      const elected = await pollUntil(async () => {
        const all = await views(majority);
        return fullAndAgreed(all, 3) && majority.map(name).includes(all[0].leader!);
      }, 5000);
      expect(elected, JSON.stringify(await leadersOf(majority))).toBe(true);
      const [{ leader: newLeader, term: newTerm }] = await views([2]);
      const leaderHost = HOSTS.find((i) => name(i) === newLeader)!;
      expect(newTerm).toBeGreaterThan(before.term);

      // Throughout the split: one leader in all five, and only it runs the leader-only job.
      const start = await localRuns(HOSTS);
      for (let k = 0; k < 12; k++) {
        expect(await selfLeaders(HOSTS)).toEqual([newLeader]);
        await new Promise((r) => setTimeout(r, 500));
      }
      const end = await localRuns(HOSTS);
      const ran = HOSTS.filter((i) => end[i].runs > start[i].runs).map(name);
      expect(ran).toEqual([newLeader]);
      // Its runs carry the new term: storage fenced with it rejects the old leader's writes.
      expect(end[leaderHost].lastTerm).toBe(newTerm);
      expect(end[0].lastTerm ?? 0).toBeLessThan(newTerm);

      lab.heal();
      const healedIn = await waitHealed('heal after 3|2', HEAL_BOUND_MS);
      const healed = await views(HOSTS);
      expect(healed[0].leader).toBe(name(0));
      expect(healed[0].term).toBeGreaterThan(newTerm);
      console.log(`partition lab: 3|2 healed in ${healedIn} ms`);
    });

    it('2|2|1 split: no leader anywhere, no leader-only run; heal: one leader and full membership', async () => {
      const since = Date.now();
      lab.split([0, 1], [2, 3], [4]);
      const none = await pollUntil(
        async () => (await leadersOf(HOSTS)).every((l) => l === null),
        FAILURE_TIMEOUT_MS + 1000,
      );
      expect(none, `leaders: ${(await leadersOf(HOSTS)).join(', ')}`).toBe(true);
      expect(Date.now() - since).toBeLessThanOrEqual(FAILURE_TIMEOUT_MS + 1000 + 250);
      const start = await localRuns(HOSTS);
      for (let k = 0; k < 8; k++) {
        expect(await leadersOf(HOSTS)).toEqual([null, null, null, null, null]);
        await new Promise((r) => setTimeout(r, 500));
      }
      const end = await localRuns(HOSTS);
      expect(HOSTS.filter((i) => end[i].runs > start[i].runs).map(name)).toEqual([]);
      for (const v of await views(HOSTS)) expect(v.quorum.ok).toBe(false);

      lab.heal();
      const healedIn = await waitHealed('heal after 2|2|1', HEAL_BOUND_MS);
      console.log(`partition lab: 2|2|1 healed in ${healedIn} ms`);
      expect(await selfLeaders(HOSTS)).toEqual([name(0)]);
    });

    it('one-way loss host1 → host2: exactly one leader everywhere', async (ctx) => {
      // Members carry "state": "up" | "unreachable" once shared reachability is in; without it
      // host2 cannot learn that host1 is alive for the others, and leads its own view.
      const hasReachability = (await views([0]))[0].members.every((m) => 'state' in m);
      if (!hasReachability) {
        ctx.skip('needs shared reachability (Member.state, issue 14 item 1); not on this branch');
        return;
      }
      lab.dropFrom(1, 0);
      try {
        // Failure detection, then the reachability exchange.
        await new Promise((r) => setTimeout(r, FAILURE_TIMEOUT_MS + 1000));
        // Which member leads depends on who has reported whom so far (host2 reports host1
        // first; host1 reports host2 once host2's side closes) — but one member leads, and
        // every node that has a leader names that one.
        for (let k = 0; k < 8; k++) {
          const self = await selfLeaders(HOSTS);
          expect(self).toHaveLength(1);
          const leaders = new Set(await leadersOf(HOSTS));
          expect([...leaders].filter((l) => l !== null)).toEqual(self);
          await new Promise((r) => setTimeout(r, 500));
        }
      } finally {
        lab.heal();
      }
      await waitHealed('heal after one-way loss', HEAL_BOUND_MS);
    });
  });
});
