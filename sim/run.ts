import { Logger } from '@nestjs/common';
import {
  PARTITION_SCENARIOS,
  runPartitionScenario,
  type PartitionScenario,
} from './partition-scenarios.js';
import {
  ALL_FAULTS,
  ALL_SCENARIOS,
  Simulation,
  type FaultKind,
  type ScenarioKind,
} from './simulation.js';

/**
 * `npm run sim -- --nodes N --seed S [--steps K] [--faults crash,partition,…|none|all]
 * [--seeds A..B] [--heartbeat MS] [--timeout MS] [--verbose] [--scenario one-way]`, or
 * `npm run sim -- --partition split-3-2|split-2-2-1|one-way --seed S [--quorum N|majority]`
 * (five nodes, heartbeat 500 ms / timeout 2 s, see partition-scenarios.ts)
 *
 * `--scenario` runs a scripted fault instead of random ones (see `Simulation.scenario`) and
 * prints what it measured before the summary line.
 *
 * Runs the membership core deterministically and prints, last,
 * `sim: N nodes, seed S, converged after X ms simulated, V violations`; exits 1 on any
 * violation. Rerunning a seed reproduces its run exactly.
 */
function parse(argv: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) continue;
    const [key, inline] = arg.slice(2).split('=', 2) as [string, string | undefined];
    if (inline !== undefined) out[key] = inline;
    else if (argv[i + 1] !== undefined && !argv[i + 1].startsWith('--')) out[key] = argv[++i]!;
    else out[key] = 'true';
  }
  return out;
}

function int(args: Record<string, string>, key: string, fallback: number): number {
  const raw = args[key];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) {
    console.error(`sim: --${key} must be a non-negative integer, got "${raw}"`);
    process.exit(2);
  }
  return value;
}

async function main(): Promise<void> {
  Logger.overrideLogger(false);
  const args = parse(process.argv.slice(2));
  const nodes = int(args, 'nodes', 5);
  if (nodes < 1) {
    console.error('sim: --nodes must be at least 1');
    process.exit(2);
  }
  if (args['partition'] !== undefined) {
    await partition(args);
    return;
  }
  const steps = int(args, 'steps', 20);
  const faultArg = args['faults'] ?? 'all';
  const faults: FaultKind[] =
    faultArg === 'none'
      ? []
      : faultArg === 'all'
        ? [...ALL_FAULTS]
        : (faultArg.split(',') as FaultKind[]);
  for (const f of faults) {
    if (!ALL_FAULTS.includes(f)) {
      console.error(`sim: unknown fault "${f}"; known: ${ALL_FAULTS.join(', ')}, or all / none`);
      process.exit(2);
    }
  }
  let seeds: number[];
  if (args['seeds']) {
    const [from, to] = args['seeds'].split('..').map(Number) as [number, number];
    seeds = Array.from({ length: to - from + 1 }, (_, i) => from + i);
  } else {
    seeds = [int(args, 'seed', 1)];
  }
  const scenario = args['scenario'] as ScenarioKind | undefined;
  if (scenario !== undefined && !ALL_SCENARIOS.includes(scenario)) {
    console.error(`sim: unknown scenario "${scenario}"; known: ${ALL_SCENARIOS.join(', ')}`);
    process.exit(2);
  }
  let failed = 0;
  let last = '';
  for (const seed of seeds) {
    const started = performance.now();
    if (scenario !== undefined) {
      const result = await new Simulation({
        nodes,
        seed,
        steps: 0,
        faults: [],
        heartbeatIntervalMs: int(args, 'heartbeat', 1000),
        failureTimeoutMs: int(args, 'timeout', 5000),
        verbose: args['verbose'] === 'true',
      }).scenario(scenario);
      if (result.violations.length > 0) failed++;
      const ms = (v: number | undefined): string => (v === undefined ? 'never' : `${v} ms`);
      console.log(
        `scenario ${scenario}: one leader everywhere ${ms(result.agreedAfterMs)} after the fault; healed (all up, one leader) ${ms(result.healedAfterMs)} after the heal`,
      );
      for (const d of result.during)
        console.log(
          `  ${d.node}: leader ${d.leader ?? 'none'}, unreachable [${d.unreachable.join(', ')}]`,
        );
      last = `sim: ${nodes} nodes, seed ${seed}, converged after ${ms(result.healedAfterMs)} simulated, ${result.violations.length} violations`;
      continue;
    }
    const sim = new Simulation({
      nodes,
      seed,
      steps,
      faults,
      heartbeatIntervalMs: int(args, 'heartbeat', 1000),
      failureTimeoutMs: int(args, 'timeout', 5000),
      verbose: args['verbose'] === 'true',
    });
    const result = await sim.run();
    const converged =
      result.convergedAfterMs === undefined ? 'never' : `${Math.round(result.convergedAfterMs)} ms`;
    if (result.violations.length > 0) failed++;
    last = `sim: ${nodes} nodes, seed ${seed}, converged after ${converged} simulated, ${result.violations.length} violations`;
    if (seeds.length > 1) {
      console.log(
        `${last} (${result.steps} steps, ${Math.round(result.simulatedMs / 1000)} s simulated in ${((performance.now() - started) / 1000).toFixed(1)} s)`,
      );
    } else {
      console.log(
        `(${result.steps} steps, ${Math.round(result.simulatedMs / 1000)} s simulated in ${((performance.now() - started) / 1000).toFixed(1)} s)`,
      );
    }
  }
  if (seeds.length > 1)
    last = `sim: ${nodes} nodes, seeds ${seeds[0]}..${seeds.at(-1)}, ${failed} seeds with violations`;
  console.log(last);
  process.exit(failed > 0 ? 1 : 0);
}

/** `--partition <scenario>`: one partition scenario of the quorum guard and the term. */
async function partition(args: Record<string, string>): Promise<void> {
  const scenario = args['partition'] as PartitionScenario;
  if (!PARTITION_SCENARIOS.includes(scenario)) {
    console.error(
      `sim: unknown partition scenario "${scenario}"; known: ${PARTITION_SCENARIOS.join(', ')}`,
    );
    process.exit(2);
  }
  const rawQuorum = args['quorum'] ?? '3';
  const quorum = rawQuorum === 'majority' ? 'majority' : int(args, 'quorum', 3);
  const seed = int(args, 'seed', 1);
  const result = await runPartitionScenario({ scenario, seed, quorum });
  for (const v of result.violations) console.log(`VIOLATION ${v}`);
  console.log(
    `(${scenario}: side without quorum leaderless after ${result.leaderlessAfterMs ?? '-'} ms; terms ${result.terms.join(' → ')})`,
  );
  const healed = result.healedAfterMs === undefined ? 'never' : `${result.healedAfterMs} ms`;
  console.log(
    `sim: 5 nodes, seed ${seed}, converged after ${healed} simulated, ${result.violations.length} violations`,
  );
  process.exit(result.violations.length > 0 ? 1 : 0);
}

void main();
