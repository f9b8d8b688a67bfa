import type { ClusterStrategy, StrategyContext } from './strategy.interface.js';

/**
 * Discovers nothing: the node runs alone (`LIBCLUSTER_STRATEGY=none`).
 *
 * The app works as a plain Nest app; `ClusterService` shows a one-member cluster whose
 * leader is the node itself, and messages published reach local subscribers only.
 */
export class NoneStrategy implements ClusterStrategy {
  start(ctx: StrategyContext): void {
    ctx.reportOk();
  }

  stop(): void {}
}
