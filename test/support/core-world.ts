import type { LoggerService } from '@nestjs/common';
import type { ResolvedClusterOptions } from '../../lib/config/resolve-options.js';
import type { ClusterEvent } from '../../lib/interfaces/member.interface.js';
import { ClusterNode, type ClusterNodeSeams } from '../../lib/node/cluster-node.js';
import { seededRandom } from '../../lib/runtime/random.js';
import { VirtualTime } from '../../lib/runtime/virtual-time.js';
import type {
  ClusterStrategy,
  DiscoveredEndpoint,
  StrategyContext,
} from '../../lib/strategies/strategy.interface.js';
import { MemoryNetwork } from '../../lib/transport/memory-network.js';
import { inMemoryNodeOptions } from '../../sim/node-options.js';

/** Log lines of one node, by level (what an operator would read). */
export class RecordingLogger implements LoggerService {
  readonly lines: { level: string; message: string }[] = [];
  log(message: unknown): void {
    this.lines.push({ level: 'log', message: String(message) });
  }
  warn(message: unknown): void {
    this.lines.push({ level: 'warn', message: String(message) });
  }
  error(message: unknown): void {
    this.lines.push({ level: 'error', message: String(message) });
  }
  debug(): void {}
  verbose(): void {}
  at(level: string, pattern?: RegExp): string[] {
    return this.lines
      .filter((l) => l.level === level && (!pattern || pattern.test(l.message)))
      .map((l) => l.message);
  }
}

/** Discovery the test sets by hand (a static list, an EC2 poll). */
export class ManualDiscovery implements ClusterStrategy {
  private ctx: StrategyContext | undefined;
  start(ctx: StrategyContext): void {
    this.ctx = ctx;
  }
  stop(): void {
    this.ctx = undefined;
  }
  set(endpoints: readonly DiscoveredEndpoint[]): void {
    this.ctx?.connect(endpoints);
  }
}

export interface WorldNode {
  readonly name: string;
  readonly host: string;
  readonly node: ClusterNode;
  readonly discovery: ManualDiscovery;
  readonly logger: RecordingLogger;
  readonly events: ClusterEvent[];
  readonly endpoint: DiscoveredEndpoint;
  /** Names of the members this node sees, sorted (self included). */
  view(): string[];
}

/**
 * Real `ClusterNode`s on an in-memory network and virtual time (the simulator's seams), for
 * unit tests of membership and the reconciler: deterministic, no sockets, no real timers.
 */
export class CoreWorld {
  readonly time = new VirtualTime();
  readonly network: MemoryNetwork;
  private seq = 0;
  readonly nodes: WorldNode[] = [];

  constructor(readonly seed = 1) {
    this.network = new MemoryNetwork(this.time, seededRandom(seed), { latencyMs: [1, 3] });
  }

  async spawn(
    name: string,
    host: string,
    overrides: Partial<ResolvedClusterOptions> = {},
    seams: Pick<ClusterNodeSeams, 'peerExchange' | 'sealLinks' | 'watchedPerSide'> = {},
  ): Promise<WorldNode> {
    const clock = this.network.clockOf(host);
    const options = inMemoryNodeOptions(
      {
        nodeName: name,
        host,
        port: 45893,
        incarnation: `inc-${++this.seq}`,
        startedAt: clock.wallNow(),
        cookie: 'world-cookie',
        appName: 'app',
      },
      // The defaults' heartbeat and timeout, stated: tests reason about these numbers.
      { heartbeatIntervalMs: 1000, failureTimeoutMs: 5000, ...overrides },
    );
    const discovery = new ManualDiscovery();
    const logger = new RecordingLogger();
    const node = new ClusterNode(
      options,
      [{ name: 'manual', strategyName: 'manual', strategy: discovery }],
      {
        clock,
        random: seededRandom(this.seed * 31 + this.seq),
        network: this.network.host(host),
        logger: () => logger,
        ...seams,
      },
    );
    const events: ClusterEvent[] = [];
    node.membership.events$.subscribe((e) => events.push(e));
    await node.start();
    const w: WorldNode = {
      name,
      host,
      node,
      discovery,
      logger,
      events,
      endpoint: { host, port: options.port, name },
      view: () =>
        node.membership
          .members()
          .map((m) => m.name)
          .sort(),
    };
    this.nodes.push(w);
    return w;
  }

  run(ms: number): Promise<void> {
    return this.time.runFor(ms);
  }

  /** Runs virtual time until `work` settles. */
  async during<T>(work: Promise<T>, maxMs = 30_000): Promise<T> {
    let done = false;
    const result = work.finally(() => (done = true));
    for (let t = 0; t < maxMs && !done; t += 50) await this.run(50);
    return result;
  }

  async closeAll(): Promise<void> {
    for (const n of this.nodes) await this.during(n.node.close());
  }
}
