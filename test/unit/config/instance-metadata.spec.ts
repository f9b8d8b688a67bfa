import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readInstanceMetadata } from '../../../lib/config/instance-metadata.js';
import { FakeImdsServer, type FakeImdsOptions } from '../../support/fake-imds-server.js';

const ENV_KEYS = [
  'AWS_EC2_METADATA_SERVICE_ENDPOINT',
  'AWS_EC2_METADATA_V1_DISABLED',
  'AWS_EC2_METADATA_DISABLED',
  'AWS_PROFILE',
  'AWS_CONFIG_FILE',
] as const;

function recordingLogger() {
  const warnings: string[] = [];
  return { warnings, warn: (message: unknown) => void warnings.push(String(message)) };
}

describe('readInstanceMetadata', () => {
  const savedEnv: Partial<Record<(typeof ENV_KEYS)[number], string>> = {};
  let imds: FakeImdsServer | undefined;

  beforeEach(() => {
    for (const key of ENV_KEYS) {
      savedEnv[key] = process.env[key];
      delete process.env[key];
    }
    process.env.AWS_CONFIG_FILE = '/nonexistent/aws-config';
  });

  afterEach(async () => {
    await imds?.close();
    imds = undefined;
    for (const key of ENV_KEYS) {
      if (savedEnv[key] === undefined) delete process.env[key];
      else process.env[key] = savedEnv[key];
    }
  });

  async function startImds(options: FakeImdsOptions): Promise<FakeImdsServer> {
    imds = await FakeImdsServer.start({
      instanceId: 'i-0aaa111bbb222ccc3',
      region: 'eu-west-3',
      localIpv4: '10.20.30.40',
      ...options,
    });
    process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = imds.url;
    return imds;
  }

  it('reads instance id, region and local-ipv4 with an IMDSv2 token (endpoint from AWS_EC2_METADATA_SERVICE_ENDPOINT)', async () => {
    const server = await startImds({ mode: 'v2-required' });
    const logger = recordingLogger();

    const metadata = await readInstanceMetadata({ logger });

    expect(metadata).toEqual({
      instanceId: 'i-0aaa111bbb222ccc3',
      region: 'eu-west-3',
      localIpv4: '10.20.30.40',
    });
    expect(logger.warnings).toEqual([]);
    const tokenRequests = server.requests.filter((r) => r.path === '/latest/api/token');
    expect(tokenRequests.length).toBeGreaterThan(0);
    expect(tokenRequests.every((r) => r.method === 'PUT' && Number(r.ttlSeconds) > 0)).toBe(true);
    const paths = server
      .metadataRequests()
      .map((r) => r.path)
      .sort();
    expect(paths).toEqual([
      '/latest/meta-data/instance-id',
      '/latest/meta-data/local-ipv4',
      '/latest/meta-data/placement/region',
    ]);
    expect(server.metadataRequests().every((r) => r.token !== undefined)).toBe(true);
  });

  it.each([403, 404] as const)(
    'falls back to IMDSv1 when the token request is refused with %i',
    async (status) => {
      const server = await startImds({ mode: 'v1-only', tokenRefusalStatus: status });
      const logger = recordingLogger();

      const metadata = await readInstanceMetadata({ logger });

      expect(metadata).toEqual({
        instanceId: 'i-0aaa111bbb222ccc3',
        region: 'eu-west-3',
        localIpv4: '10.20.30.40',
      });
      expect(logger.warnings).toEqual([]);
      expect(
        server
          .metadataRequests()
          .map((r) => r.path)
          .sort(),
      ).toEqual([
        '/latest/meta-data/instance-id',
        '/latest/meta-data/local-ipv4',
        '/latest/meta-data/placement/region',
      ]);
      expect(server.metadataRequests().every((r) => r.token === undefined)).toBe(true);
    },
  );

  it('the endpoint option wins over AWS_EC2_METADATA_SERVICE_ENDPOINT', async () => {
    const server = await startImds({ mode: 'v2' });
    process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = 'http://127.0.0.1:1';
    const metadata = await readInstanceMetadata({
      endpoint: `${server.url}/`,
      logger: recordingLogger(),
    });
    expect(metadata?.instanceId).toBe('i-0aaa111bbb222ccc3');
  });

  it('resolves null with a warning when connections are reset (outage), without throwing', async () => {
    const server = await startImds({ mode: 'outage' });
    const logger = recordingLogger();

    const metadata = await readInstanceMetadata({ logger, timeoutMs: 300 });

    expect(metadata).toBeNull();
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]).toContain(`instance metadata unreachable at ${server.url}`);
    expect(logger.warnings[0]).toContain('falling back to HOSTNAME for the node name');
  });

  it('resolves null when nothing listens at the endpoint', async () => {
    const server = await startImds({ mode: 'v2' });
    const url = server.url;
    await server.close();
    imds = undefined;
    const logger = recordingLogger();

    const metadata = await readInstanceMetadata({ logger, timeoutMs: 300 });

    expect(metadata).toBeNull();
    expect(logger.warnings[0]).toContain(`instance metadata unreachable at ${url}`);
  });

  it('a service that never answers costs at most three times timeoutMs', async () => {
    const server = await startImds({ mode: 'hang' });
    const logger = recordingLogger();
    const started = Date.now();

    const metadata = await readInstanceMetadata({ logger, timeoutMs: 200 });

    expect(metadata).toBeNull();
    // Each request waits timeoutMs (no sooner), and there are at most three of them.
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(server.requestCount).toBeGreaterThanOrEqual(1);
    expect(server.requestCount).toBeLessThanOrEqual(3);
    expect(logger.warnings[0]).toMatch(
      /instance metadata unreachable at .*falling back to HOSTNAME/,
    );
  });

  it('falls back to IMDSv1 within the bound when the token answer never arrives (hop limit 1)', async () => {
    const server = await startImds({ mode: 'token-dropped' });
    const logger = recordingLogger();

    const metadata = await readInstanceMetadata({ logger, timeoutMs: 200 });

    expect(metadata).toEqual({
      instanceId: 'i-0aaa111bbb222ccc3',
      region: 'eu-west-3',
      localIpv4: '10.20.30.40',
    });
    // Within the bound: past 3 × timeoutMs the lookup's own deadline would have given null.
    expect(server.metadataRequests().every((r) => r.token === undefined)).toBe(true);
  });

  it('AWS_EC2_METADATA_DISABLED=true skips the service: null with a warning, no request', async () => {
    const server = await startImds({ mode: 'v2' });
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
    const logger = recordingLogger();

    expect(await readInstanceMetadata({ logger })).toBeNull();
    expect(server.requests).toEqual([]);
    expect(logger.warnings[0]).toContain('AWS_EC2_METADATA_DISABLED');
  });

  it('with AWS_EC2_METADATA_V1_DISABLED=true a refused token means no metadata (null, warning)', async () => {
    await startImds({ mode: 'v1-only' });
    process.env.AWS_EC2_METADATA_V1_DISABLED = 'true';
    const logger = recordingLogger();

    expect(await readInstanceMetadata({ logger, timeoutMs: 300 })).toBeNull();
    expect(logger.warnings).toHaveLength(1);
  });
});
