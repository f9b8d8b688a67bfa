import { ClusterError } from './cluster.error.js';

/**
 * The link handshake failed for a reason other than a cookie or version mismatch or a
 * timeout: the connection closed half-way, the peer was busy, or it sent malformed data.
 */
export class HandshakeFailedError extends ClusterError {
  constructor(
    /** `host:port` of the peer. */
    readonly peer: string,
    /** What went wrong, for logs. */
    readonly reason: string,
    options: { cause?: unknown; retryable?: boolean } = {},
  ) {
    super(`handshake with ${peer} failed: ${reason}`, { retryable: true, ...options });
  }
}
