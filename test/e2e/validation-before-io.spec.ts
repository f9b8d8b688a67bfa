import { Test, type TestingModule } from '@nestjs/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CLUSTER_RESOLVED_OPTIONS,
  ClusterConfigError,
  ClusterModule,
  clusterOptionsFromEnv,
  type ResolvedClusterOptions,
} from '../../lib/index.js';
import { FakeImdsServer } from '../support/fake-imds-server.js';

const ENV_KEYS = [
  'AWS_EC2_METADATA_SERVICE_ENDPOINT',
  'AWS_EC2_METADATA_DISABLED',
  'AWS_EC2_METADATA_V1_DISABLED',
  'AWS_CONFIG_FILE',
] as const;

describe('ClusterModule validates before any I/O', () => {
  let imds: FakeImdsServer;
  const saved: Partial<Record<(typeof ENV_KEYS)[number], string | undefined>> = {};
  const opened: TestingModule[] = [];

  beforeAll(async () => {
    for (const key of ENV_KEYS) saved[key] = process.env[key];
    delete process.env.AWS_EC2_METADATA_DISABLED;
    delete process.env.AWS_EC2_METADATA_V1_DISABLED;
    process.env.AWS_CONFIG_FILE = '/nonexistent/aws-config';
    imds = await FakeImdsServer.start({ localIpv4: '10.0.1.5' });
    // Every metadata request of the module goes to the stand-in on 127.0.0.1.
    process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = imds.url;
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((m) => m.close()));
    imds.requests.length = 0;
  });

  afterAll(async () => {
    await imds.close();
    for (const key of ENV_KEYS) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
  });

  const compile = async (env: Record<string, string>): Promise<TestingModule> => {
    const moduleRef = await Test.createTestingModule({
      imports: [ClusterModule.forRoot(clusterOptionsFromEnv(env))],
    }).compile();
    opened.push(moduleRef);
    return moduleRef;
  };

  it('an EC2 config without a tag name is rejected with no metadata request at all', async () => {
    const error = await compile({
      NODE_COOKIE: 'a-cookie-long-enough-for-the-check',
      LIBCLUSTER_STRATEGY: 'ec2',
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClusterConfigError);
    expect((error as ClusterConfigError).problems.map((p) => p.name)).toEqual([
      'LIBCLUSTER_EC2_STRATEGY_TAG_NAME',
    ]);
    expect(imds.requests).toEqual([]);
  });

  it('a valid EC2 config reads the metadata (the stand-in is reached) and names the node after it', async () => {
    const moduleRef = await compile({
      NODE_COOKIE: 'a-cookie-long-enough-for-the-check',
      LIBCLUSTER_STRATEGY: 'ec2',
      LIBCLUSTER_EC2_STRATEGY_TAG_NAME: 'cluster',
      APP_NAME: 'oli',
    });
    const options = moduleRef.get<ResolvedClusterOptions>(CLUSTER_RESOLVED_OPTIONS);
    expect(options.nodeName).toBe('oli@10.0.1.5');
    expect(imds.metadataRequests().length).toBeGreaterThan(0);
  });
});
