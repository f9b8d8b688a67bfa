import { ClusterError } from './cluster.error.js';

/** The peer does not prove knowledge of the same cookie (`NODE_COOKIE`). */
export class CookieMismatchError extends ClusterError {
  constructor(
    /** `host:port` of the peer. */
    readonly peer: string,
  ) {
    super(`cookie mismatch with ${peer} — check NODE_COOKIE on both nodes`);
  }
}
