import { EC2Client } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClusterError } from '../../../lib/errors/cluster.error.js';
import { Ec2DiscoveryError } from '../../../lib/errors/ec2-discovery.error.js';
import { MissingPackageError } from '../../../lib/errors/missing-package.error.js';
import { Ec2Strategy, type Ec2StrategyConfig } from '../../../lib/strategies/ec2.strategy.js';
import { FakeEc2Server, type FakeInstance } from '../../support/fake-ec2-server.js';
import { FakeImdsServer } from '../../support/fake-imds-server.js';
import { FakeStrategyContext } from './fake-context.js';

const ENV_KEYS = [
  'AWS_ENDPOINT_URL_EC2',
  'AWS_ENDPOINT_URL',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_REGION',
  'AWS_PROFILE',
  'AWS_CONFIG_FILE',
  'AWS_SHARED_CREDENTIALS_FILE',
  'AWS_MAX_ATTEMPTS',
  'AWS_EC2_METADATA_SERVICE_ENDPOINT',
  'AWS_EC2_METADATA_DISABLED',
] as const;

const PORT = 45893;
const WAIT_MS = 5000;

function tagged(n: number, value = 'oli', extra: Partial<FakeInstance> = {}): FakeInstance {
  return {
    instanceId: `i-${value}${String(n).padStart(4, '0')}`,
    privateIpAddress: `10.0.${value === 'oli' ? 1 : 2}.${n}`,
    ipAddress: `54.0.${value === 'oli' ? 1 : 2}.${n}`,
    tags: { cluster: value, Name: `${value}-${n}` },
    ...extra,
  };
}

const errorsOf = (ctx: FakeStrategyContext): Ec2DiscoveryError[] =>
  ctx.errors.filter((e): e is Ec2DiscoveryError => e instanceof Ec2DiscoveryError);

describe('Ec2Strategy against an EC2 Query API endpoint (real AWS SDK)', () => {
  const savedEnv = new Map<string, string | undefined>();
  let ec2: FakeEc2Server;
  let strategies: Ec2Strategy[] = [];
  let imds: FakeImdsServer | undefined;

  beforeEach(async () => {
    for (const key of ENV_KEYS) {
      savedEnv.set(key, process.env[key]);
      delete process.env[key];
    }
    ec2 = await FakeEc2Server.start({ pageSize: 1000 });
    process.env.AWS_ENDPOINT_URL_EC2 = ec2.url;
    process.env.AWS_ACCESS_KEY_ID = 'AKIDTESTCLUSTER';
    process.env.AWS_SECRET_ACCESS_KEY = 'test-secret';
    process.env.AWS_REGION = 'eu-west-1';
    process.env.AWS_CONFIG_FILE = '/nonexistent/aws-config';
    process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/aws-credentials';
    // One attempt per SDK call: every injected fault reaches the strategy.
    process.env.AWS_MAX_ATTEMPTS = '1';
  });

  afterEach(async () => {
    for (const s of strategies) s.stop();
    strategies = [];
    await ec2.close();
    await imds?.close();
    imds = undefined;
    for (const [key, value] of savedEnv) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });

  function startStrategy(
    config: Partial<Ec2StrategyConfig> = {},
    ctx = new FakeStrategyContext({ name: 'oli@10.0.1.1' }),
  ): { strategy: Ec2Strategy; ctx: FakeStrategyContext; started: Promise<void> } {
    const strategy = new Ec2Strategy({
      tagName: 'cluster',
      tagValue: 'oli',
      clusterPort: PORT,
      pollingIntervalMs: 100,
      maxBackoffMs: 300,
      instanceMetadata: null,
      ...config,
    });
    strategies.push(strategy);
    return { strategy, ctx, started: Promise.resolve(strategy.start(ctx)) };
  }

  it('filters on the tag and running state, follows NextToken over every page, and hands over the full set', async () => {
    ec2.pageSize = 3;
    ec2.instances = [
      ...[1, 2, 3, 4, 5, 6, 7].map((n) => tagged(n)),
      tagged(8, 'oli', { state: 'stopped' }),
      tagged(9, 'oli', { state: 'pending' }),
      tagged(1, 'other'),
      { instanceId: 'i-untagged', privateIpAddress: '10.0.9.9' },
    ];
    const { ctx, started } = startStrategy();
    await started;

    await ctx.waitFor((c) => c.connects.length >= 2, WAIT_MS, 'two polls');

    const expected = [1, 2, 3, 4, 5, 6, 7].map((n) => ({
      host: `10.0.1.${n}`,
      port: PORT,
      name: `oli@10.0.1.${n}`,
    }));
    expect(ctx.connects[0]).toEqual(expected);
    expect(ctx.connects[1]).toEqual(expected);
    expect(ctx.oks.length).toBeGreaterThanOrEqual(2);
    expect(ctx.errors).toEqual([]);

    const calls = ec2.requestsOf('DescribeInstances');
    const firstPoll = calls.slice(0, 3);
    for (const call of calls) {
      expect(call.version).toBe('2016-11-15');
      expect(call.filters).toEqual([
        { name: 'tag:cluster', values: ['oli'] },
        { name: 'instance-state-name', values: ['running'] },
      ]);
      expect(call.accessKeyId).toBe('AKIDTESTCLUSTER');
      expect(call.region).toBe('eu-west-1');
    }
    // 7 matching instances at 3 per page: exactly 3 requests per poll, chained by NextToken.
    expect(firstPoll[0].nextToken).toBeUndefined();
    expect(firstPoll[1].nextToken).toEqual(expect.any(String));
    expect(firstPoll[2].nextToken).toEqual(expect.any(String));
    expect(firstPoll[1].nextToken).not.toBe(firstPoll[2].nextToken);
    expect(calls[3].nextToken).toBeUndefined();
    expect(calls.length).toBeGreaterThanOrEqual(6);
    expect(calls.slice(3, 6).map((c) => c.nextToken)).toEqual(firstPoll.map((c) => c.nextToken));
  });

  it('public ipType dials public addresses, skips instances without one, and names nodes after the app prefix', async () => {
    ec2.instances = [tagged(1), tagged(2, 'oli', { ipAddress: undefined }), tagged(3)];
    const ctx = new FakeStrategyContext({ name: 'torus@10.0.1.1' });
    const { started } = startStrategy({ ipType: 'public' }, ctx);
    await started;

    await ctx.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'first poll');

    expect(ctx.connects[0]).toEqual([
      { host: '54.0.1.1', port: PORT, name: 'torus@54.0.1.1' },
      { host: '54.0.1.3', port: PORT, name: 'torus@54.0.1.3' },
    ]);
    expect(
      ctx.logger.at('debug').some((l) => l.includes('i-oli0002') && l.includes('public')),
    ).toBe(true);
  });

  it('an explicit appPrefix names the private-address endpoints', async () => {
    ec2.instances = [tagged(1), tagged(2)];
    const { ctx, started } = startStrategy({ appPrefix: 'oli_prod' });
    await started;
    await ctx.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'first poll');
    expect(ctx.lastConnectNames).toEqual(['oli_prod@10.0.1.1', 'oli_prod@10.0.1.2']);
  });

  it('an instance that stops drops out of the next set', async () => {
    ec2.instances = [tagged(1), tagged(2), tagged(3)];
    const { ctx, started } = startStrategy();
    await started;
    await ctx.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'first poll');
    expect(ctx.lastConnect.map((e) => e.host)).toEqual(['10.0.1.1', '10.0.1.2', '10.0.1.3']);

    ec2.instances[1].state = 'stopped';
    await ctx.waitFor(
      (c) => c.lastConnect.length === 2,
      WAIT_MS,
      'a set without the stopped instance',
    );
    expect(ctx.lastConnect.map((e) => e.host)).toEqual(['10.0.1.1', '10.0.1.3']);

    ec2.instances = ec2.instances.filter((i) => i.instanceId !== 'i-oli0003');
    await ctx.waitFor(
      (c) => c.lastConnect.length === 1,
      WAIT_MS,
      'a set without the terminated instance',
    );
    expect(ctx.lastConnect).toEqual([{ host: '10.0.1.1', port: PORT, name: 'oli@10.0.1.1' }]);
    expect(ctx.connects.every((set) => set.length > 0)).toBe(true);
  });

  it("defaults tagValue to this instance's own tag, found through the instance metadata, and the region to the metadata region", async () => {
    delete process.env.AWS_REGION;
    imds = await FakeImdsServer.start({
      mode: 'v2-required',
      instanceId: 'i-blue0002',
      region: 'ap-southeast-2',
    });
    process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = imds.url;
    ec2.instances = [tagged(1), tagged(1, 'blue'), tagged(2, 'blue'), tagged(2)];
    ec2.instances[2].instanceId = 'i-blue0002';

    const { ctx, started } = startStrategy({ tagValue: undefined, instanceMetadata: undefined });
    await started;
    await ctx.waitFor((c) => c.connects.length >= 2, WAIT_MS, 'two polls');

    expect(ctx.connects[0]).toEqual([
      { host: '10.0.2.1', port: PORT, name: 'oli@10.0.2.1' },
      { host: '10.0.2.2', port: PORT, name: 'oli@10.0.2.2' },
    ]);
    const calls = ec2.requestsOf('DescribeInstances');
    expect(calls[0].filters).toEqual([{ name: 'instance-id', values: ['i-blue0002'] }]);
    // Looked up once: every later call is a discovery poll with the found value.
    for (const call of calls.slice(1)) {
      expect(call.filters).toEqual([
        { name: 'tag:cluster', values: ['blue'] },
        { name: 'instance-state-name', values: ['running'] },
      ]);
    }
    expect(calls.every((c) => c.region === 'ap-southeast-2')).toBe(true);
    expect(imds.metadataRequests().filter((r) => r.path.endsWith('/instance-id'))).toHaveLength(1);
    expect(ctx.logger.at('log').some((l) => l.includes('cluster=blue'))).toBe(true);
  });

  it('AWS_REGION wins over the metadata region; the region option wins over both', async () => {
    ec2.instances = [tagged(1)];
    const metadata = { instanceId: 'i-oli0001', region: 'sa-east-1', localIpv4: '10.0.1.1' };
    const a = startStrategy({ instanceMetadata: metadata });
    await a.started;
    await a.ctx.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'first poll (env region)');
    expect(ec2.requests.at(-1)!.region).toBe('eu-west-1');
    a.strategy.stop();

    const b = startStrategy({ instanceMetadata: metadata, region: 'us-west-2' });
    await b.started;
    await b.ctx.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'first poll (option region)');
    expect(ec2.requests.at(-1)!.region).toBe('us-west-2');
  });

  it('with no region anywhere it says to set AWS_REGION, and picks the region up once the metadata answers', async () => {
    delete process.env.AWS_REGION;
    ec2.instances = [tagged(1)];
    let metadataAnswers = false;
    const readMetadata = () =>
      Promise.resolve(
        metadataAnswers
          ? { instanceId: 'i-oli0001', region: 'eu-north-1', localIpv4: '10.0.1.1' }
          : null,
      );
    const { ctx, started } = startStrategy({ instanceMetadata: undefined, readMetadata });
    await started;

    await ctx.waitFor((c) => c.errors.length >= 1, WAIT_MS, 'a region error');
    expect(errorsOf(ctx)[0].failure).toBe('region');
    expect(ctx.logger.at('warn')[0]).toContain('set AWS_REGION');
    expect(ec2.requests).toEqual([]);

    metadataAnswers = true;
    await ctx.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'discovery once the region is known');
    expect(ec2.requests[0].region).toBe('eu-north-1');
  });

  it('without a tagValue and without metadata it reports a clear error, retries, and never connects', async () => {
    ec2.instances = [tagged(1)];
    const { ctx, started } = startStrategy({ tagValue: undefined, instanceMetadata: null });
    await started;

    await ctx.waitFor((c) => c.errors.length >= 2, WAIT_MS, 'two failed attempts');

    const [error] = errorsOf(ctx);
    expect(error.failure).toBe('tag-value');
    expect(error.message).toContain('LIBCLUSTER_EC2_STRATEGY_TAG_VALUE');
    expect(ctx.connects).toEqual([]);
    expect(ctx.logger.at('warn')[0]).toContain(
      "cannot determine this instance's value of the tag cluster",
    );
  });

  it('an instance without the tag reports it, then discovers once the tag is added', async () => {
    ec2.instances = [
      { instanceId: 'i-self', privateIpAddress: '10.0.3.1', tags: {} },
      tagged(1, 'green'),
    ];
    const metadata = { instanceId: 'i-self', region: 'eu-west-1', localIpv4: '10.0.3.1' };
    const { ctx, started } = startStrategy({ tagValue: undefined, instanceMetadata: metadata });
    await started;

    await ctx.waitFor((c) => c.errors.length >= 1, WAIT_MS, 'a tag-value error');
    expect(errorsOf(ctx)[0].message).toContain('this instance (i-self) has no tag cluster');

    ec2.instances[0].tags = { cluster: 'green' };
    await ctx.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'discovery after tagging');
    expect(ctx.lastConnect.map((e) => e.host)).toEqual(['10.0.3.1', '10.0.2.1']);
    expect(ctx.oks.length).toBeGreaterThanOrEqual(1);
  });

  it('throttling (RequestLimitExceeded) keeps the members, reports the error and recovers', async () => {
    ec2.instances = [tagged(1), tagged(2)];
    const { ctx, started } = startStrategy();
    await started;
    await ctx.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'first poll');

    ec2.failNext('throttle', 2);
    await ctx.waitFor((c) => c.errors.length >= 2, WAIT_MS, 'two throttled polls');
    const connectsBeforeRecovery = ctx.connects.length;
    await ctx.waitFor((c) => c.connects.length > connectsBeforeRecovery, WAIT_MS, 'recovery');

    const errors = errorsOf(ctx);
    expect(errors.map((e) => [e.failure, e.awsCode])).toEqual([
      ['throttled', 'RequestLimitExceeded'],
      ['throttled', 'RequestLimitExceeded'],
    ]);
    expect(errors[0].retryable).toBe(true);
    expect(errors[0]).toBeInstanceOf(ClusterError);
    expect(ctx.logger.at('warn')[0]).toContain('LIBCLUSTER_POLLING_INTERVAL');
    expect(ctx.connects.every((set) => set.length === 2)).toBe(true);
    expect(ctx.oks.at(-1)).toBeGreaterThanOrEqual(ctx.oks[0]);
    expect(ctx.logger.at('log').some((l) => l.includes('works again'))).toBe(true);
  });

  it('UnauthorizedOperation says which IAM action to grant, never connects an empty set, and recovers', async () => {
    ec2.instances = [tagged(1), tagged(2), tagged(3)];
    const { ctx, started } = startStrategy();
    await started;
    await ctx.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'first poll');

    ec2.failAll('unauthorized');
    await ctx.waitFor((c) => c.errors.length >= 2, WAIT_MS, 'two unauthorized polls');
    const [error] = errorsOf(ctx);
    expect(error.failure).toBe('unauthorized');
    expect(error.awsCode).toBe('UnauthorizedOperation');
    const warning = ctx.logger.at('warn')[0];
    expect(warning).toContain('ec2:DescribeInstances');
    expect(warning).toContain("grant the IAM action ec2:DescribeInstances to this instance's role");

    ec2.failAll(null);
    const okCount = ctx.oks.length;
    await ctx.waitFor((c) => c.oks.length > okCount, WAIT_MS, 'recovery');
    expect(ctx.connects.every((set) => set.length === 3)).toBe(true);
  });

  it('AuthFailure (bad credentials) is told apart from a missing permission', async () => {
    ec2.instances = [tagged(1)];
    ec2.failNext('auth-failure');
    const { ctx, started } = startStrategy();
    await started;
    await ctx.waitFor(
      (c) => c.errors.length >= 1 && c.connects.length >= 1,
      WAIT_MS,
      'failure then recovery',
    );
    const [error] = errorsOf(ctx);
    expect(error.failure).toBe('credentials');
    expect(error.awsCode).toBe('AuthFailure');
    expect(error.message).toMatch(/instance profile|AWS_ACCESS_KEY_ID/);
  });

  it('network down (endpoint closed) keeps the members, and the next poll after it comes back connects again', async () => {
    ec2.instances = [tagged(1), tagged(2)];
    const { ctx, started } = startStrategy();
    await started;
    await ctx.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'first poll');

    await ec2.stop();
    await ctx.waitFor((c) => c.errors.length >= 2, WAIT_MS, 'two failed polls');
    expect(errorsOf(ctx)[0].failure).toBe('network');
    expect(ctx.logger.at('warn')[0]).toContain(ec2.url);

    const connects = ctx.connects.length;
    await ec2.restart();
    await ctx.waitFor(
      (c) => c.connects.length > connects,
      WAIT_MS,
      'a poll after the endpoint is back',
    );
    expect(ctx.connects.every((set) => set.length === 2)).toBe(true);
  });

  it('a request that never gets an answer times out within requestTimeoutMs and is retried', async () => {
    ec2.instances = [tagged(1)];
    ec2.failNext('hang');
    const { ctx, started } = startStrategy({ requestTimeoutMs: 300 });
    const t0 = Date.now();
    await started;

    await ctx.waitFor((c) => c.errors.length >= 1, WAIT_MS, 'a timeout');
    const elapsed = Date.now() - t0;
    expect(errorsOf(ctx)[0].failure).toBe('timeout');
    expect(elapsed).toBeGreaterThanOrEqual(280);
    await ctx.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'recovery after the timeout');
    expect(ctx.lastConnect).toEqual([{ host: '10.0.1.1', port: PORT, name: 'oli@10.0.1.1' }]);
  });

  it('failed polls back off exponentially with jitter up to maxBackoffMs', async () => {
    ec2.failAll('internal');
    const { ctx, started } = startStrategy({ pollingIntervalMs: 40, maxBackoffMs: 250 });
    await started;
    await ctx.waitFor((c) => c.errors.length >= 6, WAIT_MS, 'six failed polls');

    const delays = ctx.logger.at('warn').map((l) => Number(/retrying in (\d+) ms/.exec(l)![1]));
    expect(delays.slice(0, 6).every((d) => d <= 250)).toBe(true);
    // 40·2^(n-1) capped at 250, jittered into [half, full]: 20-40, 40-80, 80-160, 125-250, ...
    expect(delays[0]).toBeLessThanOrEqual(40);
    expect(delays[2]).toBeGreaterThanOrEqual(80);
    expect(delays[4]).toBeGreaterThanOrEqual(125);
    expect(errorsOf(ctx)[0].failure).toBe('aws');
    expect(errorsOf(ctx)[0].awsCode).toBe('InternalError');
  });

  it('uses a caller-supplied EC2Client', async () => {
    delete process.env.AWS_ENDPOINT_URL_EC2;
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    ec2.instances = [tagged(4)];
    const client = new EC2Client({
      region: 'ca-central-1',
      endpoint: ec2.url,
      credentials: { accessKeyId: 'AKIDCALLER', secretAccessKey: 'x' },
    });
    const { ctx, started } = startStrategy({ client });
    await started;
    await ctx.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'first poll');
    expect(ctx.lastConnect.map((e) => e.host)).toEqual(['10.0.1.4']);
    expect(ec2.requests[0]).toMatchObject({ accessKeyId: 'AKIDCALLER', region: 'ca-central-1' });
    client.destroy();
  });

  it('stop() ends polling: no request after it', async () => {
    ec2.instances = [tagged(1)];
    const { strategy, ctx, started } = startStrategy({ pollingIntervalMs: 50 });
    await started;
    await ctx.waitFor((c) => c.connects.length >= 2, WAIT_MS, 'two polls');
    strategy.stop();
    const requests = ec2.requests.length;
    const connects = ctx.connects.length;
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(ec2.requests.length).toBe(requests);
    expect(ctx.connects.length).toBe(connects);
  });

  it('a missing @aws-sdk/client-ec2 makes start() reject with the install command', async () => {
    const missing = '@aws-sdk/client-ec2-not-installed';
    const strategy = new Ec2Strategy({
      tagName: 'cluster',
      tagValue: 'oli',
      clusterPort: PORT,
      loadSdk: () => import(missing),
    });
    const ctx = new FakeStrategyContext();
    const start = Promise.resolve(strategy.start(ctx));
    await expect(start).rejects.toBeInstanceOf(MissingPackageError);
    await expect(start).rejects.toThrow('npm i @aws-sdk/client-ec2');
    expect(ec2.requests).toEqual([]);
  });

  it('rejects a missing tagName at construction', () => {
    expect(() => new Ec2Strategy({ tagName: '', clusterPort: PORT })).toThrow(
      /LIBCLUSTER_EC2_STRATEGY_TAG_NAME/,
    );
  });
});
