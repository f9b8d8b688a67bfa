import { NotAMemberError } from './not-a-member.error.js';

/**
 * A message or request was addressed to a member this node has no live link to, while other
 * members still reach it (`state: 'unreachable'` in `members()`). Nothing was sent; it is
 * retryable once the member is `reachable` again. A `NotAMemberError`, so code that handles
 * departed members handles this too.
 */
export class MemberUnreachableError extends NotAMemberError {
  constructor(node: string) {
    super(node);
    this.message = `${node} is unreachable from this node (other members still reach it; the link from here is down) — nothing was sent`;
  }
}
