import { ClusterError } from './cluster.error.js';

/**
 * The link to a member has a full write buffer (`maxWriteBufferBytes`): the message was not
 * queued. Retry later, or slow down. `publish()` reports this per member in its result
 * instead of throwing.
 */
export class BackpressureError extends ClusterError {
  constructor(
    /** Member whose link is saturated. */
    readonly node: string,
    /** Topic of the refused message. */
    readonly topic: string,
  ) {
    super(`write buffer of the link to ${node} is full; "${topic}" was not sent`, {
      retryable: true,
    });
  }
}
