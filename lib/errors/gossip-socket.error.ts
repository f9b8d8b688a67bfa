import { ClusterError } from './cluster.error.js';

/** The socket step that failed. */
export type GossipSocketOperation =
  | 'bind'
  | 'addMembership'
  | 'setMulticastInterface'
  | 'setMulticastTTL'
  | 'setBroadcast'
  | 'send'
  | 'socket';

/**
 * The gossip UDP socket could not open, or failed while running. Always retryable: the
 * strategy keeps retrying with capped backoff and the app keeps running. The message names
 * the option and the environment variable to change.
 */
export class GossipSocketError extends ClusterError {
  constructor(
    /** Which socket step failed. */
    readonly operation: GossipSocketOperation,
    /** System error code (`EADDRINUSE`, `EADDRNOTAVAIL`, `EINVAL`, `ENODEV`, ...), or `'UNKNOWN'`. */
    readonly code: string,
    /** What was attempted, e.g. `bind 0.0.0.0:45892`. */
    readonly target: string,
    /** What to change: the option and its environment variable. */
    readonly hint: string,
    cause?: unknown,
  ) {
    super(`gossip socket: ${target} failed (${code}) — ${hint}`, { cause, retryable: true });
  }
}
