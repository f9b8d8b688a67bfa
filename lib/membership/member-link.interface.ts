import type { NodeIdentity } from '../interfaces/member.interface.js';

/** Why a link closed, as the transport reports it. */
export type MemberLinkCloseReason =
  'leave' | 'closed' | 'heartbeat-timeout' | 'protocol-error' | 'local';
/** Why a peer left, carried in its LEAVE frame. */
export type MemberLinkLeaveCause = 'shutdown' | 'discovery';

/** What membership needs from an authenticated link (the transport's `Link`). */
export interface MemberLink {
  readonly peer: NodeIdentity;
  readonly direction: 'inbound' | 'outbound';
  /** `host:port` of the socket's remote end. */
  readonly remoteAddress: string;
  /** True once the link closed, started leaving or was retired. */
  readonly closed: boolean;
  send(type: number, payload: Buffer): boolean;
  /** Sends LEAVE with its cause and ends the link. */
  leave(cause?: MemberLinkLeaveCause): Promise<void>;
  /** Stops sending on a redundant link; it stays open and keeps delivering what arrives. */
  retire(): void;
  /** Makes a retired link usable again; false when it closed meanwhile. */
  reinstate(): boolean;
  /** Ends a retired link after queued frames; what the peer sent before its end still arrives. */
  end(): void;
  close(reason?: string): void;
  /**
   * Holds the link to the failure timeout (true, the default) or probes it at the slow pace
   * only (false: other members watch the peer; see `WatchRing`).
   */
  watch(watched: boolean): void;
  /** Probes the peer now; the link closes unless something arrives within a probe's window. */
  suspect(): void;
  on(event: 'frame', listener: (type: number, payload: Buffer) => void): unknown;
  on(
    event: 'close',
    listener: (reason: MemberLinkCloseReason, cause?: MemberLinkLeaveCause) => void,
  ): unknown;
}
