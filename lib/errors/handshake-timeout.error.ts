import { ClusterError } from './cluster.error.js';

/** The link handshake did not complete before its deadline. */
export class HandshakeTimeoutError extends ClusterError {
  constructor(
    /** `host:port` of the peer. */
    readonly peer: string,
    /** The deadline that passed, ms. */
    readonly timeoutMs: number,
  ) {
    super(`handshake with ${peer} did not complete within ${timeoutMs} ms`, { retryable: true });
  }
}
