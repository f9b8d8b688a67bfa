import { beforeAll, describe, expect, it } from 'vitest';
import {
  type NodeProcess,
  randomCookie,
  startNode,
  useNodeCleanup,
  type FlagView,
  type HealthAnswer,
  type HttpErrorBody,
  type JobRunView,
  type PublishAnswer,
  type ReceivedMessageView,
} from '../support/node-process.js';

/** The sample app on its own: what a user sees when starting one instance. */
describe('sample app, one node', () => {
  useNodeCleanup();

  describe('with no cluster environment at all', () => {
    let node: NodeProcess;

    beforeAll(async () => {
      node = await startNode({
        name: 'alone',
        env: { NODE_NAME: undefined, SAMPLE_DEBUG_ROUTES: undefined },
      });
    });

    it('says once that it runs single-node', async () => {
      await node.waitForOutput(/dashboard on http:\/\/127\.0\.0\.1:\d+\//);
      const warnings = node.lines(/\bWARN\b/);
      expect(warnings.filter((line) => /single-node/i.test(line))).toHaveLength(1);
      expect(warnings, 'no other warning at start').toHaveLength(1);
    });

    it('shows itself as the only member and the leader', async () => {
      const view = await node.cluster();
      expect(view.self.name).toMatch(/^app@/);
      expect(view.mode).toBe('single-node');
      expect(view.members).toHaveLength(1);
      expect(view.members[0]).toMatchObject({
        name: view.self.name,
        self: true,
        leader: true,
        state: 'up',
      });
      expect(view.leader).toBe(view.self.name);
    });

    it('reports up on /health, with the cluster indicator', async () => {
      const { status, body } = await node.http<HealthAnswer>('GET', '/health');
      expect(status).toBe(200);
      expect(body.status).toBe('ok');
      expect(body.details.cluster).toMatchObject({
        status: 'up',
        members: 1,
        self: body.details.cluster.self,
      });
    });

    it('delivers a published message to itself and lists it by topic', async () => {
      const published = await node.http<PublishAnswer>('POST', '/messages', {
        topic: 'greetings',
        payload: { text: 'hi' },
      });
      expect(published.status).toBe(201);
      expect(published.body).toEqual({ delivered: [expect.stringMatching(/^app@/)], failed: [] });

      await expect
        .poll(
          async () =>
            (await node.json<ReceivedMessageView[]>('/messages?topic=greetings')).map(
              (m) => m.payload,
            ),
          {
            timeout: 5_000,
          },
        )
        .toEqual([{ text: 'hi' }]);
      const [message] = await node.json<ReceivedMessageView[]>('/messages?topic=greetings');
      expect(message).toMatchObject({ topic: 'greetings', from: published.body.delivered[0] });
      expect(Date.parse(message.at)).not.toBeNaN();
      expect(await node.json('/messages?topic=nothing-here')).toEqual([]);
    });

    it('rejects a message without topic with a clear 400', async () => {
      const { status, body } = await node.http<HttpErrorBody>('POST', '/messages', {
        payload: 'no topic',
      });
      expect(status).toBe(400);
      expect(body.message).toEqual(['topic is required (a non-empty string)']);

      const empty = await node.http<HttpErrorBody>('POST', '/messages', {
        topic: '  ',
        payload: 1,
      });
      expect(empty.status).toBe(400);
      expect(empty.body.message).toEqual(['topic must be a non-empty string']);
    });

    it('keeps feature flags and lists them', async () => {
      const set = await node.http<{ flag: FlagView }>('PUT', '/flags/new_ui', { enabled: true });
      expect(set.status).toBe(200);
      expect(set.body.flag).toMatchObject({ name: 'new_ui', enabled: true });
      expect(await node.json('/flags')).toEqual([
        expect.objectContaining({ name: 'new_ui', enabled: true }),
      ]);

      const bad = await node.http<HttpErrorBody>('PUT', '/flags/new_ui', { enabled: 'yes' });
      expect(bad.status).toBe(400);
      expect(bad.body.message).toMatch(/enabled is required/);
    });

    it('runs the leader-only job, since it is its own leader', async () => {
      const view = await node.cluster();
      await expect
        .poll(async () => (await node.json<JobRunView[]>('/jobs')).length, {
          timeout: 8_000,
          interval: 250,
        })
        .toBeGreaterThan(0);
      const runs: { node: string }[] = await node.json('/jobs');
      expect(new Set(runs.map((r) => r.node))).toEqual(new Set([view.self.name]));
    });

    it('serves the self-contained dashboard', async () => {
      const response = await fetch(`${node.url}/`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
      expect(response.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
      const html = await response.text();
      expect(html).toContain('id="member-count"');
      expect(html).not.toMatch(/(src|href)="https?:/);
    });

    it('has no test-only routes unless SAMPLE_DEBUG_ROUTES=true', async () => {
      expect((await node.http('POST', '/debug/stall', { ms: 10 })).status).toBe(404);
    });

    it('shuts down on SIGTERM within seconds, even with live streams open', async () => {
      const membership = await node.events('/cluster/events');
      const messages = await node.events('/messages/events');
      await membership.waitFor((e) => e.type === 'members', 'a members snapshot on connect');
      const started = Date.now();
      node.kill('SIGTERM');
      const status = await node.exited;
      // Nest's shutdown hooks close the app, then re-raise the signal.
      expect([0, 'SIGTERM']).toContain(status.code ?? status.signal);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(node.output()).not.toMatch(/\bERROR\b/);
      expect(messages.events).toEqual([]);
    });
  });

  describe('with LIBCLUSTER_STRATEGY=none', () => {
    it('runs single-node even with a cookie, and says so once', async () => {
      const node = await startNode({
        name: 'solo@127.0.0.1',
        env: { NODE_COOKIE: randomCookie(), LIBCLUSTER_STRATEGY: 'none', CLUSTER_PORT: '0' },
      });
      await node.waitForOutput(/dashboard on/);
      expect(node.lines(/\bWARN\b.*single-node/i)).toHaveLength(1);

      const view = await node.cluster();
      expect(view).toMatchObject({
        mode: 'single-node',
        strategy: 'none',
        leader: 'solo@127.0.0.1',
      });
      expect(view.members.map((m) => m.name)).toEqual(['solo@127.0.0.1']);
      expect(view.members[0]).toMatchObject({ self: true, leader: true });

      const health = await node.http<HealthAnswer>('GET', '/health');
      expect(health.status).toBe(200);
      expect(health.body.details.cluster.status).toBe('up');

      // The harness turns the test-only routes on.
      const stall = await node.http<{ stalledMs: number }>('POST', '/debug/stall', { ms: 50 });
      expect(stall.status).toBe(201);
      expect(stall.body.stalledMs).toBeGreaterThanOrEqual(50);
      expect((await node.http('POST', '/debug/stall', { ms: 60_000 })).status).toBe(400);
    });
  });
});
