import { promises as dnsPromises, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
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

/** What the strategy asks in SRV mode, and in A mode with `nameServers`. */
interface DnsQueries {
  resolveSrv(name: string): Promise<{ name: string; port: number }[]>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
}

/** A lookup that found the name but no records of the type (or no name): an empty answer. */
const EMPTY_CODES = new Set(['ENODATA', 'ENOTFOUND']);

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
 * **SRV mode** (`recordType: 'srv'`, `LIBCLUSTER_DNS_RECORD_TYPE=srv`, or
 * `LIBCLUSTER_STRATEGY=Cluster.Strategy.Kubernetes.DNSSRV`): `query` is an SRV name —
 * a StatefulSet's headless service (`_cluster._tcp.myapp.shop.svc.cluster.local`, or the
 * service name itself), a Consul service (`myapp.service.consul`), an ECS/Cloud Map
 * service. Each record's target becomes `{ host: <its address>, port: <the record's port>,
 * name: '<nodeBasename>@<target>' }`, so the port comes from DNS (`CLUSTER_PORT=0` works)
 * and StatefulSet names are stable (`myapp@myapp-0.myapp.shop.svc.cluster.local`). A target
 * whose address does not resolve is skipped (debug log); the SRV lookup failing is a failed
 * poll. `Cluster.Strategy.Kubernetes.DNS` is this strategy in A mode.
 *
 * Options:
 * - `query` (required): the name to resolve (`LIBCLUSTER_DNS_QUERY`).
 * - `nodeBasename`: node-name prefix (`LIBCLUSTER_DNS_NODE_BASENAME`); default: the prefix
 *   of the local node name (the app name).
 * - `pollingIntervalMs`: default 5000 (`LIBCLUSTER_POLLING_INTERVAL`).
 * - `lookupTimeoutMs`: deadline of one lookup; default 10000.
 * - `recordType`: `'a'` (default) or `'srv'` (`LIBCLUSTER_DNS_RECORD_TYPE`).
 * - `nameServers`: DNS servers to ask instead of the system's, `ip` or `ip:port`
 *   (`LIBCLUSTER_DNS_SERVERS`, e.g. Consul's `127.0.0.1:8600`), through a `dns.Resolver`.
 * - `resolver`: `(query) => Promise<LookupAddress[]>` (A mode); default
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
  private readonly queries: DnsQueries;
  private readonly srv: boolean;
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
    this.srv = options.recordType === 'srv';
    if (options.nameServers && options.nameServers.length > 0) {
      // Our own deadline bounds the lookup; one try per server keeps that deadline meaningful.
      const resolver = new dnsPromises.Resolver({
        timeout: Math.max(100, Math.floor(this.lookupTimeoutMs / 2)),
        tries: 1,
      });
      resolver.setServers(options.nameServers);
      this.queries = resolver;
      this.resolver = options.resolver ?? ((query) => resolveAll(resolver, query));
    } else {
      this.queries = dnsPromises;
      this.resolver = options.resolver ?? systemResolver;
    }
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
      const prefix = this.options.nodeBasename ?? ctx.self.name.split('@')[0] ?? 'app';
      const endpoints = new Map<string, DiscoveredEndpoint>();
      if (this.srv) {
        for (const e of await this.withDeadline(this.lookupSrv(query, prefix)))
          endpoints.set(`${e.host}|${e.port}`, e);
      } else {
        for (const { address } of await this.lookup(query)) {
          endpoints.set(address, {
            host: address,
            port: this.options.clusterPort,
            name: `${prefix}@${address}`,
          });
        }
      }
      if (!current()) return;
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

  /** SRV records of `query`, each target resolved to its first address. */
  private async lookupSrv(query: string, prefix: string): Promise<DiscoveredEndpoint[]> {
    const records = await this.queries.resolveSrv(query);
    const out: DiscoveredEndpoint[] = [];
    await Promise.all(
      records.map(async (record) => {
        const target = record.name.replace(/\.$/, '');
        let host: string | undefined = isIP(target) ? target : undefined;
        if (!host) {
          const v4 = await this.queries.resolve4(target).catch(() => [] as string[]);
          const v6 =
            v4.length > 0 ? [] : await this.queries.resolve6(target).catch(() => [] as string[]);
          host = v4[0] ?? v6[0];
        }
        if (!host) {
          if (this.ctx?.debug)
            this.ctx.logger.debug?.(`SRV target ${target} of ${query} has no address; skipped`);
          return;
        }
        out.push({ host, port: record.port, name: `${prefix}@${target}` });
      }),
    );
    return out.sort((a, b) => (a.name! < b.name! ? -1 : a.name! > b.name! ? 1 : 0));
  }

  private lookup(query: string): Promise<LookupAddress[]> {
    return this.withDeadline(this.resolver(query));
  }

  private async withDeadline<T>(work: Promise<T>): Promise<T> {
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
      return await Promise.race([work, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A and AAAA records of `query` from one resolver; a family with no records counts as empty. */
async function resolveAll(resolver: DnsQueries, query: string): Promise<LookupAddress[]> {
  const [v4, v6] = await Promise.allSettled([resolver.resolve4(query), resolver.resolve6(query)]);
  const failed = [v4, v6].filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  const fatal = failed.find((r) => !EMPTY_CODES.has((r.reason as { code?: string })?.code ?? ''));
  if (fatal) throw fatal.reason;
  const missing = failed.find((r) => (r.reason as { code?: string })?.code === 'ENOTFOUND');
  if (failed.length === 2 && missing) throw missing.reason; // the name does not exist at all
  return [
    ...(v4.status === 'fulfilled' ? v4.value.map((address) => ({ address, family: 4 })) : []),
    ...(v6.status === 'fulfilled' ? v6.value.map((address) => ({ address, family: 6 })) : []),
  ];
}
