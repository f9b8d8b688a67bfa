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

/** A node with a live link, or the local node itself. */
export interface Member extends NodeIdentity {
  /** `host:port` peers dial to reach this member (same as `endpoint`). */
  readonly address: string;
  /** True for the local node. */
  readonly self: boolean;
  /** Epoch milliseconds when the local node saw this member join. */
  readonly joinedAt: number;
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
    };

export type ClusterEventType = ClusterEvent['type'];
