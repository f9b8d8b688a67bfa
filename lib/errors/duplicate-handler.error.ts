import { ClusterError } from './cluster.error.js';

/** A second request handler was registered for a topic that already has one on this node. */
export class DuplicateHandlerError extends ClusterError {
  constructor(
    /** Topic that already has a handler. */
    readonly topic: string,
  ) {
    super(`a handler for "${topic}" is already registered on this node`);
  }
}
