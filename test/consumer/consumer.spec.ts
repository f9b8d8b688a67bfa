import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePorts, randomCookie, ROOT, staticEnv } from '../support/node-process.js';

/**
 * The package as users get it: scripts/prepare-consumers.mjs (run by `npm test` before the
 * network namespace, since installs need the registry) packs it with `npm pack` and installs
 * the tarball into a CommonJS app and an ESM app on Nest 12 and a CommonJS app on Nest 11,
 * none with the AWS SDK. Each app (test/consumer/app/main.ts) is compiled here with its own
 * `tsc`, started twice as a static-strategy cluster, and must import `nestjs-cluster`,
 * `nestjs-cluster/health` and `nestjs-cluster/testing`, see both members, be healthy, and get a reply from the other node.
 */
interface ConsumerApp {
  name: string;
  type: 'commonjs' | 'module';
  dir: string;
}

interface AppReport {
  format: 'commonjs' | 'esm';
  self: string;
  mode: string;
  members: string[];
  health: { cluster: { status: string; members: number } };
  replies: string[];
  timeouts: number;
  cjsFilesLoaded: number;
  esmFilesLoadedByRequire: number;
  ec2: string;
  inMemory: string;
}

const POINTER = join(ROOT, 'node_modules/.cache/nestjs-cluster-consumers.json');
const prepared: { apps: ConsumerApp[] } | undefined = existsSync(POINTER)
  ? (JSON.parse(readFileSync(POINTER, 'utf8')) as { apps: ConsumerApp[] })
  : undefined;
const APPS = prepared?.apps ?? [];
const NEST_MAJOR: Record<string, string> = {
  'cjs-nest12': '12',
  'esm-nest12': '12',
  'cjs-nest11': '11',
};

const started: ChildProcess[] = [];
afterEach(() => {
  for (const child of started.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

function exec(
  file: string,
  args: string[],
  cwd: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { cwd, timeout: 120_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resolve({
          code: error ? Number((error as { code?: number }).code ?? 1) : 0,
          stdout,
          stderr,
        }),
    );
  });
}

/** One app process: its JSON report line (bounded wait) and its exit. */
function startApp(app: ConsumerApp, env: Record<string, string>) {
  const child = spawn(process.execPath, ['dist/main.js'], {
    cwd: app.dir,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // Nest's shutdown hooks close the app on SIGTERM, then re-raise the signal.
  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? `code ${code}`)),
  );
  const report = new Promise<AppReport>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(
            `${app.name} ${env.NODE_NAME}: no report within 60 s\nstdout:\n${stdout}\nstderr:\n${stderr}`,
          ),
        ),
      60_000,
    );
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (line !== undefined) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as AppReport);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(
        new Error(
          `${app.name} ${env.NODE_NAME} exited (${code}) before reporting\nstdout:\n${stdout}\nstderr:\n${stderr}`,
        ),
      );
    });
  });
  return { child, report, exited, stderr: () => stderr };
}

/** Names of the installed packages in `npm ls --all --json` (missing optional peers are `{}`). */
function installed(tree: {
  dependencies?: Record<string, { version?: string; dependencies?: unknown }>;
}): string[] {
  const names: string[] = [];
  for (const [name, node] of Object.entries(tree.dependencies ?? {})) {
    if (node.version !== undefined) names.push(name);
    names.push(...installed(node as Parameters<typeof installed>[0]));
  }
  return names;
}

describe('the packed package in user apps', () => {
  it('the consumer apps are prepared (node scripts/prepare-consumers.mjs, run by npm test)', () => {
    expect(
      prepared,
      `missing ${POINTER}: run \`npm run build && node scripts/prepare-consumers.mjs\` first`,
    ).toBeDefined();
    expect(APPS.map((app) => app.name)).toEqual(['cjs-nest12', 'esm-nest12', 'cjs-nest11']);
  });

  describe.each(APPS)('$name', (app) => {
    it(
      'installs without the AWS SDK, compiles with tsc, and two instances cluster and talk',
      { timeout: 240_000 },
      async () => {
        const manifest = (name: string) =>
          JSON.parse(readFileSync(join(app.dir, 'node_modules', name, 'package.json'), 'utf8')) as {
            version: string;
          };
        expect(manifest('@nestjs/core').version.split('.')[0]).toBe(NEST_MAJOR[app.name]);
        expect(manifest('@nestjs/common').version.split('.')[0]).toBe(NEST_MAJOR[app.name]);

        const ls = await exec(
          process.platform === 'win32' ? 'npm.cmd' : 'npm',
          ['ls', '--all', '--json', '--offline'],
          app.dir,
        );
        const packages = installed(JSON.parse(ls.stdout) as Parameters<typeof installed>[0]);
        expect(packages).toContain('nestjs-cluster');
        expect(packages).toContain('@nestjs/terminus');
        expect(packages.filter((name) => name.startsWith('@aws-sdk/'))).toEqual([]);
        expect(existsSync(join(app.dir, 'node_modules/@aws-sdk'))).toBe(false);

        const tsc = await exec(
          process.execPath,
          ['node_modules/typescript/bin/tsc', '-p', '.'],
          app.dir,
        );
        expect(tsc.stdout + tsc.stderr).toBe('');
        expect(tsc.code).toBe(0);

        const cookie = randomCookie();
        const ports = await freePorts(2);
        const nodes = ['a@127.0.0.1', 'b@127.0.0.1'].map((name, index) =>
          startApp(app, {
            ...staticEnv(cookie, ports, index),
            NODE_NAME: name,
            CONSUMER_MEMBERS: '2',
          }),
        );
        const [a, b] = await Promise.all(nodes.map((node) => node.report));

        for (const report of [a, b]) {
          expect(report.format).toBe(app.type === 'module' ? 'esm' : 'commonjs');
          expect(report.mode).toBe('cluster');
          expect(report.members).toEqual(['a@127.0.0.1', 'b@127.0.0.1']);
          expect(report.health.cluster).toMatchObject({ status: 'up', members: 2 });
          // nestjs-cluster/testing loads in this module format and runs the app's own module.
          expect(report.inMemory).toBe('app@10.0.0.2 answers app@10.0.0.1');
          expect(report.ec2).toBe(
            'MissingPackageError: the ec2 strategy needs the package @aws-sdk/client-ec2; install it with: npm i @aws-sdk/client-ec2',
          );
          if (app.type === 'commonjs') {
            // `require` got the CommonJS build, and only it: at least the three entries the
            // app requires (main, health, testing), each a bundle with shared chunks.
            expect(report.cjsFilesLoaded).toBeGreaterThanOrEqual(3);
            expect(report.esmFilesLoadedByRequire).toBe(0);
          }
        }
        const timeouts = a.timeouts + b.timeouts;
        if (timeouts > 0)
          console.info(
            `${app.name}: ${timeouts} request(s) right after joining timed out and were asked again`,
          );
        expect(a.replies).toEqual(['b@127.0.0.1 answers a@127.0.0.1']);
        expect(b.replies).toEqual(['a@127.0.0.1 answers b@127.0.0.1']);

        for (const node of nodes) node.child.kill('SIGTERM');
        expect(await Promise.all(nodes.map((node) => node.exited))).toEqual(['SIGTERM', 'SIGTERM']);
        for (const node of nodes) expect(node.stderr()).not.toMatch(/Error|ERR_/);
      },
    );
  });
});
