import { ClusterError } from './cluster.error.js';

/** `waitForMembers(n)` did not see `n` members within its timeout. */
export class WaitForMembersTimeoutError extends ClusterError {
  constructor(
    readonly wanted: number,
    readonly present: readonly string[],
    readonly timeoutMs: number,
  ) {
    super(
      `waited ${timeoutMs} ms for ${wanted} cluster members, ${present.length} present (${present.join(', ')}); check discovery (LIBCLUSTER_STRATEGY) and that NODE_COOKIE is the same on every node`,
      { retryable: true },
    );
  }
}
