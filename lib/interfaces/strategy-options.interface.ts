import type { LookupAddress } from 'node:dns';

/** Options of the gossip strategy (UDP multicast, libcluster's `Cluster.Strategy.Gossip`). */
export interface GossipStrategyOptions {
  /** UDP port of the gossip group. @default 45892 */
  port?: number;
  /** Local address the UDP socket binds to. @default '0.0.0.0' */
  ifAddr?: string;
  /** Multicast group (or broadcast address with `broadcastOnly`). @default '233.252.1.32' */
  multicastAddr?: string;
  /** Local interface address used to send and join multicast. @default unset (OS choice) */
  multicastIf?: string;
  /** Multicast TTL; 1 keeps packets on the local subnet. @default 1 */
  multicastTtl?: number;
  /** Send to a broadcast address instead of joining a multicast group. @default false */
  broadcastOnly?: boolean;
  /** Key material for packet authentication (AES-256-GCM). @default the cluster cookie */
  secret?: string;
  /** Upper bound of the jittered heartbeat interval, ms. @default 5000 */
  heartbeatMaxMs?: number;
}

/** Options of the EC2 tags strategy (`ClusterEC2.Strategy.Tags`). */
export interface Ec2StrategyOptions {
  /** EC2 tag key whose instances form the cluster. Required. */
  tagName: string;
  /** Tag value to match. @default this instance's own value of `tagName` */
  tagValue?: string;
  /** Node-name prefix of discovered instances (`<appPrefix>@<ip>`). @default the app name */
  appPrefix?: string;
  /** Which instance address to dial. @default 'private' */
  ipType?: 'private' | 'public';
  /** Polling interval, ms. @default 5000 */
  pollingIntervalMs?: number;
  /** AWS region. @default `AWS_REGION`, else the instance metadata region */
  region?: string;
  /** An `EC2Client` to use instead of the default one (tests, custom credentials). */
  client?: unknown;
}

/** Options of the static hosts strategy (libcluster's `Cluster.Strategy.Epmd`). */
export interface StaticStrategyOptions {
  /** `host:port` or `name@host:port` entries; a missing port means the cluster port. */
  hosts: string[];
  /** How often the full list is handed to the core again, ms. @default 5000 */
  pollingIntervalMs?: number;
}

/** Options of the DNS poll strategy (libcluster's `Cluster.Strategy.DNSPoll`). */
export interface DnsStrategyOptions {
  /** Name whose A/AAAA records are the nodes (e.g. a headless service). Required. */
  query: string;
  /** Node-name prefix of discovered nodes (`<nodeBasename>@<ip>`). @default the app name */
  nodeBasename?: string;
  /** Polling interval, ms. @default 5000 */
  pollingIntervalMs?: number;
  /** Resolver seam; the default is `dns.promises.lookup(query, { all: true })`. */
  resolver?: (query: string) => Promise<LookupAddress[]>;
}
