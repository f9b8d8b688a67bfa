import { ClusterError } from './cluster.error.js';

/** What kind of problem stopped a Kubernetes discovery request. */
export type KubernetesDiscoveryFailure =
  | 'forbidden'
  | 'unauthorized'
  | 'token'
  | 'ca'
  | 'namespace'
  | 'selector'
  | 'not-found'
  | 'invalid'
  | 'watch'
  | 'network'
  | 'timeout'
  | 'api';

/**
 * A Kubernetes discovery request failed. `hint` says what the operator should fix (for a
 * 403: the Role rule to add); the strategy keeps the current members and retries.
 */
export class KubernetesDiscoveryError extends ClusterError {
  constructor(
    message: string,
    readonly failure: KubernetesDiscoveryFailure,
    /** What to fix, in one sentence. */
    readonly hint: string,
    options: {
      /** HTTP status of the API answer, if any. */
      status?: number;
      cause?: unknown;
    } = {},
  ) {
    super(hint ? `${message}; ${hint}` : message, { cause: options.cause, retryable: true });
    this.status = options.status;
  }

  /** HTTP status of the API answer, if any. */
  readonly status: number | undefined;
}
