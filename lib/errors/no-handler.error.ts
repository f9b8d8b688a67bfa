import { ClusterError } from './cluster.error.js';

/** A request reached a member that has no handler registered for its topic. */
export class NoHandlerError extends ClusterError {
  constructor(
    /** Member that received the request. */
    readonly node: string,
    /** Topic nobody handles on that member. */
    readonly topic: string,
  ) {
    super(`no handler for "${topic}" on ${node} (register one with handle() or @ClusterHandle())`, {
      retryable: true,
    });
  }
}
