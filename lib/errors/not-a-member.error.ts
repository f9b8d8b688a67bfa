import { ClusterError } from './cluster.error.js';

/** A message or request was addressed to a node that is not a current member. */
export class NotAMemberError extends ClusterError {
  constructor(readonly node: string) {
    super(`${node} is not a member of this cluster`, { retryable: true });
  }
}
