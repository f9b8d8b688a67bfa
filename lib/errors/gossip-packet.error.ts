import { ClusterError } from './cluster.error.js';

/** A gossip heartbeat cannot be encoded (a field is empty or longer than the format allows). */
export class GossipPacketError extends ClusterError {
  constructor(
    /** The heartbeat field at fault (`name`, `incarnation`, `endpoint`, ...). */
    readonly field: string,
    message: string,
  ) {
    super(`gossip heartbeat: ${field} ${message}`);
  }
}
