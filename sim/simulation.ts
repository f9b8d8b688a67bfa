import type { LoggerService } from '@nestjs/common';
import type { ClusterEvent } from '../lib/interfaces/member.interface.js';
import { ClusterNode } from '../lib/node/cluster-node.js';
import { seededRandom, type Random } from '../lib/runtime/random.js';
import { VirtualTime } from '../lib/runtime/virtual-time.js';
import type {
  ClusterStrategy,
  DiscoveredEndpoint,
  StrategyContext,
} from '../lib/strategies/strategy.interface.js';
import { MemoryNetwork } from '../lib/transport/memory-network.js';
import { inMemoryNodeOptions } from './node-options.js';

/**
 * The deterministic simulator of the membership core: N real `ClusterNode`s (transport,
 * handshake, links, heartbeats, membership, reconciler, peer exchange, leader) in one process,
 * on an in-memory network and virtual time, driven by one seed. Faults are scripted from the
 * seed; invariants are checked after every step. The same seed replays the same run.
 */

export type FaultKind =
  | 'crash'
  | 'crash-silent'
  | 'freeze-short'
  | 'freeze-long'
  | 'restart'
  | 'impostor'
  | 'partition'
  | 'one-way'
  | 'slow'
  | 'discovery-flap';

export const ALL_FAULTS: readonly FaultKind[] = [
  'crash',
  'crash-silent',
  'freeze-short',
  'freeze-long',
  'restart',
  'impostor',
  'partition',
  'one-way',
  'slow',
  'discovery-flap',
];

export interface SimOptions {
  readonly nodes: number;
  readonly seed: number;
  /** Random fault steps before the network is healed and convergence is checked (none without fault kinds). */
  readonly steps: number;
  readonly faults: readonly FaultKind[];
  /** Simulated time per fault step, ms. @default 2000 */
  readonly stepMs?: number;
  readonly heartbeatIntervalMs?: number;
  readonly failureTimeoutMs?: number;
  /** Bound on convergence once faults stop, simulated ms. @default failureTimeout × 2 + 20 s */
  readonly convergeBoundMs?: number;
  /** Stable time after convergence in which no membership event may happen, ms. @default 20000 */
  readonly quietMs?: number;
  /** Membership events one node may record about one member during one fault step. @default 8 */
  readonly maxEventsPerMemberPerStep?: number;
  /** Prints each step. */
  readonly verbose?: boolean;
  readonly log?: (line: string) => void;
}

/** A scripted scenario (`Simulation.scenario`), run with a fixed seed instead of random faults. */
export type ScenarioKind = 'one-way';

export const ALL_SCENARIOS: readonly ScenarioKind[] = ['one-way'];

/** What a scenario measured, besides its violations. */
export interface ScenarioResult {
  readonly scenario: ScenarioKind;
  readonly nodes: number;
  readonly seed: number;
  readonly violations: readonly Violation[];
  /** Simulated ms from the fault to the moment every node agreed on one leader for good. */
  readonly agreedAfterMs: number | undefined;
  /** Simulated ms from the heal to full membership (every member `up`) and one leader. */
  readonly healedAfterMs: number | undefined;
  /** What each node saw once the fault had settled: leader, and the members it marks unreachable. */
  readonly during: readonly { node: string; leader: string | null; unreachable: string[] }[];
}

export interface Violation {
  readonly step: number;
  readonly at: number;
  readonly what: string;
}

export interface SimResult {
  readonly nodes: number;
  readonly seed: number;
  /** Simulated ms from the end of faults to convergence, or undefined when it never converged. */
  readonly convergedAfterMs: number | undefined;
  readonly violations: readonly Violation[];
  readonly steps: number;
  readonly simulatedMs: number;
}

/** A sim node's logger: silent, or every line to the sink with `--verbose`. */
class SimLogger implements LoggerService {
  constructor(private readonly sink?: (line: string) => void) {}
  log(message: unknown): void {
    this.sink?.(`log   ${String(message)}`);
  }
  warn(message: unknown): void {
    this.sink?.(`warn  ${String(message)}`);
  }
  error(message: unknown): void {
    this.sink?.(`error ${String(message)}`);
  }
  debug(): void {}
  verbose(): void {}
}

/** Discovery as the simulator scripts it: a full list (like EC2 tags or DNS), pushed by the world. */
class SimDiscovery implements ClusterStrategy {
  ctx: StrategyContext | undefined;
  failing = false;
  start(ctx: StrategyContext): void {
    this.ctx = ctx;
  }
  stop(): void {
    this.ctx = undefined;
  }
  publish(endpoints: readonly DiscoveredEndpoint[]): void {
    if (!this.failing) this.ctx?.connect(endpoints);
  }
}

interface SimProcess {
  readonly index: number;
  readonly name: string;
  readonly host: string;
  readonly incarnation: string;
  readonly node: ClusterNode;
  readonly discovery: SimDiscovery;
  /** Events seen, per member name, since the step began. */
  readonly stepEvents: Map<string, number>;
  events: number;
  alive: boolean;
  frozen: boolean;
  /** An old process whose name a newer one took (impostor fault): expected alone. */
  superseded: boolean;
  /** Joins/leaves/downs this process recorded since it became superseded, per member. */
  readonly eventsWhileSuperseded: Map<string, string[]>;
}

const PORT = 45893;

export class Simulation {
  readonly time = new VirtualTime();
  private readonly random: Random;
  private readonly network: MemoryNetwork;
  private readonly processes: SimProcess[] = [];
  private readonly violations: Violation[] = [];
  private readonly o: Required<Omit<SimOptions, 'log'>> & { log: (line: string) => void };
  private step = 0;
  private incarnations = 0;
  private impostors = 0;

  constructor(options: SimOptions) {
    const failureTimeoutMs = options.failureTimeoutMs ?? 5000;
    this.o = {
      stepMs: 2000,
      heartbeatIntervalMs: 1000,
      failureTimeoutMs,
      convergeBoundMs: failureTimeoutMs * 2 + 20_000,
      quietMs: 20_000,
      maxEventsPerMemberPerStep: 8,
      verbose: false,
      log: (line) => console.log(line),
      ...options,
    };
    this.random = seededRandom(options.seed);
    this.network = new MemoryNetwork(this.time, seededRandom(options.seed ^ 0x5eed), {
      latencyMs: [1, 4],
    });
  }

  async run(): Promise<SimResult> {
    for (let i = 0; i < this.o.nodes; i++) await this.spawn(i, this.hostOf(i));
    this.publishDiscovery();
    // Start-up storm: every node discovers every other at once.
    await this.advance(this.o.stepMs);
    // With no fault kinds there is nothing to inject: the stable phase after convergence checks
    // an idle cluster, so the fault phase is skipped rather than run idle.
    const steps = this.o.faults.length > 0 ? this.o.steps : 0;
    for (this.step = 1; this.step <= steps; this.step++) {
      this.resetStepCounters();
      const fault = this.o.faults.length > 0 ? this.pick(this.o.faults) : undefined;
      if (fault) await this.inject(fault);
      await this.advance(this.o.stepMs);
      this.checkStep();
    }
    // Faults stop: heal, thaw, stop impostor leftovers, and every live node must converge.
    this.network.heal();
    for (const p of this.processes) {
      this.network.setExtraDelay(p.host, 0);
      if (p.frozen) this.thaw(p);
      p.discovery.failing = false;
      if (p.alive && p.superseded) await this.kill(p, false);
    }
    this.publishDiscovery();
    const faultsEndedAt = this.time.now;
    let convergedAt: number | undefined;
    const deadline = faultsEndedAt + this.o.convergeBoundMs;
    while (this.time.now < deadline) {
      await this.advance(250);
      if (this.converged()) {
        convergedAt = this.time.now;
        break;
      }
    }
    this.step = steps + 1;
    if (convergedAt === undefined) {
      this.violate(
        `not converged ${this.o.convergeBoundMs} ms after faults stopped: ${this.describeViews()}`,
      );
    } else {
      this.resetStepCounters();
      const before = this.processes.filter((p) => p.alive).map((p) => p.events);
      await this.advance(this.o.quietMs);
      const after = this.processes.filter((p) => p.alive).map((p) => p.events);
      const flapped = after.map((n, i) => n - before[i]).reduce((a, b) => a + b, 0);
      if (flapped > 0)
        this.violate(
          `${flapped} membership events in ${this.o.quietMs} ms of a stable, converged cluster (flap)`,
        );
      if (!this.converged()) this.violate('a converged cluster diverged with no fault');
      this.checkLeaders();
    }
    this.checkBounded();
    if (this.time.uncaught.length > 0) {
      this.violate(
        `uncaught errors in timers: ${this.time.uncaught.map((e) => (e as Error).message ?? String(e)).join('; ')}`,
      );
    }
    // Every node leaves at once (one graceful shutdown of the whole cluster).
    await this.during(
      Promise.all(this.processes.filter((p) => p.alive).map((p) => p.node.close())),
    );
    return {
      nodes: this.o.nodes,
      seed: this.o.seed,
      convergedAfterMs: convergedAt === undefined ? undefined : convergedAt - faultsEndedAt,
      violations: this.violations,
      steps,
      simulatedMs: this.time.now,
    };
  }

  // ---- world ----------------------------------------------------------------------------

  private hostOf(i: number): string {
    return `10.0.${i >> 8}.${(i & 255) + 1}`;
  }

  private async spawn(
    index: number,
    host: string,
    name = `n${index}@${host}`,
  ): Promise<SimProcess> {
    const clock = this.network.clockOf(host);
    const incarnation = `i${++this.incarnations}`;
    const options = inMemoryNodeOptions(
      {
        nodeName: name,
        host,
        port: PORT,
        incarnation,
        startedAt: clock.wallNow(),
        cookie: 'simulated-cluster-cookie',
        appName: 'n',
      },
      {
        heartbeatIntervalMs: this.o.heartbeatIntervalMs,
        failureTimeoutMs: this.o.failureTimeoutMs,
      },
    );
    const discovery = new SimDiscovery();
    const sink = this.o.verbose
      ? (line: string): void => this.o.log(`  [${name}] ${line}`)
      : undefined;
    const node = new ClusterNode(
      options,
      [{ name: 'sim', strategyName: 'sim', strategy: discovery }],
      {
        clock,
        random: seededRandom(this.o.seed * 7919 + this.incarnations),
        network: this.network.host(host),
        logger: () => new SimLogger(sink),
      },
    );
    const p: SimProcess = {
      index,
      name,
      host,
      incarnation,
      node,
      discovery,
      stepEvents: new Map(),
      events: 0,
      alive: true,
      frozen: false,
      superseded: false,
      eventsWhileSuperseded: new Map(),
    };
    node.membership.events$.subscribe((event: ClusterEvent) => {
      p.events++;
      if (p.superseded) {
        const seen = p.eventsWhileSuperseded.get(event.member.name) ?? [];
        seen.push(event.type);
        p.eventsWhileSuperseded.set(event.member.name, seen);
      }
      p.stepEvents.set(event.member.name, (p.stepEvents.get(event.member.name) ?? 0) + 1);
    });
    await node.start();
    this.processes.push(p);
    return p;
  }

  /** Every live process's discovery lists every live host's endpoint (with names, as EC2/gossip do). */
  private publishDiscovery(): void {
    const endpoints = this.liveEndpoints();
    for (const p of this.processes) if (p.alive) p.discovery.publish(endpoints);
  }

  private liveEndpoints(): DiscoveredEndpoint[] {
    const seen = new Set<string>();
    const list: DiscoveredEndpoint[] = [];
    for (const p of this.processes) {
      if (!p.alive || p.superseded || seen.has(p.host)) continue;
      seen.add(p.host);
      list.push({ host: p.host, port: PORT, name: p.name });
    }
    return list;
  }

  /** Runs virtual time until `work` settles (a graceful close waits on the clock). */
  private async during(work: Promise<unknown>): Promise<void> {
    let done = false;
    void work.finally(() => (done = true));
    for (let i = 0; i < 600 && !done; i++) await this.advance(50);
    if (!done) this.violate('a graceful close did not finish within 30 s simulated');
  }

  private async advance(ms: number): Promise<void> {
    await this.time.runFor(ms);
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random.next() * items.length)];
  }

  private live(): SimProcess[] {
    return this.processes.filter((p) => p.alive && !p.superseded);
  }

  private async kill(p: SimProcess, silent: boolean): Promise<void> {
    p.alive = false;
    this.network.crash(p.host, silent);
    await Promise.resolve();
  }

  private thaw(p: SimProcess): void {
    p.frozen = false;
    this.network.clockOf(p.host).thaw();
  }

  private async inject(fault: FaultKind): Promise<void> {
    const live = this.live().filter((p) => !p.frozen);
    if (live.length < 2) return;
    const victim = this.pick(live);
    const note = (what: string): void => {
      if (this.o.verbose) this.o.log(`step ${this.step} @${this.time.now} ms: ${what}`);
    };
    switch (fault) {
      case 'crash':
      case 'crash-silent': {
        note(`${fault} ${victim.name}, restarted after ${this.o.failureTimeoutMs} ms`);
        await this.kill(victim, fault === 'crash-silent');
        this.publishDiscovery();
        await this.advance(this.o.failureTimeoutMs);
        await this.respawn(victim);
        return;
      }
      case 'restart': {
        note(`restart ${victim.name} with a new incarnation`);
        await this.during(victim.node.close());
        victim.alive = false;
        this.network.crash(victim.host, false);
        await this.respawn(victim);
        return;
      }
      case 'freeze-short':
      case 'freeze-long': {
        const ms =
          fault === 'freeze-short'
            ? Math.floor(this.o.failureTimeoutMs / 2)
            : this.o.failureTimeoutMs * 2;
        note(`freeze ${victim.name} for ${ms} ms`);
        victim.frozen = true;
        this.network.clockOf(victim.host).freeze();
        await this.advance(ms);
        this.thaw(victim);
        return;
      }
      case 'impostor': {
        // A newer process takes a live name while the old one is frozen (a restart beside a
        // stopped process, blue/green with a fixed NODE_NAME). The old one thaws: it must not
        // flap, and must not lead.
        note(`impostor takes ${victim.name} while the old process is frozen`);
        victim.frozen = true;
        this.network.clockOf(victim.host).freeze();
        await this.advance(this.o.failureTimeoutMs * 2);
        victim.superseded = true;
        const k = this.impostors++;
        const host = `10.9.${k >> 8}.${(k & 255) + 1}`;
        const fresh = await this.spawn(victim.index, host, victim.name);
        this.publishDiscovery();
        await this.advance(this.o.failureTimeoutMs);
        this.thaw(victim);
        victim.eventsWhileSuperseded.clear();
        await this.advance(10_000);
        const leads = victim.node.isLeader();
        if (leads)
          this.violate(
            `${victim.name} (old incarnation ${victim.incarnation}) leads while ${fresh.incarnation} holds its name`,
          );
        // It loses each link it had once (its peers closed them while it was frozen) and gains
        // none. Losing may take two steps: unreachable (another link still vouched), then down.
        for (const [member, all] of victim.eventsWhileSuperseded) {
          const types = all.filter((t) => t !== 'unreachable');
          if (types.length > 1 || all.length > 2 || types.includes('join')) {
            this.violate(
              `superseded ${victim.name} recorded ${all.join(', ')} about ${member} in 10 s (flap)`,
            );
          }
        }
        await this.kill(victim, false);
        return;
      }
      case 'partition': {
        const shuffled = [...live].sort(() => this.random.next() - 0.5);
        const cut = 1 + Math.floor(this.random.next() * (shuffled.length - 1));
        const a = shuffled.slice(0, cut).map((p) => p.host);
        const b = shuffled.slice(cut).map((p) => p.host);
        const ms = Math.floor(this.random.next() * 3 * this.o.failureTimeoutMs);
        note(`partition ${a.length}|${b.length} for ${ms} ms`);
        this.network.partition(a, b);
        await this.advance(ms);
        this.network.heal();
        return;
      }
      case 'one-way': {
        const other = this.pick(live.filter((p) => p !== victim));
        const ms = Math.floor(this.random.next() * 3 * this.o.failureTimeoutMs);
        note(`one-way loss ${victim.name} → ${other.name} for ${ms} ms`);
        const settleMs = this.o.failureTimeoutMs + 1000;
        const wasStable = this.converged() && this.live().every((p) => !p.frozen);
        this.network.block(victim.host, other.host);
        if (wasStable && ms > settleMs) {
          await this.advance(settleMs);
          // Shared reachability: one leader everywhere once the loss has been reported.
          this.checkOneLeader(`${settleMs} ms into one-way loss ${victim.name} → ${other.name}`);
          await this.advance(ms - settleMs);
        } else {
          await this.advance(ms);
        }
        this.network.heal();
        return;
      }
      case 'slow': {
        const ms = 50 + Math.floor(this.random.next() * 500);
        note(`${victim.name} is slow: +${ms} ms per delivery for one step`);
        this.network.setExtraDelay(victim.host, ms);
        await this.advance(this.o.stepMs);
        this.network.setExtraDelay(victim.host, 0);
        return;
      }
      case 'discovery-flap': {
        const other = this.pick(live.filter((p) => p !== victim));
        note(`${victim.name}'s discovery drops ${other.name} for one poll, then fails for one`);
        victim.discovery.publish(this.liveEndpoints().filter((e) => e.host !== other.host));
        await this.advance(this.o.stepMs);
        victim.discovery.failing = true;
        await this.advance(this.o.stepMs);
        victim.discovery.failing = false;
        victim.discovery.publish(this.liveEndpoints());
        return;
      }
    }
  }

  private async respawn(old: SimProcess): Promise<void> {
    const i = this.processes.indexOf(old);
    const fresh = await this.spawn(old.index, old.host, old.name);
    // The new process replaces the old in the roster (it was pushed at the end).
    this.processes.splice(this.processes.indexOf(fresh), 1);
    this.processes.splice(i, 1, fresh);
    this.publishDiscovery();
  }

  // ---- invariants -------------------------------------------------------------------------

  private resetStepCounters(): void {
    for (const p of this.processes) p.stepEvents.clear();
  }

  private violate(what: string): void {
    this.violations.push({ step: this.step, at: this.time.now, what });
    this.o.log(`VIOLATION seed ${this.o.seed} step ${this.step} @${this.time.now} ms: ${what}`);
  }

  private checkStep(): void {
    for (const p of this.processes) {
      for (const [member, n] of p.stepEvents) {
        if (n > this.o.maxEventsPerMemberPerStep) {
          this.violate(
            `${p.name} recorded ${n} events about ${member} in one fault step (flap loop)`,
          );
        }
      }
    }
    if (this.time.uncaught.length > 0)
      this.violate(`uncaught error: ${String(this.time.uncaught.at(-1))}`);
    this.checkBounded();
  }

  /** Every live process sees exactly the live processes (name and incarnation). */
  private converged(): boolean {
    const live = this.live();
    const want = new Map(live.map((p) => [p.name, p.incarnation]));
    if (want.size !== live.length) return false;
    return live.every((p) => {
      const members = p.node.membership.members();
      return (
        members.length === want.size &&
        members.every((m) => want.get(m.name) === m.incarnation && m.state === 'up')
      );
    });
  }

  private describeViews(): string {
    const live = this.live();
    const lacking = live
      .map((p) => {
        const seen = new Set(p.node.membership.members().map((m) => m.name));
        const missing = live.filter((q) => !seen.has(q.name)).map((q) => q.name);
        return missing.length > 0
          ? `${p.name} misses ${missing.slice(0, 5).join(' ')}${missing.length > 5 ? ` (+${missing.length - 5})` : ''}`
          : '';
      })
      .filter(Boolean);
    return `${lacking.length} of ${live.length} nodes incomplete; ${lacking.slice(0, 4).join('; ')}`;
  }

  /**
   * Invariant after stabilisation: the live nodes that see each other (one connected view)
   * agree on one leader, which is one of them, and exactly one of them considers itself leader.
   */
  private checkOneLeader(when: string): void {
    const live = this.live().filter((p) => !p.frozen);
    const leaders = new Set(live.map((p) => p.node.membership.leader()?.name ?? 'none'));
    const self = live.filter((p) => p.node.isLeader()).map((p) => p.name);
    if (leaders.size !== 1 || self.length !== 1)
      this.violate(
        `${when}: leaders ${live.map((p) => `${p.name}→${p.node.membership.leader()?.name ?? 'none'}`).join(' ')}; ${self.length} consider themselves leader`,
      );
  }

  /** True when the live nodes agree on one leader and exactly one of them leads. */
  private oneLeader(): boolean {
    const live = this.live();
    const leaders = new Set(live.map((p) => p.node.membership.leader()?.name ?? 'none'));
    return leaders.size === 1 && live.filter((p) => p.node.isLeader()).length === 1;
  }

  /**
   * A scripted scenario with a fixed seed. `one-way`: once the cluster has converged, packets
   * from the first node to the second are dropped (the second's firewall, say) for
   * `3 × failureTimeoutMs`; within `failureTimeoutMs + 1 s` every node must agree on exactly one
   * leader, the two must show each other `unreachable` and every other node must show both
   * `up`; the agreement must hold until the heal. After the heal every member must be `up`
   * everywhere with one leader again.
   */
  async scenario(kind: ScenarioKind): Promise<ScenarioResult> {
    for (let i = 0; i < this.o.nodes; i++) await this.spawn(i, this.hostOf(i));
    this.publishDiscovery();
    await this.advance(this.o.stepMs);
    for (let i = 0; i < 40 && !this.converged(); i++) await this.advance(250);
    if (!this.converged() || !this.oneLeader())
      this.violate(`not converged before the fault: ${this.describeViews()}`);
    this.step = 1;
    const [a, b] = this.processes;
    const settleMs = this.o.failureTimeoutMs + 1000;
    const faultMs = 3 * this.o.failureTimeoutMs;
    const faultAt = this.time.now;
    this.network.block(a.host, b.host);
    // Agreement, sampled every 100 ms: the last moment it did not hold.
    let lastDisagreement = faultAt;
    while (this.time.now < faultAt + settleMs) {
      await this.advance(100);
      if (!this.oneLeader()) lastDisagreement = this.time.now;
    }
    const agreed = this.oneLeader();
    this.checkOneLeader(`${settleMs} ms into one-way loss ${a.name} → ${b.name}`);
    const during = this.live().map((p) => ({
      node: p.name,
      leader: p.node.membership.leader()?.name ?? null,
      unreachable: p.node.membership
        .members()
        .filter((m) => m.state === 'unreachable')
        .map((m) => m.name),
    }));
    const leader = this.processes[0].node.membership.leader();
    for (const d of during) {
      const want = d.node === a.name ? [b.name] : d.node === b.name ? [a.name] : [];
      if (JSON.stringify(d.unreachable) !== JSON.stringify(want))
        this.violate(
          `${d.node} shows unreachable [${d.unreachable.join(', ')}], expected [${want.join(', ')}]`,
        );
    }
    if (leader && (leader.name === a.name || leader.name === b.name))
      this.violate(`the leader ${leader.name} is one end of the broken pair`);
    for (const p of this.live())
      if (p.node.membership.members().length !== this.o.nodes)
        this.violate(
          `${p.name} sees ${p.node.membership.members().length} members during the loss`,
        );
    // The agreement holds for the rest of the fault.
    while (this.time.now < faultAt + faultMs) {
      await this.advance(250);
      if (!this.oneLeader()) {
        this.checkOneLeader(`${this.time.now - faultAt} ms into the one-way loss`);
        break;
      }
    }
    this.step = 2;
    this.network.heal();
    const healAt = this.time.now;
    let healedAt: number | undefined;
    while (this.time.now < healAt + this.o.convergeBoundMs) {
      await this.advance(50);
      if (this.converged() && this.oneLeader()) {
        healedAt = this.time.now;
        break;
      }
    }
    if (healedAt === undefined) this.violate(`not healed: ${this.describeViews()}`);
    else this.checkLeaders();
    if (this.time.uncaught.length > 0)
      this.violate(
        `uncaught errors in timers: ${this.time.uncaught.map((e) => String(e)).join('; ')}`,
      );
    await this.during(
      Promise.all(this.processes.filter((p) => p.alive).map((p) => p.node.close())),
    );
    return {
      scenario: kind,
      nodes: this.o.nodes,
      seed: this.o.seed,
      violations: this.violations,
      agreedAfterMs: agreed ? lastDisagreement - faultAt : undefined,
      healedAfterMs: healedAt === undefined ? undefined : healedAt - healAt,
      during,
    };
  }

  private checkLeaders(): void {
    const live = this.live();
    const leaders = new Set(live.map((p) => p.node.membership.leader()?.name ?? 'none'));
    if (leaders.size !== 1)
      this.violate(`converged nodes disagree on the leader: ${[...leaders].join(', ')}`);
    const self = live.filter((p) => p.node.isLeader());
    if (self.length !== 1) this.violate(`${self.length} nodes consider themselves leader`);
    // The fencing term: every converged node follows the leader with the leader's term.
    const agreed = new Set(
      live.map((p) => {
        const { leader, term } = p.node.leadership.leadership();
        return `${leader?.name ?? 'none'}/${term}`;
      }),
    );
    if (agreed.size !== 1)
      this.violate(`converged nodes disagree on leadership and term: ${[...agreed].join(', ')}`);
  }

  private checkBounded(): void {
    const n = this.o.nodes;
    for (const p of this.processes) {
      if (!p.alive) continue;
      const stats = p.node.reconcilerStats();
      if (stats && (stats.targets > 2 * n + 16 || stats.queued > 2 * n || stats.departed > 4096)) {
        this.violate(`${p.name}: reconciler state grew (${JSON.stringify(stats)})`);
      }
      const wires = this.network.openWires(p.host);
      if (wires > 4 * n + 16)
        this.violate(`${p.name}: ${wires} open connections for ${n} nodes (leak)`);
    }
  }
}
