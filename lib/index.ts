export { ClusterModule } from './cluster.module.js';
export { CLUSTER_MODULE_OPTIONS } from './cluster.module-definition.js';
export type { ClusterModuleExtras } from './cluster.module-definition.js';
export { ClusterService } from './cluster.service.js';
export { ClusterExplorer } from './cluster.explorer.js';
export { CLUSTER_RESOLVED_OPTIONS } from './cluster.constants.js';

export { clusterOptionsFromEnv } from './config/cluster-options.from-env.js';
export type { ClusterOptionsOverrides, EnvSource } from './config/cluster-options.from-env.js';
export { resolveClusterOptions } from './config/resolve-options.js';
export { resolveStartupOptions } from './config/startup-options.js';
export type { StartupEnvironment, StartupOptions } from './config/startup-options.js';
export type { ResolvedClusterOptions, ResolvedTopology } from './config/resolve-options.js';
export { CLUSTER_DEFAULTS } from './config/cluster.defaults.js';
export { readInstanceMetadata } from './config/instance-metadata.js';
export type { InstanceMetadata } from './config/instance-metadata.js';

export type {
  BuiltinStrategyName,
  ClusterModuleBaseOptions,
  ClusterModuleOptions,
  StrategyShorthand,
  TopologyOptions,
} from './interfaces/cluster-options.interface.js';
export type {
  ClusterEvent,
  ClusterEventType,
  DownReason,
  LeaveReason,
  Member,
  MemberState,
  NodeIdentity,
} from './interfaces/member.interface.js';
export type {
  DnsStrategyOptions,
  Ec2StrategyOptions,
  GossipStrategyOptions,
  KubernetesStrategyOptions,
  StaticStrategyOptions,
} from './interfaces/strategy-options.interface.js';
export type { TopologyStatus } from './node/cluster-node.js';
export type { Leadership } from './membership/leadership.js';
export type { QuorumSetting, QuorumState } from './membership/quorum.js';

export type {
  ClusterStrategy,
  ClusterStrategyClass,
  DiscoveredEndpoint,
  StrategyContext,
} from './strategies/strategy.interface.js';
export { GossipStrategy, GOSSIP_DEFAULTS } from './strategies/gossip.strategy.js';
export type { GossipStats } from './strategies/gossip.strategy.js';
export { Ec2Strategy } from './strategies/ec2.strategy.js';
export { StaticStrategy, parseHostList } from './strategies/static.strategy.js';
export { DnsStrategy } from './strategies/dns.strategy.js';
export { KubernetesStrategy } from './strategies/kubernetes.strategy.js';
export { NoneStrategy } from './strategies/none.strategy.js';

export type {
  ClusterMessage,
  ClusterMessagingOptions,
  PublishFailureReason,
  PublishOptions,
  PublishResult,
  RequestHandler,
  RequestOptions,
} from './messaging/cluster-message.interface.js';

export { ClusterSubscribe } from './decorators/cluster-subscribe.decorator.js';
export { ClusterHandle } from './decorators/cluster-handle.decorator.js';
export { LeaderOnly } from './decorators/leader-only.decorator.js';
export { OnClusterEvent } from './decorators/on-cluster-event.decorator.js';

export { ClusterError } from './errors/cluster.error.js';
export { ClusterConfigError } from './errors/cluster-config.error.js';
export type { ConfigProblem } from './errors/cluster-config.error.js';
export { NotAMemberError } from './errors/not-a-member.error.js';
export { MemberUnreachableError } from './errors/member-unreachable.error.js';
export { WaitForMembersTimeoutError } from './errors/wait-for-members-timeout.error.js';
export { PayloadError } from './errors/payload.error.js';
export { RequestTimeoutError } from './errors/request-timeout.error.js';
export { RemoteHandlerError } from './errors/remote-handler.error.js';
export { NoHandlerError } from './errors/no-handler.error.js';
export { MemberGoneError } from './errors/member-gone.error.js';
export { BackpressureError } from './errors/backpressure.error.js';
export { DuplicateHandlerError } from './errors/duplicate-handler.error.js';
export { MessagingClosedError } from './errors/messaging-closed.error.js';
export { CookieMismatchError } from './errors/cookie-mismatch.error.js';
export { PeerUnreachableError } from './errors/peer-unreachable.error.js';
export { ProtocolVersionError } from './errors/protocol-version.error.js';
export { ListenError } from './errors/listen.error.js';
export { Ec2DiscoveryError } from './errors/ec2-discovery.error.js';
export { DnsDiscoveryError } from './errors/dns-discovery.error.js';
export { KubernetesDiscoveryError } from './errors/kubernetes-discovery.error.js';
export { InvalidHostListError } from './errors/invalid-host-list.error.js';
export { MissingPackageError } from './errors/missing-package.error.js';
export { GossipSocketError } from './errors/gossip-socket.error.js';
export { GossipOptionsError } from './errors/gossip-options.error.js';
export { HandshakeTimeoutError } from './errors/handshake-timeout.error.js';
export { HandshakeFailedError } from './errors/handshake-failed.error.js';
export { PeerCertificateError } from './errors/peer-certificate.error.js';
export { FrameTooLargeError } from './errors/frame-too-large.error.js';
export { RecordIntegrityError } from './errors/record-integrity.error.js';
export { TransportClosedError } from './errors/transport-closed.error.js';
