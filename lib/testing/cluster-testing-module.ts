import type { LoggerService, ModuleMetadata, Type } from '@nestjs/common';
import { Test, type TestingModule, type TestingModuleBuilder } from '@nestjs/testing';
import {
  CLUSTER_NODE_SEAMS,
  CLUSTER_STARTUP_OPTIONS,
  CLUSTER_TOPOLOGIES,
} from '../cluster.constants.js';
import { CLUSTER_MODULE_OPTIONS } from '../cluster.module-definition.js';
import { ClusterService } from '../cluster.service.js';
import { copyOptionSources } from '../config/option-sources.js';
import { resolveClusterOptions, type ResolvedClusterOptions } from '../config/resolve-options.js';
import type { StartupOptions } from '../config/startup-options.js';
import type { ClusterModuleOptions } from '../interfaces/cluster-options.interface.js';
import type { ClusterEvent } from '../interfaces/member.interface.js';
import type { ClusterNodeSeams } from '../node/cluster-node.js';
import { seededRandom } from '../runtime/random.js';
import { VirtualTime } from '../runtime/virtual-time.js';
import type { Topology } from '../strategies/strategy.factory.js';
import type {
  ClusterStrategy,
  DiscoveredEndpoint,
  StrategyContext,
} from '../strategies/strategy.interface.js';
import { MemoryNetwork } from '../transport/memory-network.js';

/** Port every in-memory node listens on (each node has its own host). */
const PORT = 45893;
/** Most nodes one cluster can have (one `10.0.0.x` host each). */
const MAX_NODES = 250;
/** Cookie shared by the in-memory nodes. */
const COOKIE = 'nestjs-cluster-testing';
/** Virtual ms between two looks at a condition or a promise. */
const STEP_MS = 10;
/** Default budget, in virtual ms, of `converged`, `until` and `run`. */
const DEFAULT_TIMEOUT_MS = 30_000;

/** Options of {@link ClusterTestingModule.create}. */
export interface ClusterTestingOptions extends Pick<
  ModuleMetadata,
  'imports' | 'providers' | 'controllers'
> {
  /** Nodes started by `create` (more with `spawn`). @default 3 */
  readonly nodes?: number;
  /** Seed of every random choice (network latency, jitter): same seed, same run. @default 1 */
  readonly seed?: number;
  /** One-way delay of the in-memory network, virtual ms, uniform in [min, max]. @default [1, 3] */
  readonly latencyMs?: readonly [number, number];
  /** Overrides the app's `heartbeatIntervalMs` (virtual ms). */
  readonly heartbeatIntervalMs?: number;
  /** Overrides the app's `failureTimeoutMs` (virtual ms). */
  readonly failureTimeoutMs?: number;
  /**
   * Adjusts each node's testing module before it compiles, e.g. to override the app's own
   * providers: `(builder, index) => builder.overrideProvider(Mailer).useValue(fakeMailer)`.
   */
  readonly configure?: (builder: TestingModuleBuilder, index: number) => TestingModuleBuilder;
  /** Also print the nodes' cluster logs (prefixed by node), not only record them. @default false */
  readonly printLogs?: boolean;
}

/** Budget of a wait, in virtual milliseconds. */
export interface WaitOptions {
  /** @default 30000 */
  readonly timeoutMs?: number;
}

/** One log line of a node's cluster components. */
export interface ClusterTestingLogLine {
  readonly level: 'log' | 'warn' | 'error' | 'debug' | 'verbose';
  /** `ClusterMembership`, `ClusterTransport`, … */
  readonly context: string;
  readonly message: string;
}

/** State of a node of a testing cluster. */
export type ClusterTestingNodeState = 'running' | 'crashed' | 'closed';

/** The discovery of a testing node: the other nodes of the cluster, as a static host list. */
class InMemoryDiscovery implements ClusterStrategy {
  private ctx: StrategyContext | undefined;
  private endpoints: readonly DiscoveredEndpoint[] = [];

  start(ctx: StrategyContext): void {
    this.ctx = ctx;
    ctx.connect(this.endpoints);
  }

  stop(): void {
    this.ctx = undefined;
  }

  set(endpoints: readonly DiscoveredEndpoint[]): void {
    this.endpoints = endpoints;
    this.ctx?.connect(endpoints);
  }
}

/**
 * One Nest application of a testing cluster: its module (to `get` providers), its
 * `ClusterService`, the events it saw and its cluster logs.
 */
export class ClusterTestingNode {
  private currentState: ClusterTestingNodeState = 'running';
  private nodeName = '';
  /** Every `join` / `leave` / `down` event this node saw, in order. */
  readonly events: ClusterEvent[] = [];
  /** Log lines of this node's cluster components, in order. */
  readonly logs: ClusterTestingLogLine[] = [];
  /** @internal */
  discovery!: InMemoryDiscovery;
  /** @internal */
  moduleRef!: TestingModule;

  /** @internal */
  constructor(
    private readonly cluster: TestingCluster,
    /** Position in `cluster.nodes` (the order nodes were started). */
    readonly index: number,
    /** Host on the in-memory network: `10.0.0.1`, `10.0.0.2`, … (a restart keeps it). */
    readonly host: string,
  ) {}

  /** Node name, `<appName>@<host>` (`appName` of the app's options, `app` by default). */
  get name(): string {
    return this.nodeName;
  }

  /** @internal */
  setName(name: string): void {
    this.nodeName = name;
  }

  /**
   * The node's Nest application (a `TestingModule`). Close the node with `close()`, not
   * `module.close()`: its leave waits on the network, which only virtual time moves.
   */
  get module(): TestingModule {
    return this.moduleRef;
  }

  get state(): ClusterTestingNodeState {
    return this.currentState;
  }

  /** The node's `ClusterService`. */
  get service(): ClusterService {
    return this.moduleRef.get(ClusterService, { strict: false });
  }

  /** A provider of this node, as `app.get(token)` (searching every module). */
  get<TInput = unknown, TResult = TInput>(
    typeOrToken: Type<TInput> | string | symbol | (abstract new (...args: never[]) => TInput),
  ): TResult {
    return this.moduleRef.get<TInput, TResult>(typeOrToken, { strict: false });
  }

  /** Names of the members this node sees, sorted (self included). */
  view(): string[] {
    return this.service.members().map((m) => m.name);
  }

  /** Lines of this node's log at `level`, optionally matching `pattern`. */
  logged(level: ClusterTestingLogLine['level'], pattern?: RegExp): string[] {
    return this.logs
      .filter((l) => l.level === level && (!pattern || pattern.test(l.message)))
      .map((l) => l.message);
  }

  /**
   * Graceful leave: closes the application (Nest shutdown hooks; the node tells every peer it
   * leaves), running virtual time until it has.
   */
  async close(options?: WaitOptions): Promise<void> {
    if (this.currentState !== 'running') return;
    this.currentState = 'closed';
    // The leave is the part that waits on the network: it runs on virtual time first, so the
    // rest of Nest's shutdown (no cluster traffic left) happens with time standing still.
    await this.cluster.run(this.service.beforeApplicationShutdown(), options);
    await this.moduleRef.close();
    this.cluster.announce();
  }

  /** @internal */
  markCrashed(): void {
    this.currentState = 'crashed';
  }
}

/**
 * An in-memory cluster of N instances of the app, in one process, on virtual time. Each node
 * is the app's real module graph compiled with `@nestjs/testing`, whose `ClusterModule` runs
 * the real core (links, membership, leader, messaging) on an in-memory network instead of
 * sockets, with discovery replaced by the list of the other nodes.
 *
 * Time moves only when the test says so (`advance`, `converged`, `until`, `run`, `close`), so
 * a run is a function of its seed: the same seed gives the same events in the same order.
 */
export class TestingCluster {
  readonly time = new VirtualTime();
  readonly network: MemoryNetwork;
  private readonly all: ClusterTestingNode[] = [];
  private generation = 0;
  private hosts = 0;

  /** @internal */
  constructor(private readonly options: ClusterTestingOptions) {
    this.network = new MemoryNetwork(this.time, seededRandom(options.seed ?? 1), {
      latencyMs: options.latencyMs ?? [1, 3],
    });
  }

  /** Every node ever started, in start order (crashed and closed ones included). */
  get nodes(): readonly ClusterTestingNode[] {
    return this.all;
  }

  /** Nodes not crashed nor closed. */
  get running(): ClusterTestingNode[] {
    return this.all.filter((n) => n.state === 'running');
  }

  /** Node `index` (start order). */
  node(index: number): ClusterTestingNode {
    const node = this.all[index];
    if (!node) {
      throw new RangeError(
        `ClusterTestingModule: no node ${index} (the cluster has ${this.all.length}: 0 to ${this.all.length - 1})`,
      );
    }
    return node;
  }

  /** The `ClusterService` of node `index`. */
  service(index: number): ClusterService {
    return this.node(index).service;
  }

  /** The node every running node agrees leads, or `undefined` while they disagree. */
  leader(): ClusterTestingNode | undefined {
    const running = this.running;
    const names = new Set(running.map((n) => n.service.leader()?.name));
    if (names.size !== 1) return undefined;
    const [name] = names;
    return running.find((n) => n.name === name);
  }

  /** Runs `ms` of virtual time: timers, heartbeats, deliveries, failure detection. */
  async advance(ms: number): Promise<void> {
    const end = this.time.now + ms;
    while (this.time.now < end) {
      await this.time.runUntil(Math.min(end, this.time.now + STEP_MS));
      await realTurn();
    }
  }

  /**
   * Runs virtual time until `condition` holds (checked after every delivery).
   * @throws Error after `timeoutMs` of virtual time, with `describe()` of the cluster
   */
  async until(
    condition: () => boolean,
    options: WaitOptions & { what?: string } = {},
  ): Promise<void> {
    const deadline = this.time.now + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    for (;;) {
      await realTurn();
      if (condition()) return;
      if (this.time.now >= deadline) {
        throw new Error(
          `ClusterTestingModule: ${options.what ?? 'condition'} not reached after ${options.timeoutMs ?? DEFAULT_TIMEOUT_MS} virtual ms; ${this.describe()}`,
        );
      }
      await this.time.runUntil(Math.min(deadline, this.time.now + STEP_MS), condition);
    }
  }

  /**
   * Runs virtual time until `work` settles and returns its result: a request, a graceful
   * close, anything that waits on the cluster.
   */
  async run<T>(work: Promise<T>, options: WaitOptions = {}): Promise<T> {
    let settled = false;
    const tracked = work.finally(() => {
      settled = true;
    });
    // The rejection, if any, is the caller's: it is rethrown below.
    tracked.catch(() => undefined);
    await this.until(() => settled, { ...options, what: 'the work to settle' });
    return tracked;
  }

  /**
   * Runs virtual time until every running node sees exactly the running nodes (same
   * incarnations, none unreachable) and they all agree on the leader.
   */
  async converged(options: WaitOptions = {}): Promise<void> {
    await this.until(() => this.isConverged(), { ...options, what: 'convergence' });
  }

  /** True when every running node sees every running node (all `up`) and the same leader. */
  isConverged(): boolean {
    const running = this.running;
    const expected = running
      .map((n) => `${n.name}/${n.service.self.incarnation}`)
      .sort()
      .join(',');
    return (
      running.every(
        (n) =>
          n.service
            .members()
            .map((m) => `${m.name}/${m.incarnation}${m.state === 'up' ? '' : ` ${m.state}`}`)
            .sort()
            .join(',') === expected,
      ) && this.leader() !== undefined
    );
  }

  /** Each node's state and view, for failure messages. */
  describe(): string {
    return this.all
      .map((n) =>
        n.state === 'running'
          ? `${n.name} sees [${n.view().join(', ')}] leader ${n.service.leader()?.name ?? 'none'}`
          : `${n.name} ${n.state}`,
      )
      .join('; ');
  }

  /**
   * The process of node `index` dies: its connections are reset (peers see them close) or,
   * with `silent`, go quiet (a powered-off machine: peers notice by missed heartbeats). Its
   * Nest application gets no shutdown hooks.
   */
  crash(index: number, options: { silent?: boolean } = {}): void {
    const node = this.node(index);
    if (node.state !== 'running') return;
    node.markCrashed();
    this.network.crash(node.host, options.silent ?? false);
  }

  /** Cuts every link between the two groups of nodes, both ways, until `heal`. */
  partition(a: readonly number[], b: readonly number[]): void {
    this.network.partition(
      a.map((i) => this.node(i).host),
      b.map((i) => this.node(i).host),
    );
  }

  /** Bytes from node `from` to node `to` stop arriving (one direction) until `heal`. */
  block(from: number, to: number): void {
    this.network.block(this.node(from).host, this.node(to).host);
  }

  /** Removes every cut; the bytes that waited are delivered. */
  heal(): void {
    this.network.heal();
  }

  /** Adds `ms` to every delivery towards node `index` (0 removes it). */
  delay(index: number, ms: number): void {
    this.network.setExtraDelay(this.node(index).host, ms);
  }

  /** Pauses node `index` (a long GC, SIGSTOP): its timers and deliveries wait for `thaw`. */
  freeze(index: number): void {
    this.network.clockOf(this.node(index).host).freeze();
  }

  thaw(index: number): void {
    this.network.clockOf(this.node(index).host).thaw();
  }

  /** Starts one more node on a new host (the next index) and returns it; it joins. */
  async spawn(): Promise<ClusterTestingNode> {
    if (this.hosts >= MAX_NODES) {
      throw new RangeError(`ClusterTestingModule: at most ${MAX_NODES} hosts per cluster`);
    }
    this.hosts += 1;
    return this.start(`10.0.${Math.floor(this.hosts / 256)}.${this.hosts % 256}`);
  }

  /**
   * Starts node `index` again, after a crash or a close: a new process (new incarnation, next
   * index) with the same name and host, which rejoins. Returns the new node.
   */
  async restart(index: number): Promise<ClusterTestingNode> {
    const old = this.node(index);
    if (old.state === 'running') {
      throw new Error(
        `ClusterTestingModule: node ${index} (${old.name}) is running; crash or close it before restart`,
      );
    }
    if (this.all.some((n) => n.host === old.host && n.state === 'running')) {
      throw new Error(`ClusterTestingModule: ${old.name} was already restarted`);
    }
    return this.start(old.host);
  }

  private async start(host: string): Promise<ClusterTestingNode> {
    const index = this.all.length;
    // One virtual millisecond between starts: node 0 is the oldest, so the first leader.
    if (index > 0) await this.advance(1);
    const node = new ClusterTestingNode(this, index, host);
    const seams = this.seamsOf(node);
    node.discovery = new InMemoryDiscovery();
    const topologies: Topology[] = [
      { name: 'testing', strategyName: 'in-memory', strategy: node.discovery },
    ];
    let builder = Test.createTestingModule({
      imports: this.options.imports,
      providers: this.options.providers,
      controllers: this.options.controllers,
    })
      .overrideProvider(CLUSTER_NODE_SEAMS)
      .useValue(seams)
      // The app's options, resolved for this node; no instance-metadata request, whatever
      // strategy the app configures (the resolved options and the metadata derive from this).
      .overrideProvider(CLUSTER_STARTUP_OPTIONS)
      .useFactory({
        inject: [CLUSTER_MODULE_OPTIONS],
        factory: (appOptions: ClusterModuleOptions): StartupOptions => ({
          options: this.resolve(appOptions, node),
          metadata: null,
        }),
      })
      .overrideProvider(CLUSTER_TOPOLOGIES)
      .useValue(topologies);
    if (this.options.configure) builder = this.options.configure(builder, index);
    // Compiling and bootstrapping need no virtual time (listening on the in-memory network is
    // immediate): time stays still, so where Nest's own async work ends does not matter.
    const app = await builder.compile();
    node.moduleRef = app;
    node.service.events$.subscribe((event) => node.events.push(event));
    this.all.push(node);
    await app.init();
    this.announce();
    return node;
  }

  /** Closes every running node gracefully, then releases the crashed ones. */
  async close(options: WaitOptions = {}): Promise<void> {
    await Promise.all(this.running.map((n) => n.close(options)));
    for (const node of this.all) {
      // A crashed node's links are already gone: its shutdown waits on nothing.
      if (node.state === 'crashed') await node.moduleRef.close();
    }
  }

  /**
   * @internal offers each running node the others, as a static host list would: a crashed
   * node stays listed (peers keep dialling it, as they would a dead host); one that closed
   * gracefully is dropped.
   */
  announce(): void {
    // The latest process of each host, unless it closed.
    const latest = new Map<string, ClusterTestingNode>();
    for (const n of this.all) latest.set(n.host, n);
    const listed = [...latest.values()].filter((n) => n.state !== 'closed');
    for (const node of this.running) {
      node.discovery.set(
        listed.filter((n) => n !== node).map((n) => ({ host: n.host, port: PORT, name: n.name })),
      );
    }
  }

  private seamsOf(node: ClusterTestingNode): ClusterNodeSeams {
    const print = this.options.printLogs === true;
    const loggers = new Map<string, LoggerService>();
    const logger = (context: string): LoggerService => {
      let l = loggers.get(context);
      if (!l) {
        const line =
          (level: ClusterTestingLogLine['level']) =>
          (message: unknown): void => {
            const text = String(message);
            node.logs.push({ level, context, message: text });
            if (print) console.log(`[${node.host} ${context}] ${level}: ${text}`);
          };
        l = {
          log: line('log'),
          warn: line('warn'),
          error: line('error'),
          debug: line('debug'),
          verbose: line('verbose'),
        };
        loggers.set(context, l);
      }
      return l;
    };
    return {
      clock: this.network.clockOf(node.host),
      random: seededRandom((this.options.seed ?? 1) * 31 + node.index + 1),
      network: this.network.host(node.host),
      logger,
    };
  }

  /**
   * The app's own options (messaging limits, timeouts, `debug`, `appName`), validated as in
   * production, with what makes the node an in-memory one: name, host, cookie, no discovery
   * of its own, a deterministic incarnation and a virtual start time.
   */
  private resolve(
    appOptions: ClusterModuleOptions,
    node: ClusterTestingNode,
  ): ResolvedClusterOptions {
    const own: Record<string, unknown> = { ...(appOptions as Record<string, unknown>) };
    for (const key of [
      'strategy',
      'strategyConfig',
      'topologies',
      'host',
      'cookie',
      'previousCookies',
      'requireStrongCookie',
      'nodeName',
    ])
      delete own[key];
    const appName =
      typeof own.appName === 'string' && own.appName.trim() !== '' ? own.appName : 'app';
    const testing = {
      ...own,
      strategy: 'none',
      nodeName: `${appName.trim()}@${node.host}`,
      port: PORT,
      bindAddress: node.host,
      advertiseAddress: node.host,
      ...(this.options.heartbeatIntervalMs !== undefined && {
        heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      }),
      ...(this.options.failureTimeoutMs !== undefined && {
        failureTimeoutMs: this.options.failureTimeoutMs,
      }),
    } as ClusterModuleOptions;
    copyOptionSources(appOptions, testing);
    const resolved = resolveClusterOptions(testing, { env: {}, instanceMetadata: null });
    node.setName(resolved.nodeName);
    return {
      ...resolved,
      mode: 'cluster',
      singleNodeReason: undefined,
      cookie: COOKIE,
      incarnation: `${(this.options.seed ?? 1).toString(16)}-${node.index}-${++this.generation}`,
      startedAt: this.network.clockOf(node.host).wallNow(),
      topologies: [],
    };
  }
}

/**
 * Builds in-memory clusters of an app for its tests, as `Test.createTestingModule` builds one
 * instance:
 *
 * ```ts
 * const cluster = await ClusterTestingModule.create({ nodes: 3, imports: [AppModule] });
 * await cluster.converged();
 * cluster.node(0).get(ReportService);
 * cluster.crash(0);
 * await cluster.converged(); // node 1 leads
 * await cluster.close();
 * ```
 *
 * The app imports `ClusterModule` as in production (`forRoot`, `forRootAsync`,
 * `forRootFromEnv`); its transport, discovery, clock and randomness are overridden.
 */
export class ClusterTestingModule {
  private constructor() {}

  /** Compiles and starts `nodes` instances of the app, one after the other. */
  static async create(options: ClusterTestingOptions): Promise<TestingCluster> {
    const nodes = options.nodes ?? 3;
    if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES) {
      throw new RangeError(
        `ClusterTestingModule.create: nodes must be an integer from 1 to ${MAX_NODES} (got ${JSON.stringify(nodes)})`,
      );
    }
    const seed = options.seed ?? 1;
    if (!Number.isInteger(seed)) {
      throw new RangeError(
        `ClusterTestingModule.create: seed must be an integer (got ${JSON.stringify(seed)})`,
      );
    }
    const cluster = new TestingCluster(options);
    try {
      for (let i = 0; i < nodes; i++) await cluster.spawn();
    } catch (error) {
      await cluster.close().catch(() => undefined);
      throw error;
    }
    return cluster;
  }
}

/** Lets real macrotasks (Nest's own async work, I/O callbacks) run once. */
function realTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
