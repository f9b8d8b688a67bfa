import { ClusterError } from './cluster.error.js';

/**
 * A sealed record on a link failed authentication or broke the record limits: it was
 * tampered with, replayed, reordered, a record is missing, or the stream was cut inside one.
 * The link closes; the reconnect logic dials again.
 */
export class RecordIntegrityError extends ClusterError {
  constructor(
    /** What was wrong, for logs (never contains key material). */
    readonly reason: string,
    /** Sequence number of the record the receiver expected. */
    readonly sequence: number,
  ) {
    super(`record integrity: ${reason}`);
  }
}
