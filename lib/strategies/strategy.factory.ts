import type { ResolvedClusterOptions, ResolvedTopology } from '../config/resolve-options.js';
import type { InstanceMetadata } from '../config/instance-metadata.js';
import type {
  DnsStrategyOptions,
  Ec2StrategyOptions,
  GossipStrategyOptions,
  KubernetesStrategyOptions,
  StaticStrategyOptions,
} from '../interfaces/strategy-options.interface.js';
import { DnsStrategy } from './dns.strategy.js';
import { Ec2Strategy } from './ec2.strategy.js';
import { GossipStrategy } from './gossip.strategy.js';
import { KubernetesStrategy } from './kubernetes.strategy.js';
import { NoneStrategy } from './none.strategy.js';
import { StaticStrategy } from './static.strategy.js';
import type { ClusterStrategy } from './strategy.interface.js';

/** A topology with its strategy instance. */
export interface Topology {
  readonly name: string;
  readonly strategyName: string;
  readonly strategy: ClusterStrategy;
}

/**
 * Builds one strategy instance per configured topology: the built-in strategy chosen by
 * config, or the app's own class (constructed with the topology's `config`) or instance.
 */
export function createTopologies(
  options: ResolvedClusterOptions,
  instanceMetadata: InstanceMetadata | null | undefined,
): Topology[] {
  return options.topologies.map((topology) => ({
    name: topology.name,
    strategyName: topology.strategy,
    // A single node discovers nothing: its strategies are never built (no cookie to key
    // gossip with, no reason to call AWS).
    strategy:
      options.mode === 'single-node'
        ? new NoneStrategy()
        : createStrategy(topology, options, instanceMetadata),
  }));
}

function createStrategy(
  topology: ResolvedTopology,
  options: ResolvedClusterOptions,
  instanceMetadata: InstanceMetadata | null | undefined,
): ClusterStrategy {
  if (topology.custom) {
    return typeof topology.custom === 'function'
      ? new topology.custom(topology.config)
      : topology.custom;
  }
  const clusterPort = options.port;
  switch (topology.strategy) {
    case 'gossip':
      return new GossipStrategy({
        ...(topology.config as GossipStrategyOptions),
        cookie: options.cookie,
        previousCookies: [...(options.previousCookies ?? [])],
      });
    case 'ec2':
      return new Ec2Strategy({
        ...(topology.config as Ec2StrategyOptions),
        clusterPort,
        ...(instanceMetadata !== undefined ? { instanceMetadata } : {}),
      });
    case 'static':
      return new StaticStrategy({ ...(topology.config as StaticStrategyOptions), clusterPort });
    case 'dns':
      return new DnsStrategy({ ...(topology.config as DnsStrategyOptions), clusterPort });
    case 'kubernetes':
      return new KubernetesStrategy({
        ...(topology.config as KubernetesStrategyOptions),
        clusterPort,
      });
    default:
      return new NoneStrategy();
  }
}
