import { ClusterError } from './cluster.error.js';

/**
 * The remote handler of a request threw (or rejected), or its reply could not be encoded.
 * Carries the remote error's name and message; the remote stack never crosses the wire.
 */
export class RemoteHandlerError extends ClusterError {
  constructor(
    /** Member whose handler failed. */
    readonly node: string,
    /** Topic of the request. */
    readonly topic: string,
    /** `name` of the error thrown on the remote node (e.g. `TypeError`). */
    readonly remoteName: string,
    /** `message` of the error thrown on the remote node. */
    readonly remoteMessage: string,
  ) {
    super(`handler of "${topic}" on ${node} failed: ${remoteName}: ${remoteMessage}`);
  }
}
