import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ensureSampleBuilt,
  randomCookie,
  SAMPLE_MAIN,
  startNode,
  useNodeCleanup,
  type HealthAnswer,
  type LocalRunsView,
} from '../support/node-process.js';

/** Runs the built sample app with only `env` until it exits. */
function runSample(env: Record<string, string>): Promise<{ code: number | null; printed: string }> {
  const cwd = mkdtempSync(join(tmpdir(), 'cluster-quorum-error-'));
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--enable-source-maps', SAMPLE_MAIN],
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

/** The quorum guard in the sample app, as a user starting it sees it. */
describe('CLUSTER_QUORUM in the sample app', () => {
  useNodeCleanup();

  it.each(['0', '-1', '20000', 'maj'])(
    'CLUSTER_QUORUM=%s stops the start with one configuration error naming the variable, no stack trace',
    async (value) => {
      await ensureSampleBuilt();
      const { code, printed } = await runSample({
        NODE_COOKIE: randomCookie(),
        LIBCLUSTER_STRATEGY: 'none',
        CLUSTER_QUORUM: value,
      });
      expect(code, printed).toBe(1);
      expect(printed).toContain('ClusterConfigError');
      expect(printed).toContain(
        `CLUSTER_QUORUM: ${JSON.stringify(value)} is not a quorum (accepted: an integer from 1 to 10000 — the members a side needs to have a leader — or majority)`,
      );
      expect(printed).not.toMatch(/^\s+at /m);
    },
  );

  it('a node below quorum shows quorum.ok false and no leader, runs no leader-only job, and /health is down', async () => {
    const node = await startNode({
      name: 'q@127.0.0.1',
      env: {
        NODE_COOKIE: randomCookie(),
        LIBCLUSTER_STRATEGY: 'none',
        CLUSTER_PORT: '0',
        CLUSTER_QUORUM: '2',
      },
    });
    await node.waitForOutput(/quorum guard on \(CLUSTER_QUORUM=2\)/);
    const view = await node.cluster();
    expect(view.quorum).toEqual({ required: 2, reachable: 1, ok: false });
    expect(view.leader).toBeNull();
    expect(view.members[0]).toMatchObject({ self: true, leader: false });
    // The digest job ticks every 2 s; three ticks go by without a run.
    await new Promise((r) => setTimeout(r, 6_500));
    expect(await node.json<LocalRunsView>('/jobs/local')).toMatchObject({
      runs: 0,
      lastTerm: null,
    });
    const health = await node.http<HealthAnswer>('GET', '/health');
    expect(health.status).toBe(503);
    expect(health.body.details.cluster).toMatchObject({
      status: 'down',
      message: 'below quorum: 1 of 2 required members reachable',
    });
  });

  it('without CLUSTER_QUORUM: quorum required null, ok true, the node leads with a term and runs the job', async () => {
    const node = await startNode({
      name: 'nq@127.0.0.1',
      env: { NODE_COOKIE: randomCookie(), LIBCLUSTER_STRATEGY: 'none', CLUSTER_PORT: '0' },
    });
    const view = await node.cluster();
    expect(view.quorum).toEqual({ required: null, reachable: 1, ok: true });
    expect(view.leader).toBe('nq@127.0.0.1');
    expect(view.term).toBeGreaterThan(0);
    await expect
      .poll(async () => (await node.json<LocalRunsView>('/jobs/local')).runs, {
        timeout: 8_000,
        interval: 250,
      })
      .toBeGreaterThan(0);
    expect((await node.json<LocalRunsView>('/jobs/local')).lastTerm).toBe(view.term);
  });
});
