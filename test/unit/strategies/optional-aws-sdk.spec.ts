import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureSampleBuilt, ROOT } from '../../support/node-process.js';

/**
 * The AWS SDK packages are optional: a separate Node process whose module loader refuses to
 * resolve any `@aws-sdk/*` package (as if they were not installed) imports the compiled
 * library, forms a non-EC2 config, and only the EC2 parts fail — with a message that says
 * which package to install.
 */
const LIB = join(ROOT, 'dist-sample/lib');

// A loader hook: every `@aws-sdk/...` specifier fails the way a missing package does.
const HOOKS = `data:text/javascript,${encodeURIComponent(`
export async function resolve(specifier, context, next) {
  if (specifier.startsWith('@aws-sdk/')) {
    const error = new Error("Cannot find package '" + specifier + "'");
    error.code = 'ERR_MODULE_NOT_FOUND';
    throw error;
  }
  return next(specifier, context);
}`)}`;
const REGISTER = `data:text/javascript,${encodeURIComponent(`import { register } from 'node:module'; register(${JSON.stringify(HOOKS)});`)}`;

function runWithoutAwsSdk(
  script: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', REGISTER, '--input-type=module', '-e', script],
      {
        cwd: ROOT,
        timeout: 30_000,
        env: {
          PATH: process.env.PATH,
          NO_COLOR: '1',
          AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:9',
        },
      },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('without @aws-sdk packages installed', () => {
  beforeAll(async () => {
    await ensureSampleBuilt();
  }, 180_000);

  it('the library loads, non-EC2 strategies work, and the EC2 parts say what to install', async () => {
    const { code, stdout, stderr } = await runWithoutAwsSdk(`
      const lib = await import(${JSON.stringify(join(LIB, 'index.js'))});
      const { readInstanceMetadata } = await import(${JSON.stringify(join(LIB, 'config/instance-metadata.js'))});
      const out = {};
      out.exports = ['ClusterModule', 'KubernetesStrategy', 'Ec2Strategy'].every((k) => typeof lib[k] === 'function');
      const s = new lib.StaticStrategy({ hosts: ['127.0.0.1:1'], clusterPort: 1 });
      out.static = s.endpoints.length;
      const ec2 = new lib.Ec2Strategy({ tagName: 'cluster', tagValue: 'x', clusterPort: 45893 });
      try { await ec2.start({ logger: console, debug: false, self: { name: 'a@b' } }); out.ec2 = 'started'; }
      catch (e) { out.ec2 = e.constructor.name + ': ' + e.message; }
      ec2.stop();
      const warnings = [];
      out.metadata = await readInstanceMetadata({ logger: { warn: (m) => warnings.push(m) } });
      out.warnings = warnings;
      console.log(JSON.stringify(out));
    `);
    expect(stderr).not.toMatch(/ERR_MODULE_NOT_FOUND/);
    expect(code).toBe(0);
    const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      exports: boolean;
      static: number;
      ec2: string;
      metadata: unknown;
      warnings: string[];
    };
    expect(out.exports).toBe(true);
    expect(out.static).toBe(1);
    expect(out.ec2).toBe(
      'MissingPackageError: the ec2 strategy needs the package @aws-sdk/client-ec2; install it with: npm i @aws-sdk/client-ec2',
    );
    expect(out.metadata).toBeNull();
    expect(out.warnings).toEqual([
      'reading the EC2 instance metadata (the ec2 strategy) needs the package @aws-sdk/ec2-metadata-service; install it with: npm i @aws-sdk/ec2-metadata-service; falling back to HOSTNAME for the node name',
    ]);
  });
});
