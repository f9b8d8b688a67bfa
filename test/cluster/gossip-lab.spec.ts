import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetnsLab } from '../support/netns.js';
import { startNode, useNodeCleanup, type NodeProcess } from '../support/node-process.js';
import type { SseCollector } from '../support/sse.js';

/**
 * The default strategy across simulated hosts: eight network namespaces on one bridge (itself
 * in a namespace the test creates; addresses 198.18.0.1–8), one sample-app process in each,
 * configured with nothing but `NODE_COOKIE` (plus the host name each machine would have).
 * They find each other over real multicast on the production defaults (233.252.1.32:45892,
 * TTL 1) and link on port 45893. Cutting a host's cable makes it `down` everywhere;
 * plugging it back makes it rejoin by itself.
 */
const available = NetnsLab.available();
const HTTP_PORT = 3000;

interface EventView {
  type: string;
  member: string;
  reason: string;
}

useNodeCleanup();

describe('gossip across hosts (network namespaces)', () => {
  it('runs in CI (root, private namespace)', () => {
    if (process.env.CI === 'true') expect(available).toBe(true);
  });

  describe.skipIf(!available)('eight hosts, production defaults', () => {
    const lab = new NetnsLab(8);
    const nodes: NodeProcess[] = [];
    const streams: SseCollector[] = [];
    const name = (i: number) => `app@host${i + 1}`;

    async function boot(i: number, env: Record<string, string>): Promise<NodeProcess> {
      const node = await startNode({
        name: name(i),
        prefix: lab.exec(i),
        httpHost: lab.hosts[i].address,
        httpPort: HTTP_PORT,
        // Each simulated machine has its own host name; NODE_NAME stays unset.
        env: { NODE_NAME: undefined, HOSTNAME: `host${i + 1}`, ...env },
      });
      nodes[i] = node;
      return node;
    }

    beforeAll(async () => {
      lab.create();
      const clusterA = { NODE_COOKIE: 'lab-cookie-a' };
      const loner = { NODE_COOKIE: 'another-cookie' };
      const clusterB = { NODE_COOKIE: 'lab-cookie-b', LIBCLUSTER_GOSSIP_SECRET: 'lab-secret-b' };
      await Promise.all([
        ...[0, 1, 2, 3, 4].map((i) => boot(i, clusterA)),
        boot(5, loner),
        boot(6, clusterB),
        boot(7, clusterB),
      ]);
      for (const i of [0, 2, 3, 4]) streams[i] = await nodes[i].events();
    }, 90_000);

    afterAll(async () => {
      for (const s of streams) s?.close();
      await Promise.all(nodes.map((n) => n?.shutdown()));
      lab.destroy();
    });

    it('five nodes with only NODE_COOKIE form one cluster, named after their hosts, advertising their own addresses', async () => {
      const five = [0, 1, 2, 3, 4].map(name);
      const views = await Promise.all(
        [0, 1, 2, 3, 4].map((i) => nodes[i].waitForMembers(five, 20_000)),
      );
      for (const [i, view] of views.entries()) {
        expect(view.self.name).toBe(name(i));
        expect(view.self.address).toBe(`198.18.0.${i + 1}:45893`);
        expect(view.strategy).toBe('gossip');
      }
      expect(new Set(views.map((v) => v.leader)).size).toBe(1);
    });

    it('a sixth node with another cookie stays alone, and nobody lists it', async () => {
      // Several heartbeat rounds (1–5 s each) go by.
      await new Promise((r) => setTimeout(r, 6000));
      expect((await nodes[5].cluster()).members.map((m) => m.name)).toEqual([name(5)]);
      for (const i of [0, 1, 2, 3, 4, 6, 7]) {
        expect((await nodes[i].cluster()).members.map((m) => m.name)).not.toContain(name(5));
      }
    });

    it('a second cluster with its own secret shares the group and stays apart', async () => {
      await nodes[6].waitForMembers([name(6), name(7)], 20_000);
      await nodes[7].waitForMembers([name(6), name(7)], 20_000);
      for (const i of [0, 1, 2, 3, 4]) expect((await nodes[i].cluster()).members).toHaveLength(5);
    });

    it('cutting one host off: the others see it down; reconnecting it: it rejoins by itself', async () => {
      const cut = 1;
      const since = Date.now();
      lab.cut(cut);
      const downs = await Promise.all(
        [0, 2, 3, 4].map((i) =>
          streams[i].waitFor<EventView>(
            (e) => e.type === 'down' && e.data.member === name(cut) && e.receivedAt >= since,
            `down of ${name(cut)} on ${name(i)}`,
            12_000,
          ),
        ),
      );
      for (const d of downs) {
        expect(d.data.reason).toBe('heartbeat-timeout');
        // Default failure timeout 5 s, plus a heartbeat interval and the checker's tick.
        expect(d.receivedAt - since).toBeLessThan(7000);
      }
      const four = [0, 2, 3, 4].map(name);
      await Promise.all([0, 2, 3, 4].map((i) => nodes[i].waitForMembers(four, 5000)));

      const restoredAt = Date.now();
      lab.restore(cut);
      await Promise.all(
        [0, 2, 3, 4].map((i) =>
          streams[i].waitFor<EventView>(
            (e) => e.type === 'join' && e.data.member === name(cut) && e.receivedAt >= restoredAt,
            `rejoin of ${name(cut)} on ${name(i)}`,
            20_000,
          ),
        ),
      );
      const five = [0, 1, 2, 3, 4].map(name);
      await Promise.all([0, 1, 2, 3, 4].map((i) => nodes[i].waitForMembers(five, 10_000)));
    });
  });
});
