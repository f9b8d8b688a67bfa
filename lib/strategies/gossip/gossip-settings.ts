import dgram from 'node:dgram';
import { isIPv4 } from 'node:net';
import { GossipOptionsError } from '../../errors/gossip-options.error.js';
import type { GossipStrategyOptions } from '../../interfaces/strategy-options.interface.js';
import { GOSSIP_DEFAULTS } from './gossip-defaults.js';
import type { GossipWhere } from './gossip.messages.js';

/** Creates a UDP socket; the default is `dgram.createSocket`. */
export type GossipSocketFactory = (options: dgram.SocketOptions) => dgram.Socket;

/** What the gossip strategy is constructed with: its options, the cookie and test seams. */
export interface GossipStrategyConfig extends GossipStrategyOptions {
  /** The cluster cookie (`NODE_COOKIE`): key material when `secret` is unset. */
  cookie?: string;
  /** Retired cookies (`NODE_COOKIE_PREVIOUS`): accepted keys when `secret` is unset. */
  previousCookies?: string[];
  /** Clock, epoch ms. @default Date.now */
  now?: () => number;
  /** UDP socket factory. @default dgram.createSocket */
  socketFactory?: GossipSocketFactory;
  /** First delay before reopening a failed socket, ms. @default 1000 */
  openRetryBaseMs?: number;
  /** Cap of the reopen backoff, ms. @default 30000 */
  openRetryMaxMs?: number;
}

/** Validated settings with every default applied. */
export interface GossipSettings extends GossipWhere {
  readonly heartbeatMaxMs: number;
  readonly heartbeatMinMs: number;
  readonly expireMs: number;
  readonly openRetryBaseMs: number;
  readonly openRetryMaxMs: number;
  readonly now: () => number;
  readonly socketFactory: GossipSocketFactory;
}

/** Why the strategy cannot start when neither a secret nor a cookie is given. */
export const MISSING_KEY_PROBLEM =
  'secret (LIBCLUSTER_GOSSIP_SECRET): no gossip secret and no cluster cookie (NODE_COOKIE) to key packets with';

/** The secrets gossip keys come from: the one to seal with, and the retired ones still read. */
export interface GossipKeyMaterial {
  readonly current: string;
  readonly previous: readonly string[];
}

/**
 * Applies defaults and validates; throws one `GossipOptionsError` listing every problem.
 * Returns the key material apart (undefined when neither secret nor cookie is set), so the
 * caller can derive the keys and drop it. The current key comes from `secret`, else the
 * cookie; the retired ones from `previousSecrets`, plus `previousCookies` when keyed from
 * the cookie.
 */
export function resolveGossipSettings(config: GossipStrategyConfig = {}): {
  settings: GossipSettings;
  keyMaterial: GossipKeyMaterial | undefined;
} {
  const problems: string[] = [];
  const int = (
    label: string,
    value: number | undefined,
    fallback: number,
    min: number,
    max: number,
  ): number => {
    if (value === undefined) return fallback;
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${label}: ${String(value)} is not an integer from ${min} to ${max}`);
      return fallback;
    }
    return value;
  };
  const ipv4 = (label: string, value: string | undefined): void => {
    if (value !== undefined && !isIPv4(value))
      problems.push(`${label}: ${JSON.stringify(value)} is not an IPv4 address`);
  };

  const port = int('port (LIBCLUSTER_GOSSIP_PORT)', config.port, GOSSIP_DEFAULTS.port, 1, 65535);
  const multicastTtl = int(
    'multicastTtl (LIBCLUSTER_GOSSIP_MULTICAST_TTL)',
    config.multicastTtl,
    GOSSIP_DEFAULTS.multicastTtl,
    0,
    255,
  );
  const heartbeatMaxMs = int(
    'heartbeatMaxMs',
    config.heartbeatMaxMs,
    GOSSIP_DEFAULTS.heartbeatMaxMs,
    100,
    600_000,
  );
  const openRetryBaseMs = int(
    'openRetryBaseMs',
    config.openRetryBaseMs,
    GOSSIP_DEFAULTS.openRetryBaseMs,
    1,
    3_600_000,
  );
  const openRetryMaxMs = int(
    'openRetryMaxMs',
    config.openRetryMaxMs,
    Math.max(GOSSIP_DEFAULTS.openRetryMaxMs, openRetryBaseMs),
    openRetryBaseMs,
    3_600_000,
  );
  const broadcastOnly = config.broadcastOnly ?? GOSSIP_DEFAULTS.broadcastOnly;
  const ifAddr = config.ifAddr ?? GOSSIP_DEFAULTS.ifAddr;
  const multicastAddr =
    config.multicastAddr ??
    (broadcastOnly ? GOSSIP_DEFAULTS.broadcastAddr : GOSSIP_DEFAULTS.multicastAddr);
  const multicastIf = config.multicastIf === '' ? undefined : config.multicastIf;

  ipv4('ifAddr (LIBCLUSTER_GOSSIP_IF_ADDR)', ifAddr);
  ipv4('multicastIf (LIBCLUSTER_GOSSIP_MULTICAST_IF)', multicastIf);
  if (!isIPv4(multicastAddr)) {
    problems.push(
      `multicastAddr (LIBCLUSTER_GOSSIP_MULTICAST_ADDR): ${JSON.stringify(multicastAddr)} is not an IPv4 address`,
    );
  } else if (!broadcastOnly && !isMulticast(multicastAddr)) {
    problems.push(
      `multicastAddr (LIBCLUSTER_GOSSIP_MULTICAST_ADDR): ${multicastAddr} is not a multicast group (224.0.0.0–239.255.255.255); for broadcast set broadcastOnly (LIBCLUSTER_GOSSIP_BROADCAST_ONLY=true)`,
    );
  } else if (broadcastOnly && isMulticast(multicastAddr)) {
    problems.push(
      `multicastAddr (LIBCLUSTER_GOSSIP_MULTICAST_ADDR): ${multicastAddr} is a multicast group, but broadcastOnly needs a broadcast address (255.255.255.255 or the subnet's, e.g. 192.168.1.255)`,
    );
  }
  const secret = nonEmpty(config.secret);
  const current = secret ?? nonEmpty(config.cookie);
  const previousSecrets = secretList(
    'previousSecrets (LIBCLUSTER_GOSSIP_SECRET_PREVIOUS)',
    config.previousSecrets,
    problems,
  );
  const previousCookies =
    secret === undefined
      ? secretList('previousCookies (NODE_COOKIE_PREVIOUS)', config.previousCookies, problems)
      : [];
  if (problems.length > 0) throw new GossipOptionsError(problems);
  const keyMaterial =
    current === undefined
      ? undefined
      : { current, previous: [...new Set([...previousSecrets, ...previousCookies])] };

  const settings: GossipSettings = {
    port,
    ifAddr,
    multicastAddr,
    multicastIf,
    multicastTtl,
    broadcastOnly,
    heartbeatMaxMs,
    heartbeatMinMs: Math.round(heartbeatMaxMs * GOSSIP_DEFAULTS.heartbeatFloorRatio),
    expireMs:
      heartbeatMaxMs * GOSSIP_DEFAULTS.settledSlowdownMax * GOSSIP_DEFAULTS.expireAfterHeartbeats,
    openRetryBaseMs,
    openRetryMaxMs,
    now: config.now ?? Date.now,
    socketFactory: config.socketFactory ?? ((options) => dgram.createSocket(options)),
  };
  return { settings, keyMaterial };
}

/** A list of secrets; an empty entry is a problem (never shown: it is a secret). */
function secretList(label: string, value: unknown, problems: string[]): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
    problems.push(`${label}: must be a list of strings`);
    return [];
  }
  const list = (value as string[]).map((v) => v.trim());
  const empty = list.findIndex((v) => v === '');
  if (empty >= 0) {
    problems.push(
      `${label}: entry ${empty + 1} of ${list.length} is empty (a comma-separated list of retired secrets, without empty entries)`,
    );
    return [];
  }
  return list;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function isMulticast(address: string): boolean {
  const first = Number(address.split('.')[0]);
  return first >= 224 && first <= 239;
}
