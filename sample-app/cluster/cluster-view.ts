import type { ClusterEvent, Member } from '../../lib/index.js';

/** One member as `GET /cluster` and the dashboard show it. Times are ISO 8601. */
export interface MemberView {
  name: string;
  /** `host:port` where the member accepts links. */
  address: string;
  incarnation: string;
  startedAt: string;
  joinedAt: string;
  self: boolean;
  leader: boolean;
  /** `up`, or `unreachable` when this node lost its link while other members still reach it. */
  state: 'up' | 'unreachable';
}

/** Body of `GET /cluster`, also sent as the `members` event of `GET /cluster/events`. */
export interface ClusterView {
  self: MemberView;
  members: MemberView[];
  /** The leader; null below quorum. */
  leader: string | null;
  /** The quorum guard (`CLUSTER_QUORUM`): members required (null: no guard), reachable, held. */
  quorum: { required: number | null; reachable: number; ok: boolean };
  /** The fencing term of the agreed leader (see `ClusterService.leadership$`). */
  term: number;
  /** Configured strategy name, or names joined with `,` when several topologies run. */
  strategy: string;
  mode: 'cluster' | 'single-node';
  topologies: { name: string; strategy: string; ok: boolean; error?: string }[];
}

/** A join / leave / down event as `GET /cluster/events` sends it. */
export interface MembershipEventView {
  type: ClusterEvent['type'];
  member: string;
  address: string;
  incarnation: string;
  reason: string;
  at: string;
}

export function toMemberView(member: Member, leader: string | null): MemberView {
  return {
    name: member.name,
    address: member.address,
    incarnation: member.incarnation,
    startedAt: new Date(member.startedAt).toISOString(),
    joinedAt: new Date(member.joinedAt).toISOString(),
    self: member.self,
    leader: member.name === leader,
    state: member.state,
  };
}

export function toEventView(event: ClusterEvent): MembershipEventView {
  return {
    type: event.type,
    member: event.member.name,
    address: event.member.address,
    incarnation: event.member.incarnation,
    reason: event.reason,
    at: new Date(event.at).toISOString(),
  };
}
