import { ClusterError } from './cluster.error.js';

/**
 * A link over mutual TLS was refused over a certificate: `local` — this node refused the
 * peer's certificate (expired, not issued by the cluster CA, or not for the peer's name);
 * `remote` — the peer refused this node's certificate. Retryable: replacing the files (they
 * are re-read while running) fixes it without a restart.
 */
export class PeerCertificateError extends ClusterError {
  constructor(
    /** `host:port` of the peer. */
    readonly peer: string,
    readonly side: 'local' | 'remote',
    /** Why, for the log (`its certificate has expired (CERT_HAS_EXPIRED)`). */
    readonly reason: string,
    /** OpenSSL's verification code, when there is one. */
    readonly code?: string,
  ) {
    super(
      side === 'local'
        ? `refused the TLS link to ${peer}: ${reason}`
        : `${peer} refused this node's certificate: ${reason}`,
      { retryable: true },
    );
  }
}
