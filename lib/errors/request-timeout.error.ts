import { ClusterError } from './cluster.error.js';

/** A request got no reply within its timeout. The remote handler may still have run. */
export class RequestTimeoutError extends ClusterError {
  constructor(
    /** Member the request was sent to. */
    readonly node: string,
    /** Topic of the request. */
    readonly topic: string,
    /** Timeout that elapsed, ms. */
    readonly timeoutMs: number,
  ) {
    super(`request "${topic}" to ${node} got no reply within ${timeoutMs} ms`, { retryable: true });
  }
}
