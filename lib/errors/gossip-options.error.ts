import { ClusterError } from './cluster.error.js';

/**
 * Options given to the gossip strategy are invalid. Lists every problem, one
 * `option (ENV_VARIABLE): message` line each.
 */
export class GossipOptionsError extends ClusterError {
  constructor(readonly problems: readonly string[]) {
    super(
      `Invalid gossip strategy options (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  - ${p}`).join('\n'),
    );
  }
}
