import { ClusterError } from './cluster.error.js';

/** What went wrong when dialling a peer, from the system error code. */
export type PeerUnreachableCause =
  'dns' | 'refused' | 'timeout' | 'no-route' | 'descriptors' | 'other';

/** DNS lookup failures: the host name does not resolve (now, or at all). */
const DNS_CODES: ReadonlySet<string> = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EAI_NONAME',
]);
const TIMEOUT_CODES: ReadonlySet<string> = new Set(['ETIMEDOUT', 'ECONNTIMEDOUT']);
const NO_ROUTE_CODES: ReadonlySet<string> = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN']);
/** This process (or the system) has no file descriptor left for another socket. */
const DESCRIPTOR_CODES: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE']);

/** Classifies a dial error code: DNS, refused, timeout, no route, or something else. */
export function peerUnreachableCause(code: string): PeerUnreachableCause {
  if (DNS_CODES.has(code)) return 'dns';
  if (code === 'ECONNREFUSED') return 'refused';
  if (TIMEOUT_CODES.has(code)) return 'timeout';
  if (NO_ROUTE_CODES.has(code)) return 'no-route';
  if (DESCRIPTOR_CODES.has(code)) return 'descriptors';
  return 'other';
}

function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The message of a {@link PeerUnreachableError}: the failure and where to look for its cause. */
function describe(host: string, port: number, code: string): string {
  const address = formatAddress(host, port);
  switch (peerUnreachableCause(code)) {
    case 'dns':
      return (
        `cannot resolve host ${host} (${code}): check HOSTNAME / the advertised address ` +
        `(CLUSTER_ADVERTISE_ADDRESS) of the node announced as ${address}, or the host list — ` +
        `a name must resolve on every node; an IP address always does`
      );
    case 'refused':
      return (
        `nothing listens on ${address} (${code}): is the other node running with ` +
        `CLUSTER_PORT=${port}?`
      );
    case 'timeout':
      return (
        `no answer from ${address} (${code}): a firewall or security group drops TCP port ` +
        `${port} between the nodes — allow it inbound from the other nodes`
      );
    case 'no-route':
      return (
        `no route to ${address} (${code}): the host is down or on a network this node cannot ` +
        `reach — check the advertised address (CLUSTER_ADVERTISE_ADDRESS) and the routes / ` +
        `security groups between the nodes`
      );
    case 'descriptors':
      return (
        `this process has no file descriptor left to dial ${address} (${code}): a node holds ` +
        `one connection per member (a full mesh of N nodes in one process needs about ` +
        `N × (N − 1) descriptors) — raise the open-files limit (ulimit -n, systemd ` +
        `LimitNOFILE=, docker --ulimit nofile=)`
      );
    default:
      return (
        `cannot reach ${address} (${code}) — is the node running there, and is TCP port ` +
        `${port} open between the nodes (security group / firewall)?`
      );
  }
}

/**
 * A TCP connection to a peer could not be opened. The message names the likely cause from
 * the system error code: a host name that does not resolve (`ENOTFOUND`, `EAI_AGAIN`),
 * nothing listening on the port (`ECONNREFUSED`), packets dropped by a firewall or security
 * group (`ETIMEDOUT`), no route (`EHOSTUNREACH`).
 */
export class PeerUnreachableError extends ClusterError {
  /** The failure class of {@link code}. */
  readonly reason: PeerUnreachableCause;

  constructor(
    /** Host that was dialled. */
    readonly host: string,
    /** Port that was dialled (the peer's `CLUSTER_PORT`). */
    readonly port: number,
    /** System error code (`ECONNREFUSED`, `ENOTFOUND`, `EHOSTUNREACH`, `ETIMEDOUT`, ...). */
    readonly code: string,
    cause?: unknown,
  ) {
    super(describe(host, port, code), { cause, retryable: true });
    this.reason = peerUnreachableCause(code);
  }

  /** `host:port` of the peer. */
  get peer(): string {
    return formatAddress(this.host, this.port);
  }
}
