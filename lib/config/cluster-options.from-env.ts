import type {
  ClusterModuleBaseOptions,
  ClusterModuleOptions,
  StrategyShorthand,
} from '../interfaces/cluster-options.interface.js';
import type {
  DnsStrategyOptions,
  Ec2StrategyOptions,
  GossipStrategyOptions,
  KubernetesStrategyOptions,
  StaticStrategyOptions,
} from '../interfaces/strategy-options.interface.js';
import { recordCodeSource, recordOptionSource } from './option-sources.js';
import { isSrvStrategyName, normalizeStrategyName } from './strategy-names.js';

/** Anything that reads environment variables: `process.env` or `@nestjs/config`'s ConfigService. */
export type EnvSource =
  Readonly<Record<string, string | undefined>> | { get(key: string): unknown };

function reader(source: EnvSource): (key: string) => string | undefined {
  if (typeof (source as { get?: unknown }).get === 'function') {
    const config = source as { get(key: string): unknown };
    return (key) => {
      const value = config.get(key);
      if (value === undefined || value === null) return undefined;
      // ConfigService holds strings from the environment, or values a `load` factory made.
      switch (typeof value) {
        case 'string':
          return value;
        case 'number':
        case 'boolean':
        case 'bigint':
          return String(value);
        default:
          return JSON.stringify(value) ?? '';
      }
    };
  }
  const env = source as Readonly<Record<string, string | undefined>>;
  return (key) => env[key];
}

/**
 * Options set in code over those read from the environment (the second argument of
 * {@link clusterOptionsFromEnv}): any option of `ClusterModuleOptions`, and, without
 * `strategy`, any part of the environment's strategy's `strategyConfig`.
 */
export type ClusterOptionsOverrides = ClusterModuleBaseOptions &
  (
    | StrategyShorthand
    | {
        strategy?: undefined;
        strategyConfig?:
          | Partial<GossipStrategyOptions>
          | Partial<Ec2StrategyOptions>
          | Partial<StaticStrategyOptions>
          | Partial<DnsStrategyOptions>
          | Partial<KubernetesStrategyOptions>;
      }
  );

const INTEGER = /^\s*-?\d+\s*$/;
/**
 * How a variable is read. `secrets`: comma-separated, trimmed, empty entries kept so that
 * validation rejects them (a stray comma in a rotation list is a mistake, not a no-op).
 */
type Kind = 'string' | 'integer' | 'boolean' | 'list' | 'secrets';
const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

/**
 * Builds `ClusterModuleOptions` from the environment variables of the README (the same names
 * libcluster and Torus use). Values that do not parse are passed on as their raw strings, so
 * that validation reports every problem at once, naming the variable.
 *
 * `overrides` are options set in code on top of the environment: each defined value replaces
 * the one read from the environment (`strategyConfig` and `messaging` key by key, unless
 * `strategy` is overridden with another strategy). Validation then names an overridden
 * option by its path (`strategyConfig.hosts`) and every other one by its variable
 * (`LIBCLUSTER_HOSTS`). Pass overrides here rather than spreading the result
 * (`{ ...clusterOptionsFromEnv(config), debug: true }`): a copy loses the record of which
 * variable each value came from.
 *
 * ```ts
 * ClusterModule.forRootAsync({
 *   imports: [ConfigModule],
 *   inject: [ConfigService],
 *   useFactory: (config: ConfigService) => clusterOptionsFromEnv(config, { debug: true }),
 * })
 * ```
 */
export function clusterOptionsFromEnv(
  source: EnvSource = process.env,
  overrides?: ClusterOptionsOverrides,
): ClusterModuleOptions {
  const read = reader(source);
  const options: ClusterModuleOptions & Record<string, unknown> = {};
  const strategyConfig: Record<string, unknown> = {};
  recordOptionSource(options, '$env', 'environment', '');

  const set = (
    target: Record<string, unknown>,
    path: string,
    key: string,
    names: string[],
    kind: Kind = 'string',
  ): void => {
    for (const name of names) {
      const raw = read(name);
      if (raw === undefined || raw.trim() === '') continue;
      target[key] = parse(raw, kind);
      recordOptionSource(options, path, name, raw);
      return;
    }
  };
  const top = (key: string, names: string[], kind?: Kind) => set(options, key, key, names, kind);
  const strat = (key: string, names: string[], kind?: Kind) =>
    set(strategyConfig, `strategyConfig.${key}`, key, names, kind);

  top('cookie', ['NODE_COOKIE']);
  top('previousCookies', ['NODE_COOKIE_PREVIOUS'], 'secrets');
  top('requireStrongCookie', ['CLUSTER_REQUIRE_STRONG_COOKIE'], 'boolean');
  top('nodeName', ['NODE_NAME', 'RELEASE_NODE']);
  top('appName', ['APP_NAME', 'RELEASE_NAME']);
  top('port', ['CLUSTER_PORT'], 'integer');
  top('bindAddress', ['CLUSTER_BIND_ADDRESS']);
  top('advertiseAddress', ['CLUSTER_ADVERTISE_ADDRESS']);
  top('heartbeatIntervalMs', ['CLUSTER_HEARTBEAT_INTERVAL_MS'], 'integer');
  top('failureTimeoutMs', ['CLUSTER_FAILURE_TIMEOUT_MS'], 'integer');
  top('debug', ['LIBCLUSTER_DEBUG'], 'boolean');
  // An integer, or `majority` (kept as the raw string, validated with the rest).
  top('quorum', ['CLUSTER_QUORUM'], 'integer');
  top('quorumStableMs', ['CLUSTER_QUORUM_STABLE_MS'], 'integer');
  const tls: Record<string, unknown> = {};
  set(tls, 'tls.certFile', 'certFile', ['CLUSTER_TLS_CERT_FILE']);
  set(tls, 'tls.keyFile', 'keyFile', ['CLUSTER_TLS_KEY_FILE']);
  set(tls, 'tls.caFile', 'caFile', ['CLUSTER_TLS_CA_FILE']);
  set(
    tls,
    'tls.reloadIntervalMs',
    'reloadIntervalMs',
    ['CLUSTER_TLS_RELOAD_INTERVAL_MS'],
    'integer',
  );
  if (Object.keys(tls).length > 0) options.tls = tls;

  const rawStrategy = read('LIBCLUSTER_STRATEGY');
  const strategy =
    rawStrategy === undefined || rawStrategy.trim() === ''
      ? 'gossip'
      : (normalizeStrategyName(rawStrategy) ?? rawStrategy);
  if (rawStrategy !== undefined && rawStrategy.trim() !== '') {
    recordOptionSource(options, 'strategy', 'LIBCLUSTER_STRATEGY', rawStrategy);
  }
  (options as Record<string, unknown>).strategy = strategy;

  switch (strategy) {
    case 'gossip':
      strat('port', ['LIBCLUSTER_GOSSIP_PORT'], 'integer');
      strat('ifAddr', ['LIBCLUSTER_GOSSIP_IF_ADDR']);
      strat('multicastAddr', ['LIBCLUSTER_GOSSIP_MULTICAST_ADDR']);
      strat('multicastIf', ['LIBCLUSTER_GOSSIP_MULTICAST_IF']);
      strat('multicastTtl', ['LIBCLUSTER_GOSSIP_MULTICAST_TTL'], 'integer');
      strat('broadcastOnly', ['LIBCLUSTER_GOSSIP_BROADCAST_ONLY'], 'boolean');
      strat('secret', ['LIBCLUSTER_GOSSIP_SECRET']);
      strat('previousSecrets', ['LIBCLUSTER_GOSSIP_SECRET_PREVIOUS'], 'secrets');
      break;
    case 'ec2':
      strat('tagName', ['LIBCLUSTER_EC2_STRATEGY_TAG_NAME']);
      strat('tagValue', ['LIBCLUSTER_EC2_STRATEGY_TAG_VALUE']);
      strat('appPrefix', ['LIBCLUSTER_EC2_STRATEGY_APP_PREFIX']);
      strat('ipType', ['LIBCLUSTER_EC2_STRATEGY_IP_TYPE']);
      strat('pollingIntervalMs', ['LIBCLUSTER_POLLING_INTERVAL'], 'integer');
      strat('region', ['AWS_REGION', 'AWS_DEFAULT_REGION']);
      break;
    case 'static':
      strat('hosts', ['LIBCLUSTER_HOSTS'], 'list');
      strat('pollingIntervalMs', ['LIBCLUSTER_POLLING_INTERVAL'], 'integer');
      break;
    case 'dns':
      strat('query', ['LIBCLUSTER_DNS_QUERY']);
      strat('nodeBasename', ['LIBCLUSTER_DNS_NODE_BASENAME']);
      strat('pollingIntervalMs', ['LIBCLUSTER_POLLING_INTERVAL'], 'integer');
      strat('recordType', ['LIBCLUSTER_DNS_RECORD_TYPE']);
      strat('nameServers', ['LIBCLUSTER_DNS_SERVERS'], 'list');
      // libcluster's Cluster.Strategy.Kubernetes.DNSSRV is the DNS strategy reading SRV records.
      if (
        strategyConfig.recordType === undefined &&
        rawStrategy !== undefined &&
        isSrvStrategyName(rawStrategy)
      ) {
        strategyConfig.recordType = 'srv';
      }
      break;
    case 'kubernetes':
      strat('selector', ['LIBCLUSTER_KUBERNETES_SELECTOR']);
      strat('nodeBasename', ['LIBCLUSTER_KUBERNETES_NODE_BASENAME']);
      strat('namespace', ['LIBCLUSTER_KUBERNETES_NAMESPACE']);
      strat('ipLookupMode', ['LIBCLUSTER_KUBERNETES_IP_LOOKUP_MODE']);
      strat('mode', ['LIBCLUSTER_KUBERNETES_MODE']);
      strat('serviceName', ['LIBCLUSTER_KUBERNETES_SERVICE_NAME']);
      strat('clusterDomain', ['LIBCLUSTER_KUBERNETES_CLUSTER_DOMAIN']);
      strat('includeNotReady', ['LIBCLUSTER_KUBERNETES_INCLUDE_NOT_READY'], 'boolean');
      strat('serviceAccountPath', ['LIBCLUSTER_KUBERNETES_SERVICE_ACCOUNT_PATH']);
      strat('pollingIntervalMs', ['LIBCLUSTER_POLLING_INTERVAL'], 'integer');
      break;
    default:
      break;
  }
  if (
    Object.keys(strategyConfig).length > 0 ||
    strategy === 'static' ||
    strategy === 'ec2' ||
    strategy === 'dns' ||
    strategy === 'kubernetes'
  ) {
    options.strategyConfig = strategyConfig;
  }
  if (overrides) applyOverrides(options, overrides);
  return options;
}

/** Options whose object values are merged key by key rather than replaced. */
const MERGED = new Set(['strategyConfig', 'messaging', 'tls']);

function applyOverrides(
  options: ClusterModuleOptions & Record<string, unknown>,
  overrides: ClusterOptionsOverrides,
): void {
  const given = overrides as Record<string, unknown>;
  const strategyChanged =
    given.strategy !== undefined &&
    !(
      typeof given.strategy === 'string' &&
      normalizeStrategyName(given.strategy) === options.strategy
    );
  if (strategyChanged) {
    delete options.strategyConfig;
    recordCodeSource(options, 'strategyConfig');
  }
  for (const [key, value] of Object.entries(given)) {
    if (value === undefined) continue;
    const current = options[key];
    if (
      MERGED.has(key) &&
      isPlainObject(value) &&
      isPlainObject(current) &&
      !(key === 'strategyConfig' && strategyChanged)
    ) {
      const merged: Record<string, unknown> = { ...current };
      for (const [sub, subValue] of Object.entries(value)) {
        if (subValue === undefined) continue;
        merged[sub] = subValue;
        recordCodeSource(options, `${key}.${sub}`);
      }
      options[key] = merged;
      continue;
    }
    options[key] = value;
    recordCodeSource(options, key);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function parse(raw: string, kind: Kind): unknown {
  switch (kind) {
    case 'integer':
      return INTEGER.test(raw) ? Number(raw.trim()) : raw;
    case 'boolean': {
      const v = raw.trim().toLowerCase();
      return TRUE.has(v) ? true : FALSE.has(v) ? false : raw;
    }
    case 'list':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    case 'secrets':
      return raw.split(',').map((s) => s.trim());
    default:
      return raw;
  }
}
