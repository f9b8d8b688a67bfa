import { promises as dnsPromises, type LookupAddress } from 'node:dns';
import { ClusterError } from '../errors/cluster.error.js';
import { DnsDiscoveryError } from '../errors/dns-discovery.error.js';
import type { DnsStrategyOptions } from '../interfaces/strategy-options.interface.js';
import type { ClusterStrategy, DiscoveredEndpoint, StrategyContext } from './strategy.interface.js';

/** Constructor options: the topology's {@link DnsStrategyOptions} plus the link port. */
export interface DnsStrategyConfig extends DnsStrategyOptions {
  /** Link port of every discovered node (`CLUSTER_PORT`, the same on every node). */
  clusterPort: number;
  /** Deadline of one lookup, ms; a resolver that never answers counts as a failed poll. @default 10000 */
  lookupTimeoutMs?: number;
}

/** Poll every 5 s, as libcluster's DNSPoll does. */
const DEFAULT_POLLING_INTERVAL_MS = 5000;
/** Longer than the system resolver's own retries (5 s × 2 attempts is typical). */
const DEFAULT_LOOKUP_TIMEOUT_MS = 10_000;

/** The real resolver: every A and AAAA address the system resolver returns for `query`. */
const systemResolver = (query: string): Promise<LookupAddress[]> =>
  dnsPromises.lookup(query, { all: true });

/**
 * Discovers nodes from the A/AAAA records of one DNS name, like libcluster's
 * `Cluster.Strategy.DNSPoll`: typically a Kubernetes headless service, an ECS service
 * discovery (Cloud Map) name or any round-robin record listing the app's instances.
 *
 * Every `pollingIntervalMs` (first poll at start) it resolves `query` and hands the core the
 * full set: one endpoint per address, `{ host: <ip>, port: clusterPort, name:
 * '<nodeBasename>@<ip>' }`. An address that leaves the record drops out of the next set and
 * the core closes its link. A failed lookup (`ENOTFOUND`, `EAI_AGAIN`, no answer within `lookupTimeoutMs`) keeps the
 * current members: the strategy logs a warning, reports a {@link DnsDiscoveryError} to the
 * core (shown in health) and tries again at the next interval; the next good answer
 * reports recovery. An empty answer is a valid (empty) set.
 *
 * Options:
 * - `query` (required): the name to resolve (`LIBCLUSTER_DNS_QUERY`).
 * - `nodeBasename`: node-name prefix (`LIBCLUSTER_DNS_NODE_BASENAME`); default: the prefix
 *   of the local node name (the app name).
 * - `pollingIntervalMs`: default 5000 (`LIBCLUSTER_POLLING_INTERVAL`).
 * - `lookupTimeoutMs`: deadline of one lookup; default 10000.
 * - `resolver`: `(query) => Promise<LookupAddress[]>`; default
 *   `dns.promises.lookup(query, { all: true })`, which follows `/etc/hosts` and the system
 *   resolver like every other lookup of the process.
 *
 * @example
 * ClusterModule.forRoot({
 *   cookie: process.env.NODE_COOKIE,
 *   strategy: 'dns',
 *   strategyConfig: { query: 'myapp-headless.default.svc.cluster.local', nodeBasename: 'myapp' },
 * });
 */
export class DnsStrategy implements ClusterStrategy {
  private readonly pollingIntervalMs: number;
  private readonly lookupTimeoutMs: number;
  private readonly resolver: (query: string) => Promise<LookupAddress[]>;
  private ctx: StrategyContext | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** Bumped by every start/stop, so a lookup from an earlier run never reports into a later one. */
  private generation = 0;
  private failing = false;

  constructor(private readonly options: DnsStrategyConfig) {
    if (typeof options.query !== 'string' || options.query.trim() === '') {
      throw new ClusterError('dns strategy: query is required (LIBCLUSTER_DNS_QUERY)');
    }
    this.pollingIntervalMs = options.pollingIntervalMs ?? DEFAULT_POLLING_INTERVAL_MS;
    this.lookupTimeoutMs = options.lookupTimeoutMs ?? DEFAULT_LOOKUP_TIMEOUT_MS;
    this.resolver = options.resolver ?? systemResolver;
  }

  /** Starts polling; the first lookup runs at once. */
  start(ctx: StrategyContext): void {
    this.stop();
    this.ctx = ctx;
    this.running = true;
    this.failing = false;
    this.schedule(0);
  }

  /** Stops polling; a lookup in flight is ignored when it settles. */
  stop(): void {
    this.running = false;
    this.generation++;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    const generation = this.generation;
    this.timer = setTimeout(() => void this.poll(generation), delayMs);
    this.timer.unref();
  }

  private async poll(generation: number): Promise<void> {
    const ctx = this.ctx!;
    const { query } = this.options;
    const current = (): boolean => this.running && generation === this.generation;
    try {
      const answers = await this.lookup(query);
      if (!current()) return;
      const prefix = this.options.nodeBasename ?? ctx.self.name.split('@')[0] ?? 'app';
      const endpoints = new Map<string, DiscoveredEndpoint>();
      for (const { address } of answers) {
        endpoints.set(address, {
          host: address,
          port: this.options.clusterPort,
          name: `${prefix}@${address}`,
        });
      }
      if (this.failing) ctx.logger.log(`DNS query ${query} resolves again`);
      this.failing = false;
      if (ctx.debug) {
        ctx.logger.debug?.(`DNS ${query}: ${[...endpoints.keys()].join(', ') || 'no addresses'}`);
      }
      ctx.connect([...endpoints.values()]);
      ctx.reportOk();
    } catch (err) {
      if (!current()) return;
      this.failing = true;
      const error = new DnsDiscoveryError(query, err);
      ctx.logger.warn(
        `${error.message}; keeping the current members, retrying in ${this.pollingIntervalMs} ms`,
      );
      ctx.reportError(error);
    }
    this.schedule(this.pollingIntervalMs);
  }

  private async lookup(query: string): Promise<LookupAddress[]> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            Object.assign(new Error(`no answer within ${this.lookupTimeoutMs} ms`), {
              code: 'ETIMEOUT',
            }),
          ),
        this.lookupTimeoutMs,
      );
      timer.unref();
    });
    try {
      return await Promise.race([this.resolver(query), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }
}
