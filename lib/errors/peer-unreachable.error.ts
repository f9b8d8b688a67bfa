import { ClusterError } from './cluster.error.js';

/** A TCP connection to a peer could not be opened (refused, no route, timeout). */
export class PeerUnreachableError extends ClusterError {
  constructor(
    /** Host that was dialled. */
    readonly host: string,
    /** Port that was dialled (the peer's `CLUSTER_PORT`). */
    readonly port: number,
    /** System error code (`ECONNREFUSED`, `EHOSTUNREACH`, `ETIMEDOUT`, ...). */
    readonly code: string,
    cause?: unknown,
  ) {
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    super(
      `cannot reach ${address} (${code}) — is the node running there, and is TCP port ${port} ` +
        `open between the nodes (security group / firewall)?`,
      { cause, retryable: true },
    );
  }

  /** `host:port` of the peer. */
  get peer(): string {
    return this.host.includes(':') ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
  }
}
