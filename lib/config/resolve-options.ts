import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { hostname as osHostname, networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import type {
  ClusterModuleOptions,
  TopologyOptions,
} from '../interfaces/cluster-options.interface.js';
import type {
  DnsStrategyOptions,
  Ec2StrategyOptions,
  GossipStrategyOptions,
  KubernetesStrategyOptions,
  StaticStrategyOptions,
} from '../interfaces/strategy-options.interface.js';
import type { ClusterMessagingOptions } from '../messaging/cluster-message.interface.js';
import { MESSAGING_DEFAULTS } from '../messaging/cluster-messaging.js';
import type { ClusterStrategy, ClusterStrategyClass } from '../strategies/strategy.interface.js';
import { ClusterConfigError, type ConfigProblem } from '../errors/cluster-config.error.js';
import { InvalidHostListError } from '../errors/invalid-host-list.error.js';
import { labelSelectorProblem } from '../strategies/kubernetes/label-selector.js';
import { parseHostList } from '../strategies/static.strategy.js';
import {
  cookieWeakness,
  GENERATE_COOKIE_ADVICE,
  weakCookieText,
} from '../security/cookie-strength.js';
import { MAX_STATIC_QUORUM, type QuorumSetting } from '../membership/quorum.js';
import { loadTlsMaterial, nodeNameHost, type TlsFiles } from '../transport/tls-material.js';
import { CLUSTER_DEFAULTS } from './cluster.defaults.js';
import { isSetInCode, optionSource } from './option-sources.js';
import { ACCEPTED_STRATEGY_NAMES, normalizeStrategyName } from './strategy-names.js';

/** A topology after validation: its name, the strategy's name and how to build it. */
export interface ResolvedTopology {
  readonly name: string;
  /** `gossip`, `ec2`, `static`, `dns`, `none`, or the custom strategy's class name. */
  readonly strategy: string;
  /** Validated strategy config (built-in strategies), or the custom config. */
  readonly config: unknown;
  /** Custom strategy class or instance, when not built in. */
  readonly custom?: ClusterStrategyClass<unknown> | ClusterStrategy;
}

/** Options after defaults and validation: what the runtime uses. */
export interface ResolvedClusterOptions {
  readonly mode: 'cluster' | 'single-node';
  /** Why the node runs single-node (shown once as a warning). */
  readonly singleNodeReason?: string;
  readonly cookie?: string;
  /** Cookies still accepted from dialers (`NODE_COOKIE_PREVIOUS`), never the current one. */
  readonly previousCookies: readonly string[];
  /** Set when the cookie is weak (and allowed): the one start-up warning. */
  readonly cookieWarning?: string;
  readonly nodeName: string;
  readonly incarnation: string;
  readonly startedAt: number;
  readonly appName: string;
  readonly port: number;
  readonly bindAddress: string;
  /** Host peers dial; the port is added once the listener is bound. */
  readonly advertiseAddress: string;
  readonly heartbeatIntervalMs: number;
  readonly failureTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  readonly maxPendingHandshakes: number;
  readonly maxPendingHandshakesPerSource: number;
  readonly maxFrameBytes: number;
  readonly maxWriteBufferBytes: number;
  readonly reconnectBaseMs: number;
  readonly reconnectMaxMs: number;
  readonly debug: boolean;
  /** Split-brain guard; absent: none. */
  readonly quorum?: QuorumSetting;
  /** `quorum: 'majority'`: stable window before the reference rebases, ms. @default 60000 */
  readonly quorumStableMs?: number;
  /** Mutual TLS for links, checked at start-up; undefined for plain TCP. */
  readonly tls?: ResolvedTlsOptions;
  /** Messaging limits, defaults applied. */
  readonly messaging: Readonly<Required<ClusterMessagingOptions>>;
  readonly topologies: readonly ResolvedTopology[];
}

/** Mutual TLS files after validation. */
export interface ResolvedTlsOptions extends TlsFiles {
  readonly reloadIntervalMs: number;
}

/** Facts about the machine the resolver needs; seams for tests. */
export interface ResolveEnvironment {
  /** `HOSTNAME` and friends. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** EC2 instance metadata (read only when an EC2 topology exists). */
  readonly instanceMetadata?: { localIpv4?: string } | null;
  /** Network interfaces, for the default advertise address. @default os.networkInterfaces */
  readonly interfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
  /** Reads the TLS files. @default fs.readFileSync */
  readonly readFile?: (path: string) => Buffer;
  /** Wall clock for certificate validity, epoch ms. @default Date.now() */
  readonly now?: number;
}

const BUILTIN: ReadonlySet<string> = new Set([
  'gossip',
  'ec2',
  'static',
  'dns',
  'kubernetes',
  'none',
]);
/** A Kubernetes namespace or service name: an RFC 1123 label. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const NODE_NAME = /^[^@\s]+@[^@\s]+$/;
const HOST = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;

/** Returns true when the options configure at least one EC2 topology. */
export function usesEc2(options: ClusterModuleOptions): boolean {
  return normalizeTopologies(options).some(
    ([, t]) => typeof t.strategy === 'string' && normalizeStrategyName(t.strategy) === 'ec2',
  );
}

function normalizeTopologies(options: ClusterModuleOptions): [string, TopologyOptions, string][] {
  if (options.topologies && Object.keys(options.topologies).length > 0) {
    return Object.entries(options.topologies).map(([name, t]) => [name, t, `topologies.${name}`]);
  }
  const strategy = options.strategy ?? CLUSTER_DEFAULTS.strategy;
  return [['default', { strategy, config: options.strategyConfig } as TopologyOptions, '']];
}

/**
 * Applies defaults, derives the node identity and validates everything at once. Throws one
 * `ClusterConfigError` listing every problem (`NAME: message`), naming the environment
 * variable when the value came from the environment.
 */
export function resolveClusterOptions(
  options: ClusterModuleOptions,
  environment: ResolveEnvironment = {},
): ResolvedClusterOptions {
  const env = environment.env ?? process.env;
  const problems: ConfigProblem[] = [];
  const label = (path: string) => optionSource(options, path)?.env ?? path;
  const show = (path: string, value: unknown) => {
    const src = optionSource(options, path);
    return src ? JSON.stringify(src.raw) : JSON.stringify(value);
  };
  const problem = (path: string, message: string) => problems.push({ name: label(path), message });
  const fromEnv = optionSource(options, '$env') !== undefined;
  /**
   * A required value that is missing: name the variable when configured from the environment
   * (and not overridden in code).
   */
  const missing = (path: string, env: string, message: string) =>
    problems.push({
      name: fromEnv && !path.startsWith('topologies.') && !isSetInCode(options, path) ? env : path,
      message,
    });

  const int = (
    path: string,
    value: unknown,
    def: number,
    min: number,
    max: number,
    what: string,
  ): number => {
    if (value === undefined) return def;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      problem(
        path,
        `${show(path, value)} is not ${what} (accepted: an integer from ${min} to ${max})`,
      );
      return def;
    }
    return value;
  };
  const str = (path: string, value: unknown): string | undefined => {
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || value.trim() === '') {
      problem(path, `${show(path, value)} is not a non-empty string`);
      return undefined;
    }
    return value.trim();
  };
  const bool = (path: string, value: unknown, def: boolean): boolean => {
    if (value === undefined) return def;
    if (typeof value !== 'boolean') {
      problem(path, `${show(path, value)} is not a boolean (accepted: true, false, 1, 0, yes, no)`);
      return def;
    }
    return value;
  };
  const oneOf = <T extends string>(
    path: string,
    value: unknown,
    accepted: readonly T[],
    def: T,
    what: string,
  ): T => {
    if (value === undefined) return def;
    const v = typeof value === 'string' ? value.trim().toLowerCase() : value;
    if (typeof v === 'string' && (accepted as readonly string[]).includes(v)) return v as T;
    problem(path, `${show(path, value)} is not ${what} (accepted: ${accepted.join(', ')})`);
    return def;
  };
  const nameServers = (path: string, value: unknown): string[] | undefined => {
    if (value === undefined) return undefined;
    const list = typeof value === 'string' ? value.split(',') : value;
    if (!Array.isArray(list) || list.some((s) => typeof s !== 'string')) {
      problem(path, 'must be a list of DNS server addresses');
      return undefined;
    }
    const servers = list.map((s: string) => s.trim()).filter((s) => s !== '');
    for (const s of servers) {
      const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(s) ?? /^([^:]+)(?::(\d{1,5}))?$/.exec(s);
      const host = m ? m[1] : s;
      const portOk = !m?.[2] || (Number(m[2]) >= 1 && Number(m[2]) <= 65535);
      if (isIP(host) === 0 || !portOk) {
        problem(
          path,
          `${JSON.stringify(s)} is not a DNS server address (accepted: ip, ip:port, [ipv6]:port; comma-separated)`,
        );
      }
    }
    return servers;
  };
  const address = (path: string, value: unknown): string | undefined => {
    const s = str(path, value);
    if (s === undefined) return undefined;
    if (!isIP(s) && !HOST.test(s)) {
      problem(path, `${show(path, value)} is not an IP address or host name`);
      return undefined;
    }
    return s;
  };

  const cookie = str('cookie', options.cookie);
  /**
   * A list of secrets (`NODE_COOKIE_PREVIOUS`, `LIBCLUSTER_GOSSIP_SECRET_PREVIOUS`): strings,
   * none empty. Values are never shown in a problem: they are secrets.
   */
  const secrets = (path: string, value: unknown): string[] | undefined => {
    if (value === undefined) return undefined;
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
      problem(path, 'must be a list of strings (comma-separated in the environment)');
      return undefined;
    }
    const list = (value as string[]).map((v) => v.trim());
    const empty = list.findIndex((v) => v === '');
    if (empty >= 0) {
      problem(
        path,
        `entry ${empty + 1} of ${list.length} is empty (accepted: comma-separated secrets, e.g. old-secret-1,old-secret-2, with no empty entries — remove the stray comma)`,
      );
      return undefined;
    }
    return list;
  };
  const requireStrongCookie = bool('requireStrongCookie', options.requireStrongCookie, false);
  let cookieWarning: string | undefined;
  const weakness = cookie === undefined ? undefined : cookieWeakness(cookie);
  if (weakness !== undefined) {
    const what = weakCookieText(weakness);
    if (requireStrongCookie) {
      problem(
        'cookie',
        `${what} and ${label('requireStrongCookie')} is true: ${GENERATE_COOKIE_ADVICE}`,
      );
    } else {
      cookieWarning = `${label('cookie')} ${what}: anyone who can reach the link port can guess it; ${GENERATE_COOKIE_ADVICE} (CLUSTER_REQUIRE_STRONG_COOKIE=true makes a weak cookie a start-up error)`;
    }
  }
  const previousCookies = [
    ...new Set(secrets('previousCookies', options.previousCookies) ?? []),
  ].filter((previous) => previous !== cookie);
  const cookieName = fromEnv && !isSetInCode(options, 'cookie') ? 'NODE_COOKIE' : 'cookie';
  if (previousCookies.length > 0 && cookie === undefined) {
    problem(
      'previousCookies',
      `is set without ${cookieName}: the previous cookies are only accepted beside a current one (set ${cookieName} to the new cookie)`,
    );
  }
  const appName = str('appName', options.appName) ?? CLUSTER_DEFAULTS.appName;
  if (/[@\s]/.test(appName))
    problem('appName', `${show('appName', appName)} must not contain '@' or spaces`);

  const port = int('port', options.port, CLUSTER_DEFAULTS.port, 0, 65535, 'a TCP port');
  const bindAddress = address('bindAddress', options.bindAddress) ?? CLUSTER_DEFAULTS.bindAddress;
  const heartbeatIntervalMs = int(
    'heartbeatIntervalMs',
    options.heartbeatIntervalMs,
    CLUSTER_DEFAULTS.heartbeatIntervalMs,
    10,
    600_000,
    'a heartbeat interval in ms',
  );
  const failureTimeoutMs = int(
    'failureTimeoutMs',
    options.failureTimeoutMs,
    CLUSTER_DEFAULTS.failureTimeoutMs,
    20,
    3_600_000,
    'a failure timeout in ms',
  );
  if (failureTimeoutMs < 2 * heartbeatIntervalMs) {
    problem(
      'failureTimeoutMs',
      `${show('failureTimeoutMs', failureTimeoutMs)} must be at least twice the heartbeat interval (${heartbeatIntervalMs} ms), or every delayed heartbeat is a false down`,
    );
  }
  const handshakeTimeoutMs = int(
    'handshakeTimeoutMs',
    options.handshakeTimeoutMs,
    CLUSTER_DEFAULTS.handshakeTimeoutMs,
    10,
    600_000,
    'a handshake timeout in ms',
  );
  const maxPendingHandshakes = int(
    'maxPendingHandshakes',
    options.maxPendingHandshakes,
    CLUSTER_DEFAULTS.maxPendingHandshakes,
    1,
    100_000,
    'a connection count',
  );
  const maxPendingHandshakesPerSource = int(
    'maxPendingHandshakesPerSource',
    options.maxPendingHandshakesPerSource,
    CLUSTER_DEFAULTS.maxPendingHandshakesPerSource,
    1,
    100_000,
    'a connection count',
  );
  const maxFrameBytes = int(
    'maxFrameBytes',
    options.maxFrameBytes,
    CLUSTER_DEFAULTS.maxFrameBytes,
    1024,
    1024 * 1024 * 1024,
    'a frame size in bytes',
  );
  const maxWriteBufferBytes = int(
    'maxWriteBufferBytes',
    options.maxWriteBufferBytes,
    CLUSTER_DEFAULTS.maxWriteBufferBytes,
    1024,
    4 * 1024 * 1024 * 1024,
    'a buffer size in bytes',
  );
  const debug = bool('debug', options.debug, false);
  const quorum = quorumSetting(options.quorum, (message) =>
    problem('quorum', `${show('quorum', options.quorum)} ${message}`),
  );
  const quorumStableMs = int(
    'quorumStableMs',
    options.quorumStableMs,
    CLUSTER_DEFAULTS.quorumStableMs,
    1000,
    86_400_000,
    'a stable window in ms',
  );
  const messagingOptions = (options.messaging ?? {}) as Record<string, unknown>;
  if (
    options.messaging !== undefined &&
    (typeof options.messaging !== 'object' || options.messaging === null)
  ) {
    problem('messaging', 'must be an object');
  }
  const messaging = Object.freeze({
    maxPayloadBytes: int(
      'messaging.maxPayloadBytes',
      messagingOptions.maxPayloadBytes,
      Math.min(MESSAGING_DEFAULTS.maxPayloadBytes, maxFrameBytes - 1),
      1,
      maxFrameBytes - 1,
      `a payload size in bytes below maxFrameBytes (${maxFrameBytes})`,
    ),
    defaultRequestTimeoutMs: int(
      'messaging.defaultRequestTimeoutMs',
      messagingOptions.defaultRequestTimeoutMs,
      MESSAGING_DEFAULTS.defaultRequestTimeoutMs,
      1,
      3_600_000,
      'a request timeout in ms',
    ),
  });

  // Topologies.
  const topologies: ResolvedTopology[] = [];
  const entries = normalizeTopologies(options);
  /** The EC2 strategy's explicit appPrefix: the node's own prefix too when APP_NAME is unset (Torus). */
  let ec2Prefix: string | undefined;
  const ec2Used = entries.some(
    ([, t]) => typeof t.strategy === 'string' && normalizeStrategyName(t.strategy) === 'ec2',
  );
  for (const [name, topology, prefix] of entries) {
    const strategyPath = prefix ? `${prefix}.strategy` : 'strategy';
    const configPath = prefix ? `${prefix}.config` : 'strategyConfig';
    const raw = topology.strategy;
    if (typeof raw === 'function') {
      topologies.push({
        name,
        strategy: raw.name || 'custom',
        config: topology.config,
        // The configuration's type is checked where the class is named (the option union).
        custom: raw as ClusterStrategyClass,
      });
      continue;
    }
    if (raw && typeof raw === 'object' && typeof raw.start === 'function') {
      topologies.push({
        name,
        strategy: raw.constructor?.name ?? 'custom',
        config: undefined,
        custom: raw,
      });
      continue;
    }
    const strategy = typeof raw === 'string' ? normalizeStrategyName(raw) : undefined;
    if (!strategy || !BUILTIN.has(strategy)) {
      problem(
        strategyPath,
        `${show(strategyPath, raw)} is not a strategy (accepted: ${ACCEPTED_STRATEGY_NAMES}, or a strategy class)`,
      );
      continue;
    }
    const cfg = (topology.config ?? {}) as Record<string, unknown>;
    if (
      topology.config !== undefined &&
      (typeof topology.config !== 'object' || topology.config === null)
    ) {
      problem(configPath, 'must be an object');
      continue;
    }
    const c = (key: string) => `${configPath}.${key}`;
    const polling = (def = CLUSTER_DEFAULTS.pollingIntervalMs) =>
      int(
        c('pollingIntervalMs'),
        cfg.pollingIntervalMs,
        def,
        100,
        3_600_000,
        'a polling interval in ms',
      );
    let config: unknown;
    switch (strategy) {
      case 'gossip': {
        const g = cfg as GossipStrategyOptions;
        const broadcastOnly = bool(c('broadcastOnly'), g.broadcastOnly, false);
        const multicastAddr = str(c('multicastAddr'), g.multicastAddr);
        if (multicastAddr !== undefined) {
          if (isIP(multicastAddr) !== 4) {
            problem(
              c('multicastAddr'),
              `${show(c('multicastAddr'), multicastAddr)} is not an IPv4 address`,
            );
          } else if (!broadcastOnly && !isMulticast(multicastAddr)) {
            problem(
              c('multicastAddr'),
              `${show(c('multicastAddr'), multicastAddr)} is not a multicast address (accepted: 224.0.0.0 to 239.255.255.255; or set broadcast-only mode with a broadcast address)`,
            );
          }
        }
        for (const key of ['ifAddr', 'multicastIf'] as const) {
          const v = str(c(key), g[key]);
          if (v !== undefined && isIP(v) !== 4)
            problem(c(key), `${show(c(key), v)} is not an IPv4 address`);
        }
        config = {
          ...g,
          port: int(c('port'), g.port, 45892, 1, 65535, 'a UDP port'),
          multicastTtl: int(c('multicastTtl'), g.multicastTtl, 1, 0, 255, 'a multicast TTL'),
          broadcastOnly,
          secret: str(c('secret'), g.secret),
          previousSecrets: secrets(c('previousSecrets'), g.previousSecrets),
          heartbeatMaxMs: int(
            c('heartbeatMaxMs'),
            g.heartbeatMaxMs,
            5000,
            100,
            600_000,
            'a heartbeat interval in ms',
          ),
        } satisfies GossipStrategyOptions;
        break;
      }
      case 'ec2': {
        const e = cfg as Partial<Ec2StrategyOptions>;
        const tagName = str(c('tagName'), e.tagName);
        if (tagName === undefined) {
          missing(
            c('tagName'),
            'LIBCLUSTER_EC2_STRATEGY_TAG_NAME',
            'is required by the EC2 strategy (the EC2 tag key whose instances form the cluster)',
          );
        }
        const ipType = e.ipType === undefined ? 'private' : e.ipType;
        if (ipType !== 'private' && ipType !== 'public') {
          problem(
            c('ipType'),
            `${show(c('ipType'), ipType)} is not an IP type (accepted: private, public)`,
          );
        }
        const explicitPrefix = str(c('appPrefix'), e.appPrefix);
        ec2Prefix ??= explicitPrefix;
        config = {
          ...e,
          tagName: tagName ?? '',
          tagValue: str(c('tagValue'), e.tagValue),
          appPrefix: str(c('appPrefix'), e.appPrefix) ?? appName,
          ipType: ipType === 'public' ? 'public' : 'private',
          pollingIntervalMs: polling(),
          region: str(c('region'), e.region),
        } satisfies Ec2StrategyOptions;
        break;
      }
      case 'static': {
        const s = cfg as Partial<StaticStrategyOptions>;
        const hosts = s.hosts;
        if (hosts === undefined || (Array.isArray(hosts) && hosts.length === 0)) {
          missing(
            c('hosts'),
            'LIBCLUSTER_HOSTS',
            'is required by the static strategy (comma-separated host:port or name@host:port)',
          );
        } else if (!Array.isArray(hosts) || hosts.some((h) => typeof h !== 'string')) {
          problem(c('hosts'), 'must be a list of host:port strings');
        } else {
          try {
            parseHostList(hosts, port);
          } catch (error) {
            if (!(error instanceof InvalidHostListError)) throw error;
            for (const bad of error.entries) {
              problem(
                c('hosts'),
                `${JSON.stringify(bad.entry)} is not a host entry: ${bad.reason} (accepted: host, host:port, name@host:port, [ipv6]:port)`,
              );
            }
          }
        }
        config = {
          ...s,
          hosts: Array.isArray(hosts) ? hosts : [],
          pollingIntervalMs: polling(),
        } satisfies StaticStrategyOptions;
        break;
      }
      case 'dns': {
        const d = cfg as Partial<DnsStrategyOptions>;
        const query = str(c('query'), d.query);
        if (query === undefined) {
          missing(
            c('query'),
            'LIBCLUSTER_DNS_QUERY',
            'is required by the DNS strategy (the name whose A/AAAA records are the nodes)',
          );
        }
        config = {
          ...d,
          query: query ?? '',
          nodeBasename: str(c('nodeBasename'), d.nodeBasename) ?? appName,
          pollingIntervalMs: polling(),
          recordType: oneOf(
            c('recordType'),
            d.recordType,
            ['a', 'srv'] as const,
            'a',
            'a DNS record type',
          ),
          nameServers: nameServers(c('nameServers'), d.nameServers),
        } satisfies DnsStrategyOptions;
        break;
      }
      case 'kubernetes': {
        const k = cfg as Partial<KubernetesStrategyOptions> & {
          apiHost?: unknown;
          apiPort?: unknown;
        };
        const ipLookupMode = oneOf(
          c('ipLookupMode'),
          k.ipLookupMode,
          ['endpoints', 'pods'] as const,
          'endpoints',
          'an IP lookup mode',
        );
        const serviceName = str(c('serviceName'), k.serviceName);
        if (serviceName !== undefined && !DNS_LABEL.test(serviceName)) {
          problem(
            c('serviceName'),
            `${show(c('serviceName'), serviceName)} is not a service name (lower-case letters, digits and '-', at most 63)`,
          );
        }
        const selector = str(c('selector'), k.selector);
        if (selector === undefined) {
          if (!(serviceName && ipLookupMode === 'endpoints')) {
            missing(
              c('selector'),
              'LIBCLUSTER_KUBERNETES_SELECTOR',
              "is required by the Kubernetes strategy (the label selector of the app's pods, e.g. app=myapp)",
            );
          }
        } else {
          const issue = labelSelectorProblem(selector);
          if (issue)
            problem(
              c('selector'),
              `${show(c('selector'), selector)} is not a label selector: ${issue} (accepted: key=value, key!=value, key in (a,b), key notin (a,b), key, !key; comma-separated)`,
            );
        }
        const namespace = str(c('namespace'), k.namespace);
        if (namespace !== undefined && !DNS_LABEL.test(namespace)) {
          problem(
            c('namespace'),
            `${show(c('namespace'), namespace)} is not a namespace name (lower-case letters, digits and '-', at most 63)`,
          );
        }
        const apiHost = str(c('apiHost'), k.apiHost);
        if (apiHost === undefined && !env.KUBERNETES_SERVICE_HOST?.trim()) {
          problems.push({
            name: 'KUBERNETES_SERVICE_HOST',
            message:
              'is not set: the Kubernetes strategy reaches the API server at KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT, which the kubelet sets in every pod (outside a pod, set both, or pick another strategy)',
          });
        }
        const apiPortRaw = env.KUBERNETES_SERVICE_PORT?.trim();
        if (k.apiPort === undefined && apiPortRaw && !/^\d{1,5}$/.test(apiPortRaw)) {
          problems.push({
            name: 'KUBERNETES_SERVICE_PORT',
            message: `${JSON.stringify(apiPortRaw)} is not a TCP port (accepted: 1 to 65535)`,
          });
        }
        config = {
          ...k,
          selector,
          nodeBasename: str(c('nodeBasename'), k.nodeBasename) ?? appName,
          namespace,
          ipLookupMode,
          mode: oneOf(c('mode'), k.mode, ['ip', 'dns', 'hostname'] as const, 'ip', 'a naming mode'),
          serviceName,
          clusterDomain: str(c('clusterDomain'), k.clusterDomain),
          includeNotReady: bool(c('includeNotReady'), k.includeNotReady, false),
          serviceAccountPath: str(c('serviceAccountPath'), k.serviceAccountPath),
          watch: bool(c('watch'), k.watch, true),
          pollingIntervalMs: polling(),
          ...(apiHost !== undefined ? { apiHost } : {}),
          ...(k.apiPort !== undefined
            ? { apiPort: int(c('apiPort'), k.apiPort, 443, 1, 65535, 'a TCP port') }
            : {}),
        } satisfies KubernetesStrategyOptions;
        break;
      }
      case 'none':
        config = undefined;
        break;
    }
    topologies.push({ name, strategy, config });
  }

  if (port === 0) {
    for (const t of topologies) {
      const srv = t.strategy === 'dns' && (t.config as DnsStrategyOptions).recordType === 'srv';
      if (t.strategy === 'ec2' || t.strategy === 'kubernetes' || (t.strategy === 'dns' && !srv)) {
        problem(
          'port',
          `0 (any free port) cannot be used with the ${t.strategy} strategy: it dials the same fixed link port on every discovered host (accepted: 1 to 65535)`,
        );
      }
    }
  }

  // Identity.
  const hostFallback = env.HOSTNAME?.trim() || osHostname();
  const metadataIp = ec2Used ? environment.instanceMetadata?.localIpv4 : undefined;
  const host = metadataIp ?? hostFallback;
  let nodeName = str('nodeName', options.nodeName);
  if (nodeName !== undefined && !NODE_NAME.test(nodeName)) {
    problem(
      'nodeName',
      `${show('nodeName', nodeName)} is not a node name (accepted: name@host, e.g. app@10.0.1.5)`,
    );
    nodeName = undefined;
  }
  // With the EC2 strategy and no APP_NAME, the node's own prefix is the one it gives the
  // instances it discovers (LIBCLUSTER_EC2_STRATEGY_APP_PREFIX), so names match Torus's.
  const ownPrefix = options.appName === undefined && ec2Prefix !== undefined ? ec2Prefix : appName;
  nodeName ??= `${ownPrefix}@${host}`;
  const nameHost = nodeName.slice(nodeName.indexOf('@') + 1);
  // What peers dial: the explicit address; else a specific bind address; else the node name's
  // host when it is an IP; else this machine's first external IPv4 address (a bare host
  // name may not resolve on the other machines); else the host name.
  const advertiseAddress =
    address('advertiseAddress', options.advertiseAddress) ??
    (bindAddress !== '0.0.0.0' && bindAddress !== '::'
      ? bindAddress
      : isIP(nameHost)
        ? nameHost
        : (firstExternalIPv4(environment.interfaces?.() ?? networkInterfaces()) ?? nameHost));

  const tls = resolveTls();
  if (problems.length > 0) throw new ClusterConfigError(problems);

  const allNone = topologies.every((t) => t.strategy === 'none');
  const singleNodeReason = allNone
    ? 'LIBCLUSTER_STRATEGY is none'
    : cookie === undefined
      ? 'NODE_COOKIE is not set'
      : undefined;

  return Object.freeze({
    mode: singleNodeReason ? 'single-node' : 'cluster',
    singleNodeReason,
    cookie,
    previousCookies: Object.freeze(previousCookies),
    cookieWarning: singleNodeReason ? undefined : cookieWarning,
    nodeName,
    incarnation: randomBytes(8).toString('hex'),
    startedAt: Date.now(),
    appName,
    port,
    bindAddress,
    advertiseAddress,
    heartbeatIntervalMs,
    failureTimeoutMs,
    handshakeTimeoutMs,
    maxPendingHandshakes,
    maxPendingHandshakesPerSource,
    maxFrameBytes,
    maxWriteBufferBytes,
    reconnectBaseMs: CLUSTER_DEFAULTS.reconnectBaseMs,
    reconnectMaxMs: Math.min(CLUSTER_DEFAULTS.reconnectMaxMs, Math.max(failureTimeoutMs, 1000)),
    debug,
    ...(quorum === undefined ? {} : { quorum, quorumStableMs }),
    ...(tls ? { tls } : {}),
    messaging,
    topologies,
  });

  /**
   * Mutual TLS: all three files or none (a missing one is named), each readable and
   * consistent (key of the certificate, issued by the CA, valid now, for the node name's host).
   */
  function resolveTls(): ResolvedTlsOptions | undefined {
    const t = options.tls;
    if (t === undefined) return undefined;
    if (typeof t !== 'object' || t === null) {
      problem('tls', 'must be an object');
      return undefined;
    }
    const variables = {
      certFile: 'CLUSTER_TLS_CERT_FILE',
      keyFile: 'CLUSTER_TLS_KEY_FILE',
      caFile: 'CLUSTER_TLS_CA_FILE',
    } as const;
    const given = Object.fromEntries(
      (Object.keys(variables) as (keyof typeof variables)[]).map((k) => [k, str(`tls.${k}`, t[k])]),
    ) as Partial<TlsFiles>;
    const reloadIntervalMs = int(
      'tls.reloadIntervalMs',
      t.reloadIntervalMs,
      5000,
      100,
      3_600_000,
      'a reload interval in ms',
    );
    const set = Object.values(given).filter((v) => v !== undefined).length;
    if (set === 0) return undefined;
    if (set < 3) {
      const present = (Object.keys(variables) as (keyof typeof variables)[])
        .filter((k) => given[k] !== undefined)
        .map((k) => label(`tls.${k}`))
        .join(', ');
      for (const k of Object.keys(variables) as (keyof typeof variables)[]) {
        if (given[k] !== undefined) continue;
        missing(
          `tls.${k}`,
          variables[k],
          `is required with ${present}: mutual TLS needs the certificate, its key and the CA file together`,
        );
      }
      return undefined;
    }
    const files = given as TlsFiles;
    const loaded = loadTlsMaterial(files, {
      now: environment.now ?? Date.now(),
      host: nodeNameHost(nodeName!),
      ...(environment.readFile ? { readFile: environment.readFile } : {}),
    });
    for (const p of loaded.problems)
      problems.push({ name: label(`tls.${p.file}`), message: p.message });
    return loaded.material ? { ...files, reloadIntervalMs } : undefined;
  }
}

/** `CLUSTER_QUORUM`: an integer from 1 to MAX_STATIC_QUORUM, or `majority`. */
function quorumSetting(
  value: unknown,
  problem: (message: string) => void,
): QuorumSetting | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && value.trim().toLowerCase() === 'majority') return 'majority';
  if (
    typeof value === 'number' &&
    Number.isInteger(value) &&
    value >= 1 &&
    value <= MAX_STATIC_QUORUM
  )
    return value;
  problem(
    `is not a quorum (accepted: an integer from 1 to ${MAX_STATIC_QUORUM} — the members a side needs to have a leader — or majority)`,
  );
  return undefined;
}

function isMulticast(ip: string): boolean {
  const first = Number(ip.split('.')[0]);
  return first >= 224 && first <= 239;
}

function firstExternalIPv4(interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): string | undefined {
  for (const list of Object.values(interfaces)) {
    for (const info of list ?? []) {
      if (info.family === 'IPv4' && !info.internal) return info.address;
    }
  }
  return undefined;
}
