import { Logger, type LoggerService } from '@nestjs/common';
import type { ResolvedClusterOptions } from '../config/resolve-options.js';
import { formatEndpoint } from '../identity/endpoint.js';
import type { NodeIdentity } from '../interfaces/member.interface.js';
import { LeadershipTracker } from '../membership/leadership.js';
import { Membership, type MembershipOptions } from '../membership/membership.js';
import { ClusterMessaging } from '../messaging/cluster-messaging.js';
import { Reconciler } from '../reconciler/reconciler.js';
import { systemClock, type Clock } from '../runtime/clock.js';
import { systemRandom, type Random } from '../runtime/random.js';
import {
  cookieKeyring,
  cookieKeyringAsync,
  type CookieKeyring,
} from '../security/cookie-keyring.js';
import type { Topology } from '../strategies/strategy.factory.js';
import type { DiscoveredEndpoint, StrategyContext } from '../strategies/strategy.interface.js';
import { MEMBERSHIP_FRAME_TYPES, MESSAGING_FRAME_TYPES } from '../transport/frame-types.js';
import { Transport } from '../transport/transport.js';
import type { Network } from '../transport/wire.js';

/**
 * The seams of a node: time, randomness, the network and loggers. Production uses the
 * defaults; the simulator passes virtual ones and runs this same composition.
 */
export interface ClusterNodeSeams {
  readonly clock?: Clock;
  readonly random?: Random;
  readonly network?: Network;
  /** Logger per component (`ClusterModule`, `ClusterMembership`, …). @default Nest `Logger`s */
  readonly logger?: (context: string) => LoggerService;
  /** @internal Benchmarks only: `false` sends link frames unsealed (see `TransportOptions`). */
  readonly sealLinks?: boolean;
  /** Peer-exchange pacing of the member table (tests compare pacings). @default its defaults */
  readonly peerExchange?: Pick<
    MembershipOptions,
    'exchangeDelayMs' | 'exchangeIntervalMs' | 'exchangeQuietCapMs'
  >;
  /** Members watched on each side on the heartbeat ring (tests use small rings). @default 8 */
  readonly watchedPerSide?: number;
}

/** Discovery state of one topology, as health shows it. */
export interface TopologyStatus {
  readonly topology: string;
  readonly strategy: string;
  readonly ok: boolean;
  readonly error?: string;
}

/**
 * One running node — the composition root of the core: the link transport, the member table,
 * the reconciler and the discovery strategies. Data flows down (strategies → reconciler →
 * transport / membership), events flow up (transport `'link'` → membership → `changes` →
 * reconciler and `ClusterService`). `ClusterService` is its public face.
 *
 * Start order: listen (so the endpoint is known) → strategies. Stop order: strategies →
 * reconciler → graceful leave on every link → transport closed.
 */
export class ClusterNode {
  readonly membership: Membership;
  /** The leader behind the quorum guard, and the fencing term (`ClusterService` exposes it). */
  readonly leadership: LeadershipTracker;
  /** Pub/sub and request/reply over the links (`ClusterService` exposes it; strategies get `peers`). */
  readonly messaging: ClusterMessaging;
  private readonly logger: LoggerService;
  private transport?: Transport;
  private reconciler?: Reconciler;
  private readonly status = new Map<string, { ok: boolean; error?: string }>();
  private identity: NodeIdentity;
  private started = false;
  private stopped = false;

  private readonly clock: Clock;
  private readonly random: Random;
  /**
   * The cookie keys (slow on purpose: one scrypt per cookie per process). On the real clock
   * they are derived off the event loop, so start-up does not wait for them — only the first
   * handshakes do; under an injected clock (the simulator, the testing module) nothing may
   * wait on real time, so they are derived here, before any simulated time runs.
   */
  private readonly keyring: CookieKeyring | Promise<CookieKeyring> | undefined;
  private readonly loggerFor: (context: string) => LoggerService;

  constructor(
    private readonly options: ResolvedClusterOptions,
    private readonly topologies: readonly Topology[],
    private readonly seams: ClusterNodeSeams = {},
  ) {
    this.clock = seams.clock ?? systemClock;
    this.random = seams.random ?? systemRandom;
    this.loggerFor = seams.logger ?? ((context) => new Logger(context));
    this.logger = this.loggerFor('ClusterModule');
    const cookie = options.mode === 'cluster' ? options.cookie : undefined;
    if (cookie === undefined) this.keyring = undefined;
    else if (seams.clock !== undefined)
      this.keyring = cookieKeyring(cookie, options.previousCookies);
    else {
      const keyring = cookieKeyringAsync(cookie, options.previousCookies);
      // Awaited by every handshake; a node that never starts must not leave it unhandled.
      keyring.catch(() => undefined);
      this.keyring = keyring;
    }
    this.identity = {
      name: options.nodeName,
      incarnation: options.incarnation,
      startedAt: options.startedAt,
      endpoint: '',
    };
    this.membership = new Membership(this.identity, {
      clock: this.clock,
      random: this.random,
      logger: this.loggerFor('ClusterMembership'),
      // A lost member's fate is settled in one heartbeat interval when no member vouches for it.
      reachabilityWaitMs: options.heartbeatIntervalMs,
      ...seams.peerExchange,
      watchedPerSide: seams.watchedPerSide,
    });
    this.leadership = new LeadershipTracker(this.membership, {
      quorum: options.quorum,
      quorumStableMs: options.quorumStableMs,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      clock: this.clock,
      logger: this.loggerFor('ClusterLeadership'),
    });
    this.messaging = new ClusterMessaging(this.membership, options.messaging);
    for (const t of topologies) this.status.set(t.name, { ok: true });
  }

  get self(): NodeIdentity {
    return this.identity;
  }

  /**
   * True when this node leads (never while superseded by a newer process of its name, nor
   * below quorum).
   */
  isLeader(): boolean {
    return this.leadership.isLeader();
  }

  /** The reconciler's map sizes (bounded-state checks), undefined before start. */
  reconcilerStats(): ReturnType<Reconciler['stats']> | undefined {
    return this.reconciler?.stats();
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

    if (o.cookieWarning) this.logger.warn(o.cookieWarning);

    const network = this.seams.network ?? (o.tls ? await this.tlsNetwork(o.tls) : undefined);
    // Closed while the TLS code was loading: nothing to open.
    if (this.stopped) return;
    const accepted = new Set<number>();
    for (let t = MEMBERSHIP_FRAME_TYPES.first; t <= MESSAGING_FRAME_TYPES.last; t++)
      accepted.add(t);
    const transport = new Transport({
      identity: () => this.identity,
      cookie: this.keyring!,
      bindAddress: o.bindAddress,
      port: o.port,
      heartbeatIntervalMs: o.heartbeatIntervalMs,
      failureTimeoutMs: o.failureTimeoutMs,
      handshakeTimeoutMs: o.handshakeTimeoutMs,
      maxPendingHandshakes: o.maxPendingHandshakes,
      maxPendingHandshakesPerSource: o.maxPendingHandshakesPerSource,
      maxFrameBytes: o.maxFrameBytes,
      maxWriteBufferBytes: o.maxWriteBufferBytes,
      acceptedTypes: accepted,
      admit: (peer) => this.membership.admit(peer),
      network,
      clock: this.clock,
      random: this.random,
      logger: this.loggerFor('ClusterTransport'),
      ...(this.seams.sealLinks === false ? { sealLinks: false } : {}),
    });
    this.transport = transport;
    // The transport's one consumer: every admitted link, and every refusal, goes to membership.
    transport.on('link', (link) => this.membership.addLink(link));
    transport.on('refused', (refusal) => this.membership.noteRefusal(refusal));
    const bound = await transport.listen();
    this.identity = { ...this.identity, endpoint: formatEndpoint(o.advertiseAddress, bound.port) };
    this.membership.setSelf(this.identity);

    this.reconciler = new Reconciler(
      {
        dial: (host, port) => transport.dial(host, port),
        membership: this.membership,
        self: () => ({ name: this.identity.name, endpoint: this.identity.endpoint }),
      },
      {
        baseDelayMs: o.reconnectBaseMs,
        maxDelayMs: o.reconnectMaxMs,
        clock: this.clock,
        random: this.random,
        logger: this.loggerFor('ClusterReconciler'),
      },
    );

    this.logger.log(
      `node ${this.identity.name} (incarnation ${this.identity.incarnation}) accepting links on ${o.bindAddress}:${bound.port}, advertised as ${this.identity.endpoint}; discovery: ${this.topologies.map((t) => `${t.name}=${t.strategyName}`).join(', ')}`,
    );

    for (const topology of this.topologies) {
      try {
        await topology.strategy.start(this.context(topology));
      } catch (error) {
        // A strategy that cannot start must not take the app down: health shows it.
        this.setStatus(topology.name, false, error);
        this.logger.error(
          `[${topology.name}] ${topology.strategyName} strategy failed to start: ${(error as Error).message}`,
        );
      }
    }
  }

  /**
   * The mutual-TLS network, loaded when `tls` is configured: an app without it does not load
   * (nor compile) the TLS code at start-up.
   */
  private async tlsNetwork(tls: NonNullable<ResolvedClusterOptions['tls']>): Promise<Network> {
    const { TlsNetwork } = await import('../transport/tls-network.js');
    return new TlsNetwork({
      files: tls,
      nodeName: this.options.nodeName,
      reloadIntervalMs: tls.reloadIntervalMs,
      handshakeTimeoutMs: this.options.handshakeTimeoutMs,
      clock: this.clock,
      logger: this.loggerFor('ClusterTls'),
    });
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
    this.leadership.close();
    await this.transport?.close();
  }

  private context(topology: Topology): StrategyContext {
    const prefix = `[${topology.name}] `;
    const base = this.loggerFor(`Cluster:${topology.strategyName}`);
    const debug = this.options.debug;
    const logger: LoggerService = {
      log: (m: unknown) => {
        base.log(prefix + String(m));
      },
      warn: (m: unknown) => {
        base.warn(prefix + String(m));
      },
      error: (m: unknown, ...rest: unknown[]) => {
        base.error(prefix + String(m), ...(rest as []));
      },
      debug: (m: unknown) => {
        if (debug) base.debug?.(prefix + String(m));
      },
      verbose: (m: unknown) => {
        if (debug) base.verbose?.(prefix + String(m));
      },
    };
    const identity = () => this.identity;
    const topic = `nestjs-cluster:discovery:${topology.name}`;
    return {
      topology: topology.name,
      get self() {
        return identity();
      },
      logger,
      debug,
      connect: (endpoints: readonly DiscoveredEndpoint[]) => {
        if (debug)
          logger.debug?.(
            `discovered ${endpoints.length}: ${endpoints.map((e) => `${e.name ?? '?'}@${e.host}:${e.port}`).join(', ')}`,
          );
        this.reconciler?.setDiscovered(topology.name, endpoints);
      },
      disconnect: (endpoints: readonly DiscoveredEndpoint[]) =>
        this.reconciler?.removeDiscovered(topology.name, endpoints),
      members: () => this.membership.members(),
      reportError: (error: unknown) => this.setStatus(topology.name, false, error),
      reportOk: () => this.setStatus(topology.name, true),
      reportNameClash: (other: NodeIdentity, where: string) =>
        this.membership.nameClash(other, where),
      isLeader: () => this.isLeader(),
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
    this.status.set(
      topology,
      ok ? { ok } : { ok, error: error instanceof Error ? error.message : String(error) },
    );
  }
}
