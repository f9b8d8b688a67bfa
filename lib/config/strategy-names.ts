import type { BuiltinStrategyName } from '../interfaces/cluster-options.interface.js';

/** Accepted spellings of each built-in strategy, libcluster's module names included. */
export const STRATEGY_ALIASES: Readonly<Record<string, BuiltinStrategyName>> = Object.freeze({
  gossip: 'gossip',
  'cluster.strategy.gossip': 'gossip',
  ec2: 'ec2',
  'clusterec2.strategy.tags': 'ec2',
  static: 'static',
  epmd: 'static',
  'cluster.strategy.epmd': 'static',
  dns: 'dns',
  dnspoll: 'dns',
  'cluster.strategy.dnspoll': 'dns',
  'cluster.strategy.kubernetes.dns': 'dns',
  'cluster.strategy.kubernetes.dnssrv': 'dns',
  kubernetes: 'kubernetes',
  k8s: 'kubernetes',
  'cluster.strategy.kubernetes': 'kubernetes',
  none: 'none',
});

/** The spellings to show in an error message. */
export const ACCEPTED_STRATEGY_NAMES =
  'gossip, ec2, static, dns, kubernetes, none, Cluster.Strategy.Gossip, ClusterEC2.Strategy.Tags, Cluster.Strategy.Epmd, Cluster.Strategy.DNSPoll, Cluster.Strategy.Kubernetes, Cluster.Strategy.Kubernetes.DNS, Cluster.Strategy.Kubernetes.DNSSRV';

/** Maps a strategy name (any accepted spelling, `Elixir.` prefix allowed) to its canonical name. */
export function normalizeStrategyName(value: string): BuiltinStrategyName | undefined {
  const key = value
    .trim()
    .replace(/^elixir\./i, '')
    .toLowerCase();
  return STRATEGY_ALIASES[key];
}

/** True for libcluster's `Cluster.Strategy.Kubernetes.DNSSRV`: the DNS strategy in SRV mode. */
export function isSrvStrategyName(value: string): boolean {
  return (
    value
      .trim()
      .replace(/^elixir\./i, '')
      .toLowerCase() === 'cluster.strategy.kubernetes.dnssrv'
  );
}
