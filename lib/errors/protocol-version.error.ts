import { ClusterError } from './cluster.error.js';

/** The peer speaks another version of the link protocol. */
export class ProtocolVersionError extends ClusterError {
  constructor(
    /** Version byte the peer sent. */
    readonly peerVersion: number,
    /** Version this node speaks. */
    readonly localVersion: number,
    /** `host:port` of the peer, when known. */
    readonly peer?: string,
  ) {
    super(
      `protocol version mismatch${peer === undefined ? '' : ` with ${peer}`}: ` +
        `peer speaks ${peerVersion}, this node speaks ${localVersion}`,
    );
  }
}
