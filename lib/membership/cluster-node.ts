import { Logger, type LoggerService } from '@nestjs/common';
import type { ResolvedClusterOptions } from '../config/resolve-options.js';
import type { NodeIdentity } from '../interfaces/member.interface.js';
import type { Topology } from '../strategies/strategy.factory.js';
import type { DiscoveredEndpoint, StrategyContext } from '../strategies/strategy.interface.js';
import { MEMBERSHIP_FRAME_TYPES, MESSAGING_FRAME_TYPES } from '../transport/frame-types.js';
import { Transport } from '../transport/transport.js';
import { ClusterMessaging } from '../messaging/cluster-messaging.js';
import { Membership } from './membership.js';
import { Reconciler } from './reconciler.js';

/** Discovery state of one topology, as health shows it. */
export interface TopologyStatus {
  readonly topology: string;
  readonly strategy: string;
  readonly ok: boolean;
  readonly error?: string;
}

/**
 * One running node: the link transport, the member table, the reconciler and the discovery
 * strategies, wired together. `ClusterService` is its public face.
 *
 * Start order: listen (so the endpoint is known) → strategies. Stop order: strategies →
 * reconciler → graceful leave on every link → transport closed.
 */
export class ClusterNode {
  readonly membership: Membership;
  /** Pub/sub and request/reply over the links (`ClusterService` exposes it; strategies get `peers`). */
  readonly messaging: ClusterMessaging;
  private readonly logger: LoggerService;
  private transport?: Transport;
  private reconciler?: Reconciler;
  private readonly status = new Map<string, { ok: boolean; error?: string }>();
  private identity: NodeIdentity;
  private started = false;
  private stopped = false;

  constructor(
    private readonly options: ResolvedClusterOptions,
    private readonly topologies: readonly Topology[],
  ) {
    this.logger = new Logger('ClusterModule');
    this.identity = {
      name: options.nodeName,
      incarnation: options.incarnation,
      startedAt: options.startedAt,
      endpoint: '',
    };
    this.membership = new Membership(this.identity, new Logger('ClusterMembership'));
    this.messaging = new ClusterMessaging(this.membership, options.messaging);
    for (const t of topologies) this.status.set(t.name, { ok: true });
  }

  get self(): NodeIdentity {
    return this.identity;
  }

  /** Discovery state per topology. */
  discovery(): TopologyStatus[] {
    return this.topologies.map((t) => ({
      topology: t.name,
      strategy: t.strategyName,
      ...this.status.get(t.name)!,
    }));
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const o = this.options;
    if (o.mode === 'single-node') {
      this.logger.warn(`running single-node: ${o.singleNodeReason} (node ${o.nodeName})`);
      return;
    }

    const accepted = new Set<number>();
    for (let t = MEMBERSHIP_FRAME_TYPES.first; t <= MESSAGING_FRAME_TYPES.last; t++) accepted.add(t);
    const transport = new Transport({
      identity: () => this.identity,
      cookie: o.cookie!,
      bindAddress: o.bindAddress,
      port: o.port,
      heartbeatIntervalMs: o.heartbeatIntervalMs,
      failureTimeoutMs: o.failureTimeoutMs,
      handshakeTimeoutMs: o.handshakeTimeoutMs,
      maxPendingHandshakes: o.maxPendingHandshakes,
      maxFrameBytes: o.maxFrameBytes,
      maxWriteBufferBytes: o.maxWriteBufferBytes,
      acceptedTypes: accepted,
    });
    this.transport = transport;
    const bound = await transport.listen();
    this.identity = { ...this.identity, endpoint: endpointOf(o.advertiseAddress, bound.port) };
    this.membership.setSelf(this.identity);
    transport.on('link', (link) => this.membership.addLink(link));

    const reconciler = new Reconciler(
      {
        dial: (host, port) => transport.dial(host, port),
        accept: (link) => this.membership.addLink(link),
        isMember: (name) => this.membership.has(name),
        memberAt: (endpoint) => this.membership.byEndpoint(endpoint)?.name,
        drop: (name) => this.membership.disconnect(name, 'discovery'),
        self: () => ({ name: this.identity.name, endpoint: this.identity.endpoint }),
      },
      {
        baseDelayMs: o.reconnectBaseMs,
        maxDelayMs: o.reconnectMaxMs,
        clusterPort: o.port,
        logger: new Logger('ClusterReconciler'),
      },
    );
    this.reconciler = reconciler;
    this.membership.onPeersLearned = (endpoints) => reconciler.learn(endpoints);
    this.membership.onMemberRemoved = (member, graceful) => reconciler.memberGone(member.name, graceful);

    this.logger.log(
      `node ${this.identity.name} (incarnation ${this.identity.incarnation}) accepting links on ${o.bindAddress}:${bound.port}, advertised as ${this.identity.endpoint}; discovery: ${this.topologies.map((t) => `${t.name}=${t.strategyName}`).join(', ')}`,
    );

    for (const topology of this.topologies) {
      try {
        await topology.strategy.start(this.context(topology));
      } catch (error) {
        // A strategy that cannot start must not take the app down: health shows it.
        this.setStatus(topology.name, false, error);
        this.logger.error(`[${topology.name}] ${topology.strategyName} strategy failed to start: ${(error as Error).message}`);
      }
    }
  }

  /** Stops discovery and tells every peer this node is leaving. */
  async leave(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.allSettled(this.topologies.map(async (t) => t.strategy.stop()));
    this.reconciler?.stop();
    await this.membership.leave();
  }

  /** Closes every socket and timer and completes the observables. */
  async close(): Promise<void> {
    await this.leave();
    this.membership.close();
    await this.transport?.close();
  }

  private context(topology: Topology): StrategyContext {
    const prefix = `[${topology.name}] `;
    const base = new Logger(`Cluster:${topology.strategyName}`);
    const debug = this.options.debug;
    const logger: LoggerService = {
      log: (m: unknown) => base.log(prefix + String(m)),
      warn: (m: unknown) => base.warn(prefix + String(m)),
      error: (m: unknown, ...rest: unknown[]) => base.error(prefix + String(m), ...(rest as [])),
      debug: (m: unknown) => {
        if (debug) base.debug(prefix + String(m));
      },
      verbose: (m: unknown) => {
        if (debug) base.verbose(prefix + String(m));
      },
    };
    const node = this;
    const topic = `nestjs-cluster:discovery:${topology.name}`;
    return {
      topology: topology.name,
      get self() {
        return node.identity;
      },
      logger,
      debug,
      connect: (endpoints: readonly DiscoveredEndpoint[]) => {
        if (debug) logger.debug?.(`discovered ${endpoints.length}: ${endpoints.map((e) => `${e.name ?? '?'}@${e.host}:${e.port}`).join(', ')}`);
        this.reconciler?.setDiscovered(topology.name, endpoints);
      },
      disconnect: (endpoints: readonly DiscoveredEndpoint[]) =>
        this.reconciler?.removeDiscovered(topology.name, endpoints),
      members: () => this.membership.members(),
      reportError: (error: unknown) => this.setStatus(topology.name, false, error),
      reportOk: () => this.setStatus(topology.name, true),
      isLeader: () => this.membership.leader()?.name === this.identity.name,
      peers: {
        publish: (payload: unknown) => void this.messaging.publish(topic, payload),
        subscribe: (handler: (payload: unknown, from: string) => void) => {
          const sub = this.messaging.subscribe(topic).subscribe((m) => {
            if (m.from !== this.identity.name) handler(m.payload, m.from);
          });
          return () => sub.unsubscribe();
        },
      },
    };
  }

  private setStatus(topology: string, ok: boolean, error?: unknown): void {
    this.status.set(topology, ok ? { ok } : { ok, error: error instanceof Error ? error.message : String(error) });
  }
}

function endpointOf(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
