import { ClusterError } from './cluster.error.js';

/** A frame is larger than the configured maximum (received, or about to be sent). */
export class FrameTooLargeError extends ClusterError {
  constructor(
    /** Size of the frame body in bytes (version + type + payload). */
    readonly size: number,
    /** The maximum that applies (`maxFrameBytes`, or the pre-handshake limit). */
    readonly maxBytes: number,
  ) {
    super(`frame of ${size} bytes exceeds the maximum of ${maxBytes} bytes`);
  }
}
