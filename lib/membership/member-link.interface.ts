import type { NodeIdentity } from '../interfaces/member.interface.js';

/** Why a link closed, as the transport reports it. */
export type MemberLinkCloseReason = 'leave' | 'closed' | 'heartbeat-timeout' | 'protocol-error' | 'local';

/** What membership needs from an authenticated link (the transport's `Link`). */
export interface MemberLink {
  readonly peer: NodeIdentity;
  readonly direction: 'inbound' | 'outbound';
  /** `host:port` of the socket's remote end. */
  readonly remoteAddress: string;
  /** True once the link closed or started leaving. */
  readonly closed: boolean;
  send(type: number, payload: Buffer): boolean;
  leave(): Promise<void>;
  close(reason?: 'local'): void;
  on(event: 'frame', listener: (type: number, payload: Buffer) => void): unknown;
  on(event: 'close', listener: (reason: MemberLinkCloseReason) => void): unknown;
}
