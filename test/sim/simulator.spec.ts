/**
 * The CI seeds of the deterministic simulator: the real core, every fault kind, invariants
 * after every step. A failing seed prints the step; `npm run sim -- --nodes N --seed S
 * --steps K --verbose` replays it exactly.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { Logger } from '@nestjs/common';
import { beforeAll, describe, expect, it } from 'vitest';
import { ALL_FAULTS, Simulation } from '../../sim/simulation.js';

describe('simulator', () => {
  beforeAll(() => Logger.overrideLogger(false));

  it.each([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])(
    '8 nodes, 30 random fault steps, seed %i: no violation',
    async (seed) => {
      const lines: string[] = [];
      const result = await new Simulation({
        nodes: 8,
        seed,
        steps: 30,
        faults: ALL_FAULTS,
        log: (l) => lines.push(l),
      }).run();
      expect(result.violations, lines.join('\n')).toEqual([]);
      expect(result.convergedAfterMs).toBeDefined();
    },
  );

  it('40 nodes, 10 fault steps: no violation', async () => {
    const lines: string[] = [];
    const result = await new Simulation({
      nodes: 40,
      seed: 1,
      steps: 10,
      faults: ALL_FAULTS,
      log: (l) => lines.push(l),
    }).run();
    expect(result.violations, lines.join('\n')).toEqual([]);
  });

  it('200 nodes start at once and converge with no violation', async () => {
    const lines: string[] = [];
    const result = await new Simulation({
      nodes: 200,
      seed: 1,
      steps: 0,
      faults: [],
      log: (l) => lines.push(l),
    }).run();
    expect(result.violations, lines.join('\n')).toEqual([]);
    expect(result.convergedAfterMs).toBeDefined();
  }, 120_000);

  it.each([
    [4, 1],
    [4, 2],
    [5, 3],
    [5, 4],
  ])(
    'one-way loss first → second node, %i nodes, seed %i: one leader everywhere within the failure timeout + 1 s, the two see each other unreachable; the heal restores everything',
    async (nodes, seed) => {
      const lines: string[] = [];
      const result = await new Simulation({
        nodes,
        seed,
        steps: 0,
        faults: [],
        log: (l) => lines.push(l),
      }).scenario('one-way');
      expect(result.violations, lines.join('\n')).toEqual([]);
      expect(result.agreedAfterMs).toBeDefined();
      expect(result.agreedAfterMs).toBeLessThanOrEqual(5000 + 1000);
      const leaders = new Set(result.during.map((d) => d.leader));
      expect(leaders.size).toBe(1);
      expect([...leaders][0]).not.toMatch(/^n[01]@/);
      expect(result.during.map((d) => d.unreachable)).toEqual([
        ['n1@10.0.0.2'],
        ['n0@10.0.0.1'],
        ...Array.from({ length: nodes - 2 }, () => []),
      ]);
      expect(result.healedAfterMs).toBeDefined();
    },
  );

  it('the same seed replays the same run', async () => {
    const run = async (): Promise<string> => {
      const lines: string[] = [];
      const result = await new Simulation({
        nodes: 6,
        seed: 99,
        steps: 12,
        faults: ALL_FAULTS,
        verbose: true,
        log: (l) => lines.push(l),
      }).run();
      return JSON.stringify({ lines, at: result.simulatedMs });
    };
    const first = await run();
    expect(first.length).toBeGreaterThan(1000);
    expect(await run()).toBe(first);
  });

  it('the CLI ends with the summary line and exits 0; a bad flag exits 2 with the reason', () => {
    const out = execFileSync(
      process.execPath,
      ['dist-sample/sim/run.js', '--nodes', '4', '--seed', '3', '--steps', '3'],
      {
        encoding: 'utf8',
      },
    );
    expect(out.trim().split('\n').at(-1)).toMatch(
      /^sim: 4 nodes, seed 3, converged after \d+ ms simulated, 0 violations$/,
    );
    const bad = spawnSync(process.execPath, ['dist-sample/sim/run.js', '--faults', 'meteor'], {
      encoding: 'utf8',
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown fault "meteor"/);
    const scenario = execFileSync(
      process.execPath,
      ['dist-sample/sim/run.js', '--nodes', '4', '--seed', '1', '--scenario', 'one-way'],
      { encoding: 'utf8' },
    );
    expect(scenario).toMatch(/^scenario one-way: one leader everywhere \d+ ms after the fault/m);
    expect(scenario.trim().split('\n').at(-1)).toMatch(
      /^sim: 4 nodes, seed 1, converged after \d+ ms simulated, 0 violations$/,
    );
  });
});
