import type { NodeIdentity } from '../interfaces/member.interface.js';
import { ClusterError } from './cluster.error.js';

/**
 * Why an authenticated peer was refused a link:
 * - `self`: the peer is this very process (a node discovered its own endpoint);
 * - `name-taken`: the peer runs under this node's own name, as another process;
 * - `superseded`: a newer incarnation of the peer's name is a member here — the peer is an
 *   old process (frozen, or a duplicate `NODE_NAME`) and must not rejoin;
 * - `dropped`: this node's discovery no longer lists the peer and closed its link; it
 *   admits it again when discovery lists it again;
 * - `certificate`: over mutual TLS, the peer's certificate is not for the name it proved.
 */
export type AdmissionRefusal = 'self' | 'name-taken' | 'superseded' | 'dropped' | 'certificate';

/** A handshake completed the cookie proofs, then one side refused the other (see `AdmissionRefusal`). */
export class LinkRefusedError extends ClusterError {
  constructor(
    /** `host:port` of the peer. */
    readonly address: string,
    /** The authenticated identity of the peer. */
    readonly peer: NodeIdentity,
    readonly reason: AdmissionRefusal,
    /** `remote`: the peer refused this node; `local`: this node refused the peer. */
    readonly by: 'local' | 'remote',
  ) {
    super(
      by === 'remote'
        ? `${peer.name} at ${address} refused the link (${reason})`
        : `refused a link from ${peer.name} at ${address} (${reason})`,
      { retryable: reason === 'dropped' },
    );
  }
}
