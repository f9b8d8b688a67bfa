import type { LoggerService } from '@nestjs/common';
import { CLUSTER_DEFAULTS } from '../lib/config/cluster.defaults.js';
import { sameProcess } from '../lib/identity/identity.js';
import { Membership } from '../lib/membership/membership.js';
import type { QuorumSetting } from '../lib/membership/quorum.js';
import { ClusterNode } from '../lib/node/cluster-node.js';
import { seededRandom } from '../lib/runtime/random.js';
import { VirtualTime } from '../lib/runtime/virtual-time.js';
import type { ClusterStrategy, StrategyContext } from '../lib/strategies/strategy.interface.js';
import { MemoryNetwork } from '../lib/transport/memory-network.js';
import { inMemoryNodeOptions } from './node-options.js';

/**
 * Partition scenarios of the quorum guard and the fencing term, on the real core (the same
 * `ClusterNode` composition as production) over the in-memory network and virtual time, driven
 * by one seed. Each scenario forms a five-node cluster (node 0 the oldest, so the leader), cuts
 * the network, holds the cut, heals it, and checks at every 10 ms step:
 *
 * - fencing: two nodes that both lead at the same moment never hold the same term;
 * - per node, every new leader comes with a larger term;
 * - once the cut has been detected (failure timeout + one heartbeat): the expected leaders —
 *   `split-3-2` (the leader in the minority): exactly one, in the majority, and none in the
 *   minority; `split-2-2-1`: none at all; `one-way` (node 0 → node 1 lost): exactly one,
 *   every node that has a leader names it (needs shared reachability);
 * - after the heal: one agreed leader and term above every earlier one, full membership.
 */
export type PartitionScenario = 'split-3-2' | 'split-2-2-1' | 'one-way';

export const PARTITION_SCENARIOS: readonly PartitionScenario[] = [
  'split-3-2',
  'split-2-2-1',
  'one-way',
];

export interface PartitionScenarioOptions {
  readonly scenario: PartitionScenario;
  readonly seed: number;
  /** @default 3 */
  readonly quorum?: QuorumSetting;
  /** @default 500 */
  readonly heartbeatIntervalMs?: number;
  /** @default 2000 */
  readonly failureTimeoutMs?: number;
  /** How long the cut lasts, ms. @default 10000 */
  readonly holdMs?: number;
  /**
   * Bound from heal to one leader and full membership, ms. A dial started during the cut waits
   * for its handshake deadline (10 s) — the in-memory network holds a connect across a cut and
   * does not retry it as TCP retransmits a SYN — so the heal comes at most that deadline plus
   * one redial (≤ 2 s at a 2 s failure timeout) after the cut was detected. @default 13000
   */
  readonly healBoundMs?: number;
}

export interface PartitionScenarioResult {
  readonly violations: readonly string[];
  /** From the cut to "the side without quorum has no leader", simulated ms (splits only). */
  readonly leaderlessAfterMs: number | undefined;
  /** From the heal to one agreed leader and full membership everywhere, simulated ms. */
  readonly healedAfterMs: number | undefined;
  /** Terms of the leaders in order: formation, during the cut, after the heal. */
  readonly terms: readonly number[];
}

/** Discovery: the full host list, as the static strategy gives it. */
class ListDiscovery implements ClusterStrategy {
  constructor(private readonly hosts: readonly string[]) {}
  start(ctx: StrategyContext): void {
    ctx.connect(this.hosts.map((host) => ({ host, port: PORT })));
  }
  stop(): void {}
}

const silent: LoggerService = { log() {}, warn() {}, error() {}, debug() {}, verbose() {} };
const PORT = 45893;
const NODES = 5;
const STEP_MS = 10;

/** True when members carry a reachability state (shared reachability is built in). */
export function hasSharedReachability(): boolean {
  const probe = new Membership(
    { name: 'probe@x', incarnation: 'p', startedAt: 0, endpoint: '' },
    { logger: silent },
  );
  const built = 'state' in probe.self;
  probe.close();
  return built;
}

export async function runPartitionScenario(
  options: PartitionScenarioOptions,
): Promise<PartitionScenarioResult> {
  const hb = options.heartbeatIntervalMs ?? 500;
  const timeout = options.failureTimeoutMs ?? 2000;
  const holdMs = options.holdMs ?? 10_000;
  const healBound = options.healBoundMs ?? 13_000;
  const time = new VirtualTime();
  const network = new MemoryNetwork(time, seededRandom(options.seed ^ 0x5eed), {
    latencyMs: [1, 4],
  });
  const hosts = Array.from({ length: NODES }, (_, i) => `10.0.0.${i + 1}`);
  const violations: string[] = [];
  const violate = (what: string) => violations.push(`@${time.now} ms: ${what}`);

  const nodes: ClusterNode[] = [];
  for (const [i, host] of hosts.entries()) {
    const clock = network.clockOf(host);
    const resolved = inMemoryNodeOptions(
      {
        nodeName: `n${i}@${host}`,
        host,
        port: PORT,
        incarnation: `i${i}`,
        startedAt: clock.wallNow(),
        cookie: 'simulated-cluster-cookie',
        appName: 'n',
      },
      {
        heartbeatIntervalMs: hb,
        failureTimeoutMs: timeout,
        reconnectMaxMs: Math.min(CLUSTER_DEFAULTS.reconnectMaxMs, Math.max(timeout, 1000)),
        quorum: options.quorum ?? 3,
        quorumStableMs: CLUSTER_DEFAULTS.quorumStableMs,
      },
    );
    const node = new ClusterNode(
      resolved,
      [{ name: 'sim', strategyName: 'sim', strategy: new ListDiscovery(hosts) }],
      {
        clock,
        random: seededRandom(options.seed * 7919 + i),
        network: network.host(host),
        logger: () => silent,
      },
    );
    await node.start();
    nodes.push(node);
    // One simulated millisecond between starts: node 0 is the oldest.
    await time.runFor(1);
  }

  // Per node: every new leader must come with a larger term.
  const lastFollowed: ({ name: string; incarnation: string; term: number } | null)[] = nodes.map(
    () => null,
  );
  for (const [i, node] of nodes.entries()) {
    node.leadership.leadership$.subscribe(({ leader, term }) => {
      if (leader === null) return;
      const last = lastFollowed[i];
      if (last && !sameProcess(last, leader) && term <= last.term)
        violate(
          `n${i} followed ${leader.name} with term ${term} after ${last.name}'s ${last.term}`,
        );
      if (last && sameProcess(last, leader) && term < last.term)
        violate(`n${i}'s term of ${leader.name} went down from ${last.term} to ${term}`);
      lastFollowed[i] = { name: leader.name, incarnation: leader.incarnation, term };
    });
  }

  const all = nodes.map((_, i) => i);
  const agreed = (group: number[], size: number): boolean => {
    const views = group.map((i) => nodes[i].leadership.leadership());
    const first = views[0];
    return (
      first.leader !== null &&
      group.every((i) => nodes[i].membership.members().length === size) &&
      views.every((v) => v.leader !== null && sameProcess(v.leader, first.leader!)) &&
      views.every((v) => v.term === first.term)
    );
  };
  const selfLeaders = (): number[] => all.filter((i) => nodes[i].isLeader());
  const checkFencing = (): void => {
    const leading = selfLeaders();
    const terms = leading.map((i) => nodes[i].leadership.leadership().term);
    if (new Set(terms).size !== terms.length)
      violate(
        `two leaders hold one term: ${leading.map((i, k) => `n${i}=${terms[k]}`).join(', ')}`,
      );
  };
  const step = async (): Promise<void> => {
    await time.runFor(STEP_MS);
    checkFencing();
  };
  const until = async (condition: () => boolean, boundMs: number): Promise<number | undefined> => {
    const start = time.now;
    while (time.now - start <= boundMs) {
      if (condition()) return time.now - start;
      await step();
    }
    return undefined;
  };

  const terms: number[] = [];
  const formed = await until(() => agreed(all, NODES), 20_000);
  if (formed === undefined) violate('the cluster did not form within 20 s');
  terms.push(nodes[0].leadership.leadership().term);

  // The cut.
  const cutAt = time.now;
  let minority: number[] = [];
  let majority: number[] = [];
  switch (options.scenario) {
    case 'split-3-2':
      minority = [0, 1];
      majority = [2, 3, 4];
      network.partition(
        minority.map((i) => hosts[i]),
        majority.map((i) => hosts[i]),
      );
      break;
    case 'split-2-2-1': {
      const groups = [[0, 1], [2, 3], [4]].map((g) => g.map((i) => hosts[i]));
      network.partition(groups[0], [...groups[1], ...groups[2]]);
      network.partition(groups[1], groups[2]);
      minority = all;
      break;
    }
    case 'one-way':
      network.block(hosts[0], hosts[1]);
      break;
  }

  const settleMs = timeout + hb + 50;
  let leaderlessAfterMs: number | undefined;
  if (minority.length > 0) {
    leaderlessAfterMs = await until(
      () => minority.every((i) => nodes[i].leadership.leader() === null),
      settleMs,
    );
    if (leaderlessAfterMs === undefined)
      violate(
        `the side without quorum still has a leader ${settleMs} ms after the cut: ${minority.map((i) => `n${i}→${nodes[i].leadership.leader()?.name ?? 'none'}`).join(', ')}`,
      );
  }
  // Wait for the majority's new leader (failure detection on its side too), then hold.
  if (majority.length > 0) {
    const elected = await until(() => agreed(majority, majority.length), settleMs + 1000);
    if (elected === undefined) violate('the majority has no agreed leader after the cut');
    else terms.push(nodes[majority[0]].leadership.leadership().term);
  } else {
    while (time.now < cutAt + settleMs) await step();
  }
  const expected =
    options.scenario === 'split-3-2' ? 1 : options.scenario === 'split-2-2-1' ? 0 : 1;
  const seenLeaders = new Set<number>();
  while (time.now < cutAt + holdMs) {
    const leading = selfLeaders();
    for (const i of leading) seenLeaders.add(i);
    if (leading.length !== expected) {
      violate(
        `${options.scenario}: ${leading.length} nodes lead (${leading.map((i) => `n${i}`).join(', ')}), expected ${expected}`,
      );
      break;
    }
    if (options.scenario === 'one-way') {
      const named = new Set(
        all.map((i) => nodes[i].leadership.leader()?.name).filter((n) => n !== undefined),
      );
      if (named.size > 1) {
        violate(`one-way: nodes name different leaders: ${[...named].join(', ')}`);
        break;
      }
    }
    await step();
  }
  if (seenLeaders.size > expected)
    violate(`leader-only work ran on ${seenLeaders.size} nodes during the cut`);

  // The heal.
  network.heal();
  const healedAfterMs = await until(() => agreed(all, NODES), healBound);
  if (healedAfterMs === undefined)
    violate(
      `not one agreed leader and full membership ${healBound} ms after the heal: ${all.map((i) => `n${i} sees ${nodes[i].membership.members().length}, leads ${nodes[i].leadership.leadership().leader?.name ?? 'none'} term ${nodes[i].leadership.leadership().term}`).join('; ')}`,
    );
  else {
    terms.push(nodes[0].leadership.leadership().term);
    if (selfLeaders().length !== 1) violate(`${selfLeaders().length} leaders after the heal`);
  }
  if (time.uncaught.length > 0)
    violate(`uncaught errors: ${time.uncaught.map((e) => String(e)).join('; ')}`);

  const closing = Promise.all(nodes.map((n) => n.close()));
  let closed = false;
  void closing.finally(() => (closed = true));
  for (let i = 0; i < 600 && !closed; i++) await time.runFor(50);
  return { violations, leaderlessAfterMs, healedAfterMs, terms };
}
