/**
 * What the messaging layer needs from membership: frames to and from named members.
 * Implemented by the membership layer over the live links.
 */
export interface PeerChannel {
  /** Name of the local node. */
  readonly selfName: string;
  /** Names of the current remote members (self excluded). */
  memberNames(): string[];
  /**
   * Queues one frame of `type` (a messaging frame type, 32–47) for the member.
   * Returns false when the member's link write buffer is full (the frame was not queued).
   * Throws `NotAMemberError` when `node` is not a current remote member
   * (`MemberUnreachableError`, a subclass, when it is unreachable from this node).
   */
  sendFrame(node: string, type: number, payload: Buffer): boolean;
  /** Registers the handler of one frame type; returns the unregister function. */
  onFrame(type: number, handler: (from: string, payload: Buffer) => void): () => void;
  /**
   * Names of the members this node has no link to while others still reach them (they are in
   * no `memberNames()`; `sendFrame` throws `MemberUnreachableError` for them).
   */
  unreachableNames?(): string[];
  /**
   * Called when a member leaves or goes down (link gone), or becomes unreachable
   * (`unreachable` true). Returns the unregister function.
   */
  onMemberGone(handler: (name: string, unreachable?: boolean) => void): () => void;
}
