import type { ClusterEvent, Member } from '../interfaces/member.interface.js';
import type { DiscoveredEndpoint } from '../strategies/strategy.interface.js';

/**
 * The one event stream membership publishes (`Membership.changes`), in the order things
 * happened. The reconciler is its consumer inside the core; `ClusterService.events$` shows the
 * join / leave / down / unreachable / reachable part to the app.
 */
export type MembershipChange =
  | { readonly type: 'join'; readonly member: Member; readonly at: number }
  /** A member left or went down: the app's `leave` / `down` events, exactly. */
  | Extract<ClusterEvent, { type: 'leave' | 'down' }>
  /** A member's link failed while others still reach it, or it is reached again. */
  | Extract<ClusterEvent, { type: 'unreachable' | 'reachable' }>
  /** A member told this node about others (peer exchange); they are not members here yet. */
  | {
      readonly type: 'learned';
      readonly from: string;
      readonly endpoints: readonly DiscoveredEndpoint[];
    };
