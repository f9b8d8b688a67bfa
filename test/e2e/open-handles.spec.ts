import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/node-process.js';

describe('shutdown', () => {
  it('app.close() leaves nothing running: the process exits on its own', async () => {
    const fixture = join(ROOT, 'test/e2e/fixtures/open-and-close.mjs');
    const library = pathToFileURL(join(ROOT, 'dist/index.js')).href;
    const child = spawn(process.execPath, [fixture, library], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const closedAt = new Promise<number>((resolve) =>
      child.stdout.on(
        'data',
        (d: Buffer) => d.toString().includes('closed') && resolve(Date.now()),
      ),
    );
    const exit = new Promise<{ code: number | null; at: number }>((resolve) =>
      child.once('exit', (code) => resolve({ code, at: Date.now() })),
    );
    const deadline = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const { code, at } = await exit;
    clearTimeout(deadline);
    expect(output).toContain('closed');
    expect(code, output).toBe(0);
    // Exited promptly after close (a leftover timer or socket would keep it alive).
    expect(at - (await closedAt)).toBeLessThan(1000);
  });
});
