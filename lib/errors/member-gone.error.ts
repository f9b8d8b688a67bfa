import { ClusterError } from './cluster.error.js';

/**
 * The member a request was waiting on left, went down, or became unreachable from this node
 * before it replied. The request is rejected at once, not at its timeout. The remote handler
 * may or may not have run.
 *
 * Which of the two a crash produces is a race: when the link from this node fails first while
 * another member still reports the crashed one reachable, it is `unreachable` for a moment
 * (`unreachable: true`); either way the reply can no longer arrive, and the error is this one.
 */
export class MemberGoneError extends ClusterError {
  constructor(
    /** Member that left, went down or became unreachable. */
    readonly node: string,
    /** Topic of the pending request. */
    readonly topic: string,
    /** True when the member is still a member, reached by others, but not from this node. */
    readonly unreachable = false,
  ) {
    super(
      unreachable
        ? `the link to ${node} went down before it replied to "${topic}" (other members still reach it)`
        : `${node} left the cluster before replying to "${topic}"`,
      { retryable: true },
    );
  }
}
