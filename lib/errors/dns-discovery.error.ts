import { ClusterError } from './cluster.error.js';

/** A DNS poll failed to resolve its query; the current members are kept. */
export class DnsDiscoveryError extends ClusterError {
  constructor(
    /** The name that was resolved. */
    readonly query: string,
    cause: unknown,
  ) {
    const rawCode = (cause as { code?: unknown } | null)?.code;
    const code = typeof rawCode === 'string' ? rawCode : undefined;
    const message = cause instanceof Error ? cause.message : String(cause);
    // `getaddrinfo ENOTFOUND name` says no more than its code; other messages add detail.
    const detail =
      code === undefined ? message : message.includes(code) ? code : `${code}: ${message}`;
    super(`DNS query ${query} failed: ${detail}`, { cause, retryable: true });
  }
}
