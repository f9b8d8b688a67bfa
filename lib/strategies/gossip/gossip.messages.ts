import type { GossipSocketOperation } from '../../errors/gossip-socket.error.js';
import { formatKeyId, type GossipDropReason, type GossipKeyring } from './gossip-packet.js';

/** The settings the messages below mention. */
export interface GossipWhere {
  readonly port: number;
  readonly ifAddr: string;
  readonly multicastAddr: string;
  readonly multicastIf: string | undefined;
  readonly multicastTtl: number;
  readonly broadcastOnly: boolean;
}

const PORT = 'option `port` (LIBCLUSTER_GOSSIP_PORT)';
const IF_ADDR = 'option `ifAddr` (LIBCLUSTER_GOSSIP_IF_ADDR)';
const MULTICAST_IF = 'option `multicastIf` (LIBCLUSTER_GOSSIP_MULTICAST_IF)';
const MULTICAST_ADDR = 'option `multicastAddr` (LIBCLUSTER_GOSSIP_MULTICAST_ADDR)';
const OTHER_STRATEGY =
  'or pick a strategy that needs no multicast (LIBCLUSTER_STRATEGY=ec2, dns or static)';

/** What to change when a socket step fails with `code`. */
export function gossipSocketHint(
  operation: GossipSocketOperation,
  code: string,
  where: GossipWhere,
): string {
  switch (operation) {
    case 'bind':
      if (code === 'EADDRINUSE') {
        return `UDP port ${where.port} is held by a process that does not share it (no SO_REUSEADDR); change ${PORT} on every node, or stop that process`;
      }
      if (code === 'EACCES')
        return `permission denied for UDP port ${where.port}; choose a port above 1023 with ${PORT}`;
      if (code === 'EADDRNOTAVAIL' || code === 'EINVAL') {
        return `${where.ifAddr} is not an address of this host; fix ${IF_ADDR} (0.0.0.0 binds every interface)`;
      }
      return `check ${IF_ADDR} and ${PORT}`;
    case 'addMembership':
    case 'setMulticastInterface':
      if (where.multicastIf !== undefined) {
        return `cannot use ${where.multicastIf} for multicast (${code}): it must be the IPv4 address of an up, multicast-capable interface of this host; fix ${MULTICAST_IF}, or unset it to let the OS choose`;
      }
      if (code === 'ENODEV' || code === 'ENETUNREACH') {
        return `no interface routes multicast group ${where.multicastAddr} (no default or multicast route); set ${MULTICAST_IF} to this host's LAN address, ${OTHER_STRATEGY}`;
      }
      return `cannot join multicast group ${where.multicastAddr}; check ${MULTICAST_ADDR} (224.0.0.0–239.255.255.255) and ${MULTICAST_IF}`;
    case 'setBroadcast':
      return `the OS refused broadcast on this socket; check ${IF_ADDR}, or turn off broadcastOnly (LIBCLUSTER_GOSSIP_BROADCAST_ONLY)`;
    case 'setMulticastTTL':
      return `the OS refused TTL ${where.multicastTtl}; check option \`multicastTtl\` (LIBCLUSTER_GOSSIP_MULTICAST_TTL), 0 to 255`;
    case 'send':
      if (code === 'EACCES' && where.broadcastOnly) {
        return `sending to broadcast address ${where.multicastAddr} was refused; check ${MULTICAST_ADDR}`;
      }
      if (
        code === 'ENETUNREACH' ||
        code === 'EHOSTUNREACH' ||
        code === 'ENODEV' ||
        code === 'EADDRNOTAVAIL'
      ) {
        return `no route to ${where.multicastAddr} from this host; set ${MULTICAST_IF} to this host's LAN address or check ${MULTICAST_ADDR}, ${OTHER_STRATEGY}`;
      }
      return `check ${MULTICAST_ADDR} and ${MULTICAST_IF}`;
    case 'socket':
      return `the gossip socket failed; check ${PORT}, ${IF_ADDR} and ${MULTICAST_IF}`;
  }
}

/** Logged when the socket is open and discovery runs. */
export function gossipListening(where: GossipWhere, failedAttempts: number): string {
  const mode = where.broadcastOnly
    ? `broadcast to ${where.multicastAddr}:${where.port}`
    : `multicast group ${where.multicastAddr}:${where.port} (ttl ${where.multicastTtl}, interface ${where.multicastIf ?? 'chosen by the OS'})`;
  const recovered =
    failedAttempts > 0
      ? ` after ${failedAttempts} failed attempt${failedAttempts === 1 ? '' : 's'}`
      : '';
  return `gossip: discovering on ${mode}, bound to ${where.ifAddr}${recovered}`;
}

/** Logged when opening failed; says when the next attempt is. */
export function gossipOpenFailed(message: string, attempt: number, retryInMs: number): string {
  return `${message} [attempt ${attempt}; retrying in ${Math.round(retryInMs / 100) / 10} s]`;
}

const DROP_TEXT: Record<GossipDropReason, string> = {
  size: 'wrong size for a gossip packet',
  magic: 'not a gossip packet (bad magic)',
  version: 'unsupported gossip packet version',
  key: 'sealed with a key this node does not hold (another cluster, or a secret or cookie not in its key ring)',
  auth: 'failed authentication (another cluster with a different secret or cookie, or tampered)',
  malformed: 'authenticated but malformed',
  stale:
    'timestamp too old (a replay, or the sender clock is behind by more than the replay window)',
  future: 'timestamp in the future (the sender clock is ahead by more than the replay window)',
  replay: 'nonce already seen (a replay)',
  'self-incarnation':
    'claims our node name with another incarnation (a second process with the same NODE_NAME?)',
  'older-incarnation': 'from an older incarnation of a peer already heard at a newer one',
  endpoint: 'carries no usable link endpoint',
};

/** Debug line for dropped packets (rate-limited by the caller). */
export function gossipDropped(reason: GossipDropReason, from: string, suppressed: number): string {
  const more =
    suppressed > 0 ? ` (${suppressed} more dropped for this reason since the last line)` : '';
  return `gossip: dropped packet from ${from}: ${DROP_TEXT[reason]}${more}`;
}

/**
 * Warning for packets that fail authentication (rate-limited per source address by the
 * caller): the variables gossip keys come from, the key ids involved (public: every packet
 * carries one), and the other common cause, a second cluster on the same group and port.
 * `keyId` is set when the packet names a key this node does not hold.
 */
export function gossipAuthFailed(
  from: string,
  where: GossipWhere,
  keyId?: number,
  ring?: GossipKeyring,
): string {
  const group = where.broadcastOnly
    ? `broadcast address ${where.multicastAddr}:${where.port}`
    : `multicast group ${where.multicastAddr}:${where.port}`;
  const ids =
    keyId !== undefined && ring
      ? ` (its key id ${formatKeyId(keyId)}; this node seals with ${formatKeyId(ring.current.id)}` +
        (ring.keys.length > 1
          ? ` and also reads ${ring.keys
              .slice(1)
              .map((k) => formatKeyId(k.id))
              .join(', ')}`
          : '') +
        ')'
      : '';
  return (
    `gossip: packet from ${from} failed authentication: it was sealed with another key${ids} — ` +
    'gossip is keyed from LIBCLUSTER_GOSSIP_SECRET, or from NODE_COOKIE where that is unset, ' +
    'and the key must match on every node (set the same LIBCLUSTER_GOSSIP_SECRET, or the same ' +
    'NODE_COOKIE, everywhere; during a rotation list the old one in LIBCLUSTER_GOSSIP_SECRET_PREVIOUS ' +
    `or NODE_COOKIE_PREVIOUS). Another cluster on the same ${group} causes this too: ` +
    'give each cluster its own LIBCLUSTER_GOSSIP_MULTICAST_ADDR or LIBCLUSTER_GOSSIP_PORT'
  );
}
