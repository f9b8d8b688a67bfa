import { ClusterError } from './cluster.error.js';

/**
 * The member a request was waiting on left or went down before it replied. The request is
 * rejected at once, not at its timeout. The remote handler may or may not have run.
 */
export class MemberGoneError extends ClusterError {
  constructor(
    /** Member that left or went down. */
    readonly node: string,
    /** Topic of the pending request. */
    readonly topic: string,
  ) {
    super(`${node} left the cluster before replying to "${topic}"`, { retryable: true });
  }
}
