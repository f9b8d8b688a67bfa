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
  /**
   * Retired gossip secrets still accepted during a rotation (`LIBCLUSTER_GOSSIP_SECRET_PREVIOUS`,
   * comma-separated): packets sealed with one are read; a node only ever seals with
   * `secret`. @default none
   */
  previousSecrets?: string[];
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
  /** Resolver seam (A/AAAA mode); the default is `dns.promises.lookup(query, { all: true })`. */
  resolver?: (query: string) => Promise<LookupAddress[]>;
  /**
   * `a`: the A/AAAA records of `query` are the nodes (DNSPoll). `srv`: the SRV records of
   * `query` are (target host and port each; libcluster's `Kubernetes.DNSSRV`, Consul, Cloud
   * Map) (`LIBCLUSTER_DNS_RECORD_TYPE`). @default 'a'
   */
  recordType?: 'a' | 'srv';
  /**
   * DNS servers (`ip` or `ip:port`) asked instead of the system's, through a
   * `dns.Resolver` (`LIBCLUSTER_DNS_SERVERS`, comma-separated; e.g. Consul's `127.0.0.1:8600`).
   * @default the system resolver
   */
  nameServers?: string[];
}

/** Options of the Kubernetes strategy (libcluster's `Cluster.Strategy.Kubernetes`). */
export interface KubernetesStrategyOptions {
  /**
   * Label selector of the app's EndpointSlices (or pods), e.g. `app=myapp`
   * (`LIBCLUSTER_KUBERNETES_SELECTOR`). Required, unless `serviceName` is set and
   * `ipLookupMode` is `endpoints` (then `kubernetes.io/service-name=<serviceName>`).
   */
  selector?: string;
  /** Node-name prefix of discovered pods (`LIBCLUSTER_KUBERNETES_NODE_BASENAME`). @default the app name */
  nodeBasename?: string;
  /** Namespace to look in (`LIBCLUSTER_KUBERNETES_NAMESPACE`). @default the service account's namespace */
  namespace?: string;
  /** Read EndpointSlices (`discovery.k8s.io/v1`) or pods. @default 'endpoints' */
  ipLookupMode?: 'endpoints' | 'pods';
  /**
   * Host part of the expected node names: `ip` → `<basename>@10.2.0.7`; `dns` →
   * `<basename>@10-2-0-7.<ns>.pod.<clusterDomain>`; `hostname` →
   * `<basename>@<hostname>.<service>.<ns>.svc.<clusterDomain>` (StatefulSets). Links always
   * dial the pod IP. @default 'ip'
   */
  mode?: 'ip' | 'dns' | 'hostname';
  /** Headless service of `hostname` mode (`LIBCLUSTER_KUBERNETES_SERVICE_NAME`). */
  serviceName?: string;
  /** Cluster DNS domain of `dns`/`hostname` names (`LIBCLUSTER_KUBERNETES_CLUSTER_DOMAIN`). @default 'cluster.local' */
  clusterDomain?: string;
  /** Also link to pods that are not Ready yet (`LIBCLUSTER_KUBERNETES_INCLUDE_NOT_READY`). @default false */
  includeNotReady?: boolean;
  /**
   * Directory with the service account's `token`, `ca.crt` and `namespace`
   * (`LIBCLUSTER_KUBERNETES_SERVICE_ACCOUNT_PATH`).
   * @default '/var/run/secrets/kubernetes.io/serviceaccount'
   */
  serviceAccountPath?: string;
  /** API server host. @default `KUBERNETES_SERVICE_HOST` */
  apiHost?: string;
  /** API server port. @default `KUBERNETES_SERVICE_PORT`, else 443 */
  apiPort?: number;
  /** Follow changes with a watch (else poll the list). @default true */
  watch?: boolean;
  /** Polling interval of the list when not watching (and of the poll fallback), ms. @default 5000 */
  pollingIntervalMs?: number;
}
