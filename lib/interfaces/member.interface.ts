/**
 * Identity of one running node. `(name, incarnation)` tells a restarted process apart
 * from the process it replaces.
 */
export interface NodeIdentity {
  /** Unique, human-readable node name, `prefix@host` (e.g. `oli@10.0.1.5`). */
  readonly name: string;
  /** Random id chosen at each process start. */
  readonly incarnation: string;
  /** Epoch milliseconds when this incarnation started; the oldest member is the leader. */
  readonly startedAt: number;
  /** `host:port` where the node accepts links (empty string while not listening). */
  readonly endpoint: string;
}

/**
 * How this node sees a member: `up` with a live link (always, for the local node);
 * `unreachable` when its link from this node failed while other members still have one to it.
 */
export type MemberState = 'up' | 'unreachable';

/**
 * A node with a live link, the local node itself, or a node this one lost its link to while
 * other members still reach it (`state: 'unreachable'`).
 */
export interface Member extends NodeIdentity {
  /** `host:port` peers dial to reach this member (same as `endpoint`). */
  readonly address: string;
  /** True for the local node. */
  readonly self: boolean;
  /** Epoch milliseconds when the local node saw this member join. */
  readonly joinedAt: number;
  /** `up`, or `unreachable` from this node while other members still reach it. */
  readonly state: MemberState;
}

/** Why a member left the membership. */
export type LeaveReason = 'shutdown' | 'replaced' | 'discovery';
/** Why a member was declared down. */
export type DownReason = 'connection-closed' | 'heartbeat-timeout' | 'error';

export type ClusterEvent =
  | {
      readonly type: 'join';
      readonly member: Member;
      readonly at: number;
      readonly reason: 'linked';
    }
  | {
      readonly type: 'leave';
      readonly member: Member;
      readonly at: number;
      readonly reason: LeaveReason;
    }
  | {
      readonly type: 'down';
      readonly member: Member;
      readonly at: number;
      readonly reason: DownReason;
    }
  /**
   * The link to a member failed while other members still reach it: it stays in `members()`
   * with `state: 'unreachable'`, messages to it fail at once, and it cannot be the leader
   * while any member reports it unreachable. Followed by `reachable` or `down`.
   */
  | {
      readonly type: 'unreachable';
      readonly member: Member;
      readonly at: number;
      readonly reason: DownReason;
    }
  /** An unreachable member has a live link from this node again. */
  | {
      readonly type: 'reachable';
      readonly member: Member;
      readonly at: number;
      readonly reason: 'linked';
    };

export type ClusterEventType = ClusterEvent['type'];
