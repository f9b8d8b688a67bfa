import { Test, type TestingModule } from '@nestjs/testing';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ClusterConfigError,
  ClusterModule,
  ClusterService,
  PayloadError,
  RequestTimeoutError,
  resolveClusterOptions,
} from '../../lib/index.js';

/** `messaging` in `ClusterModuleOptions` reaches the `ClusterService` the app injects. */
const opened: TestingModule[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((m) => m.close()));
});

async function cluster(
  options: Parameters<typeof ClusterModule.forRoot>[0],
): Promise<ClusterService> {
  const moduleRef = await Test.createTestingModule({
    imports: [ClusterModule.forRoot(options)],
  }).compile();
  opened.push(moduleRef);
  await moduleRef.init();
  return moduleRef.get(ClusterService);
}

describe('messaging options', () => {
  it('maxPayloadBytes limits what publish and request accept', async () => {
    const service = await cluster({
      nodeName: 'solo@127.0.0.1',
      strategy: 'none',
      messaging: { maxPayloadBytes: 100 },
    });
    expect(() => service.publish('t', 'x'.repeat(50))).not.toThrow();
    expect(() => service.publish('t', 'x'.repeat(200))).toThrow(PayloadError);
    expect(() => service.publish('t', 'x'.repeat(200))).toThrow(
      /more than maxPayloadBytes \(100\)/,
    );
    service.handle('echo', (p) => p);
    await expect(service.request('solo@127.0.0.1', 'echo', 'x'.repeat(200))).rejects.toBeInstanceOf(
      PayloadError,
    );
  });

  it('defaultRequestTimeoutMs is the timeout of a request that sets none', async () => {
    const service = await cluster({
      nodeName: 'solo@127.0.0.1',
      strategy: 'none',
      messaging: { defaultRequestTimeoutMs: 150 },
    });
    service.handle('never', () => new Promise(() => {}));
    const error = await service.request('solo@127.0.0.1', 'never', 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RequestTimeoutError);
    expect((error as RequestTimeoutError).timeoutMs).toBe(150);
  });

  it('bad values are configuration errors naming the option path', () => {
    expect(() =>
      resolveClusterOptions({ messaging: { maxPayloadBytes: 0, defaultRequestTimeoutMs: -1 } }),
    ).toThrow(ClusterConfigError);
    let message = '';
    try {
      resolveClusterOptions({ maxFrameBytes: 4096, messaging: { maxPayloadBytes: 8192 } });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain(
      'messaging.maxPayloadBytes: 8192 is not a payload size in bytes below maxFrameBytes (4096)',
    );
  });
});
