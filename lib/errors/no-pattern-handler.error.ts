import { ClusterError } from './cluster.error.js';

/**
 * `ClusterClientProxy.send()` found no member whose `@MessagePattern()` handlers include the
 * pattern (no member runs a `ClusterTransport` server with it). Nothing was sent.
 */
export class NoPatternHandlerError extends ClusterError {
  constructor(
    /** The normalised message pattern. */
    readonly pattern: string,
    /** Members at the time of the call. */
    readonly members: string[],
  ) {
    super(
      `no member handles the message pattern "${pattern}" (members: ${members.join(', ')}); ` +
        'is a ClusterTransport server with that @MessagePattern() running?',
      { retryable: true },
    );
  }
}
