import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ensureSampleBuilt,
  freePorts,
  randomCookie,
  SAMPLE_MAIN,
  startNode,
  staticEnv,
  useNodeCleanup,
  type NodeProcess,
} from '../support/node-process.js';
import type { SseCollector } from '../support/sse.js';

/**
 * Cookie rotation as an operator does it, with real processes on the static strategy: a
 * rolling deploy from cookie A to cookie B — every node `NODE_COOKIE=A`; then, one node at a
 * time, `NODE_COOKIE=B NODE_COOKIE_PREVIOUS=A`; then, one at a time, `NODE_COOKIE=B` alone —
 * keeps one cluster throughout. Then A is refused.
 */
useNodeCleanup();

interface EventView {
  type: string;
  member: string;
  reason: string;
}

const NAMES = [0, 1, 2].map((i) => `n${i}@127.0.0.1`);

describe('cookie rotation: rolling deploy from A to B', () => {
  it('stays one cluster at every step; a node with only the retired cookie is refused', async () => {
    const ports = await freePorts(4);
    const A = randomCookie();
    const B = randomCookie();
    const envOf = (i: number, cookie: string, previous?: string) => ({
      ...staticEnv(cookie, ports.slice(0, 3), i),
      NODE_NAME: NAMES[i],
      ...(previous ? { NODE_COOKIE_PREVIOUS: previous } : {}),
    });
    const nodes: NodeProcess[] = [];
    const streams: SseCollector[] = [];
    const start = async (i: number, cookie: string, previous?: string) => {
      nodes[i] = await startNode({ name: NAMES[i], env: envOf(i, cookie, previous) });
      streams[i] = await nodes[i].events();
    };
    /** Every node shows the three names, with the incarnation each process really has. */
    const oneCluster = async (what: string) => {
      const selves = await Promise.all(nodes.map(async (n) => (await n.cluster()).self));
      await Promise.all(
        nodes.map((n) =>
          n.waitForCluster(
            (view) =>
              view.members.length === 3 &&
              selves.every((self) =>
                view.members.some(
                  (m) => m.name === self.name && m.incarnation === self.incarnation,
                ),
              ),
            `one cluster of three (${what})`,
            20_000,
          ),
        ),
      );
    };

    await Promise.all([0, 1, 2].map((i) => start(i, A)));
    await oneCluster('all on A');

    const steps: Array<[string, string, string | undefined]> = [
      ['B with previous A', B, A],
      ['B alone', B, undefined],
    ];
    for (const [label, cookie, previous] of steps) {
      for (const i of [0, 1, 2]) {
        const counts = streams.map((s) => s.ofType('join').length);
        const marks = streams.map((s) => ({ leave: s.ofType('leave'), down: s.ofType('down') }));
        streams[i].close();
        const exit = await nodes[i].shutdown();
        // Nest re-raises SIGTERM after its shutdown hooks: a clean exit by the signal.
        expect(exit.code === 0 || exit.signal === 'SIGTERM', `${NAMES[i]} exit`).toBe(true);
        await start(i, cookie, previous);
        await oneCluster(`${NAMES[i]} restarted with ${label}`);
        // Nobody but the restarted node left or went down, on any node that kept running.
        for (const j of [0, 1, 2].filter((j) => j !== i)) {
          const seen = (type: 'leave' | 'down') =>
            streams[j]
              .ofType<EventView>(type)
              .slice(marks[j][type].length)
              .map((e) => `${NAMES[j]} saw ${type} of ${e.data.member} (${e.data.reason})`);
          expect(
            [...seen('leave'), ...seen('down')].filter((e) => !e.includes(` of ${NAMES[i]} `)),
          ).toEqual([]);
          expect(streams[j].ofType('join').length).toBeGreaterThan(counts[j]);
        }
      }
    }

    // A is retired: a node that still has only A is refused by every member.
    const stale = await startNode({
      name: 'stale@127.0.0.1',
      env: {
        ...staticEnv(A, ports, 3),
        NODE_NAME: 'stale@127.0.0.1',
      },
    });
    await stale.waitForOutput(/cookie mismatch/, 15_000);
    expect(await stale.memberNames()).toEqual(['stale@127.0.0.1']);
    for (const n of nodes) expect(await n.memberNames()).toEqual([...NAMES].sort());
    for (const s of streams) s.close();
  }, 240_000);
});

/** Runs the built sample app with only `env` until it exits (it is expected to fail fast). */
function runSample(env: Record<string, string>): Promise<{ code: number | null; printed: string }> {
  const cwd = mkdtempSync(join(tmpdir(), 'cluster-weak-cookie-'));
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [SAMPLE_MAIN],
      {
        cwd,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NO_COLOR: '1', PORT: '0', ...env },
        timeout: 30_000,
      },
      (error, stdout, stderr) => {
        rmSync(cwd, { recursive: true, force: true });
        const code = error ? ((error as { code?: number | null }).code ?? null) : 0;
        resolve({ code: typeof code === 'number' ? code : null, printed: `${stdout}${stderr}` });
      },
    );
  });
}

describe('weak cookies', () => {
  it('a placeholder cookie starts the node with one warning saying how to generate a cookie', async () => {
    const [port] = await freePorts(1);
    const node = await startNode({
      name: 'weak@127.0.0.1',
      env: { ...staticEnv('change-me', [port], 0), NODE_NAME: 'weak@127.0.0.1' },
    });
    await node.waitForMembers(['weak@127.0.0.1']);
    const warnings = node.lines(/NODE_COOKIE is a well-known placeholder/);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('openssl rand -base64 32');
    expect(node.output()).not.toContain('change-me');
  });

  it('CLUSTER_REQUIRE_STRONG_COOKIE=true: the node does not start, and says which variable to fix', async () => {
    await ensureSampleBuilt();
    const { code, printed } = await runSample({
      NODE_COOKIE: 'change-me',
      CLUSTER_REQUIRE_STRONG_COOKIE: 'true',
      LIBCLUSTER_STRATEGY: 'static',
      LIBCLUSTER_HOSTS: '127.0.0.1:1',
    });
    expect(code, printed).toBe(1);
    expect(printed).toContain('ClusterConfigError: Invalid cluster configuration (1 problem):');
    expect(printed).toContain(
      '  - NODE_COOKIE: is a well-known placeholder and CLUSTER_REQUIRE_STRONG_COOKIE is true: generate one with `openssl rand -base64 32` and set it on every node',
    );
    expect(printed).not.toMatch(/^\s+at /m);
    expect(printed).not.toContain('change-me');
  });
});
