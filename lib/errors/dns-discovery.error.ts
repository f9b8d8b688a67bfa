import { ClusterError } from './cluster.error.js';

/** A DNS poll failed to resolve its query; the current members are kept. */
export class DnsDiscoveryError extends ClusterError {
  constructor(
    /** The name that was resolved. */
    readonly query: string,
    cause: unknown,
  ) {
    const code = (cause as { code?: unknown } | null)?.code;
    const detail =
      typeof code === 'string' ? code : cause instanceof Error ? cause.message : String(cause);
    super(`DNS query ${query} failed: ${detail}`, { cause, retryable: true });
  }
}
