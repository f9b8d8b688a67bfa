import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KubernetesDiscoveryError } from '../../../lib/errors/kubernetes-discovery.error.js';
import {
  KubernetesStrategy,
  type KubernetesStrategyConfig,
} from '../../../lib/strategies/kubernetes.strategy.js';
import { labelSelectorProblem } from '../../../lib/strategies/kubernetes/label-selector.js';
import { FakeKubeApi } from '../../support/fake-kube-api.js';
import { FakeStrategyContext } from './fake-context.js';

/**
 * The Kubernetes strategy in-process against the HTTPS stand-in (its own CA, bearer token,
 * list + watch with the real wire format), with the real `https` client. The fake context
 * records what the strategy hands to the core.
 */
const PORT = 45893;
const WAIT_MS = 5000;
const LABELS = { app: 'myapp', 'kubernetes.io/service-name': 'myapp' };

describe('KubernetesStrategy against a local API server', () => {
  let api: FakeKubeApi;
  let strategies: KubernetesStrategy[] = [];

  beforeAll(async () => {
    api = await FakeKubeApi.start({ namespace: 'shop' });
  });
  afterAll(async () => {
    await api.close();
  });
  afterEach(() => {
    for (const s of strategies) s.stop();
    strategies = [];
    api.forbidden.clear();
    api.stall = false;
    api.rotateToken('token-1');
    for (const name of ['a', 'b', 'big', 'other']) api.remove('endpointslices', name);
    for (const name of ['p1', 'p2', 'p3', 'p4']) api.remove('pods', name);
    api.requests.length = 0;
  });

  function start(config: Partial<KubernetesStrategyConfig> = {}) {
    const ctx = new FakeStrategyContext({ name: 'myapp@10.0.0.1' });
    const strategy = new KubernetesStrategy({
      selector: 'app=myapp',
      nodeBasename: 'myapp',
      clusterPort: PORT,
      serviceAccountPath: api.serviceAccountDir,
      env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(api.port) },
      maxBackoffMs: 400,
      ...config,
    });
    strategies.push(strategy);
    strategy.start(ctx);
    return { strategy, ctx };
  }

  /** Waits until the current strategy's watch is open at the stand-in (old ones closed). */
  async function watching(server: FakeKubeApi): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    while (!(server.openWatches() === 1 && server.requestsOf('endpointslices', true).length > 0)) {
      if (Date.now() > deadline)
        throw new Error(
          `no single open watch within ${WAIT_MS} ms (open: ${server.openWatches()})`,
        );
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  const hosts = (ctx: FakeStrategyContext) => ctx.lastConnect.map((e) => e.host).sort();
  const errorsOf = (ctx: FakeStrategyContext) => ctx.errors.map((e) => (e as Error).message);

  it('merges every EndpointSlice of the selector, keeps ready endpoints only, and follows the watch', async () => {
    api.setSlice('a', LABELS, [
      { ip: '10.0.0.1', ready: true },
      { ip: '10.0.0.2' }, // no conditions: ready, as the API defines it
      { ip: '10.0.0.3', ready: false, serving: false },
    ]);
    api.setSlice('b', LABELS, [
      { ip: '10.0.0.4', ready: false, serving: true, terminating: true },
      { ip: '10.0.0.5', ready: true },
      { ip: '10.0.0.2', ready: true }, // in both slices: once
    ]);
    api.setSlice('other', { app: 'someone-else' }, [{ ip: '10.0.0.9', ready: true }]);
    const { ctx } = start();
    await ctx.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'first list');
    expect(ctx.lastConnect).toEqual([
      { host: '10.0.0.1', port: PORT, name: 'myapp@10.0.0.1' },
      { host: '10.0.0.2', port: PORT, name: 'myapp@10.0.0.2' },
      { host: '10.0.0.5', port: PORT, name: 'myapp@10.0.0.5' },
    ]);
    expect(ctx.oks.length).toBeGreaterThanOrEqual(1);
    await watching(api);

    // A pod becomes ready, another is removed: both arrive through the watch.
    api.setSlice('a', LABELS, [
      { ip: '10.0.0.1', ready: true },
      { ip: '10.0.0.3', ready: true },
    ]);
    await ctx.waitFor(
      (c) => hosts(c).join() === '10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.5',
      WAIT_MS,
      'watch MODIFIED',
    );
    api.remove('endpointslices', 'b');
    await ctx.waitFor((c) => hosts(c).join() === '10.0.0.1,10.0.0.3', WAIT_MS, 'watch DELETED');
    // One list, then watches only (no polling).
    expect(api.requestsOf('endpointslices', false)).toHaveLength(1);
    const watch = api.requestsOf('endpointslices', true)[0];
    expect(watch.query.get('labelSelector')).toBe('app=myapp');
    expect(watch.query.get('resourceVersion')).toMatch(/^\d+$/);
    expect(watch.token).toBe('token-1');
  });

  it('includes not-ready endpoints only when asked to, and never terminating ones', async () => {
    api.setSlice('a', LABELS, [
      { ip: '10.0.0.1', ready: true },
      { ip: '10.0.0.2', ready: false },
      { ip: '10.0.0.3', ready: false, serving: true, terminating: true },
    ]);
    const excluded = start();
    const included = start({ includeNotReady: true });
    await excluded.ctx.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'first list (default)');
    await included.ctx.waitFor(
      (c) => c.connects.length >= 1,
      WAIT_MS,
      'first list (includeNotReady)',
    );
    expect(hosts(excluded.ctx)).toEqual(['10.0.0.1']);
    expect(hosts(included.ctx)).toEqual(['10.0.0.1', '10.0.0.2']);
  });

  it('pods mode, and dns / hostname names with the configured cluster domain', async () => {
    api.setPod('p1', { app: 'myapp' }, { ip: '10.0.1.1', hostname: 'myapp-0', subdomain: 'myapp' });
    api.setPod(
      'p2',
      { app: 'myapp' },
      { ip: '10.0.1.2', ready: false, hostname: 'myapp-1', subdomain: 'myapp' },
    );
    api.setPod('p3', { app: 'myapp' }, { ip: '10.0.1.3', deleting: true });
    api.setPod('p4', { app: 'myapp' }, { phase: 'Pending', ready: false });
    const pods = start({ ipLookupMode: 'pods', mode: 'hostname', clusterDomain: 'corp.example' });
    await pods.ctx.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'pods listed');
    expect(pods.ctx.lastConnect).toEqual([
      { host: '10.0.1.1', port: PORT, name: 'myapp@myapp-0.myapp.shop.svc.corp.example' },
    ]);
    const notReady = start({ ipLookupMode: 'pods', mode: 'dns', includeNotReady: true });
    await notReady.ctx.waitFor(
      (c) => c.connects.length >= 1,
      WAIT_MS,
      'pods listed (not ready included)',
    );
    expect(notReady.ctx.lastConnectNames).toEqual([
      'myapp@10-0-1-1.shop.pod.cluster.local',
      'myapp@10-0-1-2.shop.pod.cluster.local',
    ]);
    expect(api.requestsOf('pods', false).length).toBeGreaterThanOrEqual(2);
  });

  it('410 Gone: lists again and loses nothing that happened while the watch was behind', async () => {
    api.setSlice('a', LABELS, [{ ip: '10.0.0.1', ready: true }]);
    const { ctx } = start();
    await watching(api);
    // A change the watch never delivers, then the history is compacted: only a relist sees it.
    api.stall = true;
    api.setSlice('a', LABELS, [
      { ip: '10.0.0.1', ready: true },
      { ip: '10.0.0.2', ready: true },
    ]);
    api.stall = false;
    expect(hosts(ctx)).toEqual(['10.0.0.1']);
    api.expireResourceVersions();
    await ctx.waitFor((c) => hosts(c).join() === '10.0.0.1,10.0.0.2', WAIT_MS, 'relist after 410');
    await ctx.waitFor(
      (c) => c.logger.at('log').some((l) => l.includes('expired (410 Gone): listing again')),
      WAIT_MS,
      '410 log',
    );
    expect(api.requestsOf('endpointslices', false)).toHaveLength(2);
    expect(ctx.errors).toEqual([]);
    // No set without 10.0.0.1 was ever handed over.
    expect(ctx.connects.every((set) => set.some((e) => e.host === '10.0.0.1'))).toBe(true);
  });

  it('403: keeps the members, reports the Role rule to add, and recovers when allowed', async () => {
    api.setSlice('a', LABELS, [
      { ip: '10.0.0.1', ready: true },
      { ip: '10.0.0.2', ready: true },
    ]);
    const { ctx } = start();
    await watching(api);
    const handed = ctx.connects.length;
    api.forbidden.add('list');
    api.forbidden.add('watch');
    api.closeWatches();
    await ctx.waitFor((c) => c.errors.length >= 1, WAIT_MS, 'a reported error');
    const error = ctx.errors[0] as KubernetesDiscoveryError;
    expect(error).toBeInstanceOf(KubernetesDiscoveryError);
    expect(error.failure).toBe('forbidden');
    expect(error.message).toContain(
      'not allowed to list endpointslices.discovery.k8s.io in namespace shop (403 Forbidden)',
    );
    expect(error.message).toContain(
      'add this rule to a Role in namespace shop bound to the pod\'s service account: { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["list", "watch"] }',
    );
    expect(ctx.logger.at('warn').join('\n')).toContain('keeping the current members');
    expect(ctx.connects.length).toBe(handed); // nothing handed over: members kept
    api.forbidden.clear();
    const oks = ctx.oks.length;
    await ctx.waitFor((c) => c.oks.length > oks, WAIT_MS, 'recovery');
    expect(ctx.logger.at('log').some((l) => l.includes('Kubernetes discovery works again'))).toBe(
      true,
    );
  });

  it('a watch that is forbidden falls back to polling the list, saying which verb to grant', async () => {
    api.forbidden.add('watch');
    api.setSlice('a', LABELS, [{ ip: '10.0.0.1', ready: true }]);
    const { ctx } = start({ pollingIntervalMs: 100 });
    await ctx.waitFor(
      (c) => c.logger.at('warn').some((l) => l.includes('not allowed to watch')),
      WAIT_MS,
      'watch 403 warning',
    );
    api.setSlice('a', LABELS, [
      { ip: '10.0.0.1', ready: true },
      { ip: '10.0.0.7', ready: true },
    ]);
    await ctx.waitFor(
      (c) => hosts(c).join() === '10.0.0.1,10.0.0.7',
      WAIT_MS,
      'change seen by polling',
    );
    expect(api.requestsOf('endpointslices', false).length).toBeGreaterThanOrEqual(2);
  });

  it('a token file replaced mid-run is read for the next request', async () => {
    api.setSlice('a', LABELS, [{ ip: '10.0.0.1', ready: true }]);
    const { ctx } = start();
    await watching(api);
    api.rotateToken('token-2');
    api.setSlice('a', LABELS, [
      { ip: '10.0.0.1', ready: true },
      { ip: '10.0.0.3', ready: true },
    ]);
    await ctx.waitFor(
      (c) => hosts(c).join() === '10.0.0.1,10.0.0.3',
      WAIT_MS,
      'change after rotation',
    );
    expect(api.requests.filter((r) => r.status === 401)).toEqual([]);
    expect(api.requests.at(-1)!.token).toBe('token-2');
  });

  it('an unreadable token file: an error naming the file, members kept, recovery when it is back', async () => {
    api.setSlice('a', LABELS, [{ ip: '10.0.0.1', ready: true }]);
    const { ctx } = start();
    await watching(api);
    const handed = ctx.connects.length;
    const tokenFile = join(api.serviceAccountDir, 'token');
    rmSync(tokenFile);
    api.closeWatches();
    await ctx.waitFor((c) => c.errors.length >= 1, WAIT_MS, 'token error');
    expect(errorsOf(ctx)[0]).toContain(
      `cannot read the service-account token ${tokenFile} (ENOENT)`,
    );
    expect(ctx.connects.length).toBe(handed);
    writeFileSync(tokenFile, 'token-1');
    chmodSync(tokenFile, 0o600);
    const oks = ctx.oks.length;
    await ctx.waitFor((c) => c.oks.length > oks, WAIT_MS, 'recovery');
  });

  it('a watch stream that sends garbage, or stalls, is dropped and the list read again; members kept', async () => {
    api.setSlice('a', LABELS, [{ ip: '10.0.0.1', ready: true }]);
    const { ctx } = start({ watchTimeoutSeconds: 1, watchIdleTimeoutMs: 1500 });
    await watching(api);
    api.sendGarbage('{"oops": garbage\n');
    await ctx.waitFor((c) => c.errors.length >= 1, WAIT_MS, 'garbage error');
    expect(errorsOf(ctx)[0]).toContain('the watch stream sent a line that is not a watch event');
    await ctx.waitFor(
      () => api.requestsOf('endpointslices', false).length === 2,
      WAIT_MS,
      'relist after garbage',
    );

    api.stall = true;
    api.closeWatches();
    const before = ctx.errors.length;
    await ctx.waitFor((c) => c.errors.length > before, WAIT_MS, 'stall error');
    expect(errorsOf(ctx).at(-1)).toContain('the watch stream sent nothing for 1500 ms (stalled)');
    expect(ctx.connects.every((set) => set.length === 1 && set[0].host === '10.0.0.1')).toBe(true);
  });

  it('a slice with 10,000 endpoints is refused: the previous set stays, health shows why', async () => {
    api.setSlice('a', LABELS, [{ ip: '10.0.0.1', ready: true }]);
    const { ctx } = start();
    await watching(api);
    const handed = ctx.connects.length;
    const many = Array.from({ length: 10_000 }, (_, i) => ({
      ip: `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
      ready: true,
    }));
    api.setSlice('big', LABELS, many);
    await ctx.waitFor((c) => c.errors.length >= 1, WAIT_MS, 'refused slice');
    expect(errorsOf(ctx)[0]).toContain(
      'EndpointSlice big has 10000 endpoints, more than discovery.k8s.io/v1 allows (1000)',
    );
    expect(ctx.connects.length).toBe(handed);
    api.remove('endpointslices', 'big');
    await ctx.waitFor((c) => c.connects.length > handed, WAIT_MS, 'set handed over again');
    expect(hosts(ctx)).toEqual(['10.0.0.1']);
  });

  it('a namespace that does not exist (empty answer) warns naming LIBCLUSTER_KUBERNETES_NAMESPACE', async () => {
    const { ctx } = start({ namespace: 'no-such-ns' });
    await ctx.waitFor((c) => c.logger.at('warn').length >= 1, WAIT_MS, 'empty warning');
    expect(ctx.logger.at('warn')[0]).toContain(
      'no ready pods match app=myapp in namespace no-such-ns',
    );
    expect(ctx.logger.at('warn')[0]).toContain('LIBCLUSTER_KUBERNETES_NAMESPACE');
  });

  it('a selector the API server refuses (400) names LIBCLUSTER_KUBERNETES_SELECTOR', async () => {
    const { ctx } = start({ selector: 'app in (myapp)' }); // valid syntax; the stand-in cannot parse sets
    await ctx.waitFor((c) => c.errors.length >= 1, WAIT_MS, 'selector error');
    expect(errorsOf(ctx)[0]).toContain(
      'the API server refused the label selector "app in (myapp)" (400)',
    );
    expect(errorsOf(ctx)[0]).toContain('fix LIBCLUSTER_KUBERNETES_SELECTOR');
  });

  it('a server certificate that does not verify against ca.crt is an error naming the CA file', async () => {
    const other = await FakeKubeApi.start();
    try {
      const ctx = new FakeStrategyContext({ name: 'myapp@10.0.0.1' });
      const strategy = new KubernetesStrategy({
        selector: 'app=myapp',
        clusterPort: PORT,
        serviceAccountPath: api.serviceAccountDir, // the first server's CA
        env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(other.port) },
      });
      strategies.push(strategy);
      strategy.start(ctx);
      await ctx.waitFor((c) => c.errors.length >= 1, WAIT_MS, 'tls error');
      expect(errorsOf(ctx)[0]).toContain(
        `does not verify against ${join(api.serviceAccountDir, 'ca.crt')}`,
      );
      expect(other.requests).toEqual([]);
    } finally {
      await other.close();
    }
  });
});

describe('labelSelectorProblem', () => {
  it('accepts what the API server accepts', () => {
    for (const ok of [
      'app=myapp',
      'app==myapp,tier!=db',
      'app in (a, b),!legacy',
      'example.com/part-of=shop',
      'env notin (dev)',
      'app',
    ]) {
      expect(labelSelectorProblem(ok), ok).toBeUndefined();
    }
  });
  it('says what is wrong', () => {
    expect(labelSelectorProblem('app=my app')).toMatch(/requirement "app=my app"/);
    expect(labelSelectorProblem('app=,')).toMatch(/empty requirement/);
    expect(labelSelectorProblem('app in (a')).toMatch(/set requirement/);
    expect(labelSelectorProblem('=myapp')).toMatch(/label key is missing/);
    expect(labelSelectorProblem('app=myapp=x')).toMatch(/unexpected operator/);
  });
});
