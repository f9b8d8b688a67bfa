import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureSampleBuilt, ROOT, SAMPLE_MAIN } from '../support/node-process.js';

/** The README block after the `sample-config-error` marker: the command line and the output. */
function readmeSample(): { env: Record<string, string>; output: string[] } {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const marker = readme.indexOf('<!-- sample-config-error');
  expect(marker, 'README has the sample-config-error marker').toBeGreaterThan(-1);
  const open = readme.indexOf('```\n', marker) + 4;
  const lines = readme.slice(open, readme.indexOf('\n```', open)).split('\n');
  const [command, ...output] = lines;
  const words = command.replace(/^\$ /, '').split(' ');
  const env: Record<string, string> = {};
  for (const word of words.slice(0, words.indexOf('npm'))) {
    const eq = word.indexOf('=');
    env[word.slice(0, eq)] = word.slice(eq + 1);
  }
  expect(words.slice(words.indexOf('npm')).join(' ')).toBe('npm run start:sample');
  return { env, output };
}

/** Runs the built sample app with only `env` (no .env file, colours off) until it exits. */
function runSample(env: Record<string, string>): Promise<{ code: number | null; printed: string }> {
  const cwd = mkdtempSync(join(tmpdir(), 'cluster-config-error-'));
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

describe('README sample configuration error', () => {
  it('is what the sample app prints for that environment: the list, no stack trace, exit 1', async () => {
    await ensureSampleBuilt();
    const { env, output } = readmeSample();
    const { code, printed } = await runSample(env);
    expect(code, printed).toBe(1);
    const lines = printed.split('\n');
    const first = lines.findIndex((l) => l.includes('ClusterConfigError:'));
    expect(first, printed).toBeGreaterThan(-1);
    // Nest's prefix (`[Nest] <pid>  - <date>   `) differs at every run; the rest must match.
    const shown = lines
      .slice(first, first + output.length)
      .map((l) => l.replace(/^\[Nest\] \d+\s+-\s+.*?\s+ERROR /, 'ERROR '));
    expect(shown).toEqual(output);
    expect(printed).not.toMatch(/^\s+at /m);
  });
});
