import { ClusterError } from './cluster.error.js';

/**
 * An incoming messaging frame (types 32–47) could not be decoded. The frame is dropped and
 * logged; this error never reaches application code.
 */
export class MalformedMessageError extends ClusterError {
  constructor(
    /** Frame type of the dropped frame. */
    readonly frameType: number,
    /** What was wrong with it. */
    readonly detail: string,
    options: { cause?: unknown } = {},
  ) {
    super(`malformed messaging frame (type ${frameType}): ${detail}`, options);
  }
}
