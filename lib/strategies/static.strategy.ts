import { isIP } from 'node:net';
import { ClusterError } from '../errors/cluster.error.js';
import { InvalidHostListError, type InvalidHostEntry } from '../errors/invalid-host-list.error.js';
import type { StaticStrategyOptions } from '../interfaces/strategy-options.interface.js';
import type { ClusterStrategy, DiscoveredEndpoint, StrategyContext } from './strategy.interface.js';

/** Constructor options: the topology's {@link StaticStrategyOptions} plus the link port. */
export interface StaticStrategyConfig extends StaticStrategyOptions {
  /** Port of entries that name none (`CLUSTER_PORT`). */
  clusterPort: number;
}

/** Hand the list over again every 5 s, the polling interval of the other strategies. */
const DEFAULT_POLLING_INTERVAL_MS = 5000;

/** An RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens. */
const HOSTNAME =
  /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i;
/** The name part of `name@host`, as in Erlang node names. */
const NODE_PREFIX = /^[A-Za-z0-9_.+-]+$/;

/**
 * Parses a static host list: a comma-separated string (`LIBCLUSTER_HOSTS`) or an array of
 * entries, each one of
 * - `host` — the link port is `defaultPort`;
 * - `host:port`;
 * - `name@host:port` or `name@host` — `name@host` becomes the expected node name;
 * - `[ipv6]:port`, `[ipv6]` or a bare IPv6 address (which takes `defaultPort`).
 *
 * Blank entries are ignored and duplicates (same host and port) collapse. Every bad entry
 * is collected and thrown together in one {@link InvalidHostListError}.
 *
 * @example
 * parseHostList('10.0.1.5, app@10.0.1.6:4000, [fd00::7]:45893', 45893);
 * // → [{ host: '10.0.1.5', port: 45893 },
 * //    { host: '10.0.1.6', port: 4000, name: 'app@10.0.1.6' },
 * //    { host: 'fd00::7', port: 45893 }]
 */
export function parseHostList(value: string | string[], defaultPort: number): DiscoveredEndpoint[] {
  const entries = (Array.isArray(value) ? value : value.split(','))
    .map((e) => e.trim())
    .filter((e) => e !== '');
  const endpoints = new Map<string, DiscoveredEndpoint>();
  const invalid: InvalidHostEntry[] = [];
  for (const entry of entries) {
    const parsed = parseEntry(entry, defaultPort);
    if ('reason' in parsed) {
      invalid.push({ entry, reason: parsed.reason });
      continue;
    }
    const key = `${parsed.host}|${parsed.port}`;
    if (!endpoints.has(key)) endpoints.set(key, parsed);
  }
  if (invalid.length > 0) throw new InvalidHostListError(invalid);
  return [...endpoints.values()];
}

/** `scheme://…`: a URL pasted where `host:port` belongs. */
const URL_SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

/** The `host:port` a URL entry most likely meant, for the hint; undefined when it has no host. */
function hostPortOfUrl(entry: string): string | undefined {
  try {
    const url = new URL(entry);
    if (url.hostname === '') return undefined;
    return url.port === '' ? url.hostname : `${url.hostname}:${url.port}`;
  } catch {
    return undefined;
  }
}

function parseEntry(entry: string, defaultPort: number): DiscoveredEndpoint | { reason: string } {
  if (URL_SCHEME.test(entry)) {
    const meant = hostPortOfUrl(entry);
    return {
      reason: `a URL where host:port was expected${meant ? ` (write ${meant})` : ''}`,
    };
  }
  let rest = entry;
  let prefix: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at !== -1) {
    prefix = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (!NODE_PREFIX.test(prefix)) return { reason: 'bad node name before @' };
  }

  let host: string;
  let portText: string | undefined;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close === -1) return { reason: 'missing ]' };
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) return { reason: 'unexpected text after ]' };
      portText = after.slice(1);
    }
    if (isIP(host) !== 6) return { reason: 'not an IPv6 address inside [ ]' };
  } else if (isIP(rest) === 6) {
    host = rest;
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon !== -1) {
      host = rest.slice(0, colon);
      portText = rest.slice(colon + 1);
    } else {
      host = rest;
    }
    if (host.includes(':'))
      return { reason: 'an IPv6 address with a port needs brackets: [addr]:port' };
    if (host === '') return { reason: 'missing host' };
    if (isIP(host) === 0 && !HOSTNAME.test(host))
      return { reason: 'not a host name or IP address' };
  }

  let port = defaultPort;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText)) return { reason: 'port must be a number' };
    port = Number(portText);
    if (port < 1 || port > 65535) return { reason: 'port must be 1-65535' };
  }
  return prefix === undefined ? { host, port } : { host, port, name: `${prefix}@${host}` };
}

/**
 * A fixed list of hosts, like libcluster's `Cluster.Strategy.Epmd`: for a known set of
 * machines (on-premises, a fixed fleet, docker-compose) where neither multicast nor a cloud
 * API is available.
 *
 * The list is parsed once in the constructor ({@link parseHostList}; a bad entry throws an
 * {@link InvalidHostListError} naming every bad entry). At start, and again every
 * `pollingIntervalMs`, the strategy hands the whole list to the core, so the core keeps
 * dialling hosts that are down and links to them as soon as they come back; the local
 * node's own entry is fine to keep in the list (the core skips itself).
 *
 * Options:
 * - `hosts` (required): entries `host`, `host:port`, `name@host:port` or `[ipv6]:port`
 *   (`LIBCLUSTER_HOSTS`, comma-separated); a missing port means `clusterPort`.
 * - `pollingIntervalMs`: how often the list is handed over again; default 5000.
 *
 * @example
 * ClusterModule.forRoot({
 *   cookie: process.env.NODE_COOKIE,
 *   strategy: 'static',
 *   strategyConfig: { hosts: ['10.0.1.5', '10.0.1.6', 'oli@10.0.1.7:45893'] },
 * });
 */
export class StaticStrategy implements ClusterStrategy {
  /** The parsed list, as handed to the core. */
  readonly endpoints: readonly DiscoveredEndpoint[];
  private readonly pollingIntervalMs: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: StaticStrategyConfig) {
    if (!Array.isArray(options.hosts) && typeof options.hosts !== 'string') {
      throw new ClusterError('static strategy: hosts is required (LIBCLUSTER_HOSTS)');
    }
    this.endpoints = Object.freeze(parseHostList(options.hosts, options.clusterPort));
    this.pollingIntervalMs = options.pollingIntervalMs ?? DEFAULT_POLLING_INTERVAL_MS;
  }

  /** Hands the list to the core now and every `pollingIntervalMs`. */
  start(ctx: StrategyContext): void {
    this.stop();
    if (ctx.debug) {
      ctx.logger.debug?.(
        `static hosts: ${this.endpoints.map((e) => `${e.host}:${e.port}`).join(', ') || 'none'}`,
      );
    }
    const announce = (): void => {
      ctx.connect(this.endpoints);
      ctx.reportOk();
    };
    announce();
    this.timer = setInterval(announce, this.pollingIntervalMs);
    this.timer.unref();
  }

  /** Stops re-announcing the list. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
