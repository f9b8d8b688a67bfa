import { ClusterError } from './cluster.error.js';

/** Bytes on a link that do not form a valid frame or handshake message. */
export class MalformedFrameError extends ClusterError {
  constructor(
    /** What was wrong, for logs (never contains secrets). */
    readonly reason: string,
  ) {
    super(`malformed frame: ${reason}`);
  }
}
