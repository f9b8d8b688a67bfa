import { ClusterError } from './cluster.error.js';

/** What kind of problem stopped an EC2 discovery poll. */
export type Ec2DiscoveryFailure =
  | 'throttled'
  | 'unauthorized'
  | 'credentials'
  | 'region'
  | 'network'
  | 'timeout'
  | 'tag-value'
  | 'aws';

/**
 * An EC2 discovery poll failed. `hint` says what the operator should fix; the strategy
 * keeps the current members and retries with backoff.
 */
export class Ec2DiscoveryError extends ClusterError {
  constructor(
    message: string,
    readonly failure: Ec2DiscoveryFailure,
    /** What to fix, in one sentence (e.g. which IAM action to grant). */
    readonly hint: string,
    options: {
      /** The AWS error code (`UnauthorizedOperation`, `RequestLimitExceeded`, ...), if any. */
      awsCode?: string;
      cause?: unknown;
      retryable?: boolean;
    } = {},
  ) {
    super(`${message}; ${hint}`, { cause: options.cause, retryable: options.retryable ?? true });
    this.awsCode = options.awsCode;
  }

  /** The AWS error code (`UnauthorizedOperation`, `RequestLimitExceeded`, ...), if any. */
  readonly awsCode: string | undefined;
}
