import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { Logger, type LoggerService } from '@nestjs/common';
import { CLUSTER_DEFAULTS } from '../config/cluster.defaults.js';
import { ClusterError } from '../errors/cluster.error.js';
import { CookieMismatchError } from '../errors/cookie-mismatch.error.js';
import { FrameTooLargeError } from '../errors/frame-too-large.error.js';
import { HandshakeFailedError } from '../errors/handshake-failed.error.js';
import { HandshakeTimeoutError } from '../errors/handshake-timeout.error.js';
import { LinkRefusedError } from '../errors/link-refused.error.js';
import { ListenError } from '../errors/listen.error.js';
import { MalformedFrameError } from '../errors/malformed-frame.error.js';
import { PeerUnreachableError } from '../errors/peer-unreachable.error.js';
import { ProtocolVersionError } from '../errors/protocol-version.error.js';
import { TransportClosedError } from '../errors/transport-closed.error.js';
import { formatEndpoint } from '../identity/endpoint.js';
import type { NodeIdentity } from '../interfaces/member.interface.js';
import { RateLimitedLogger } from '../logging/rate-limited-logger.js';
import { systemClock, type Clock } from '../runtime/clock.js';
import { systemRandom, type Random } from '../runtime/random.js';
import { cookieKeyring, type CookieKeyring } from '../security/cookie-keyring.js';
import { isTransportFrameType } from './frame-types.js';
import {
  dialerHandshake,
  listenerHandshake,
  type Admission,
  type HandshakeResult,
} from './handshake.js';
import { HeartbeatMonitor } from './heartbeat-monitor.js';
import { Link } from './link.js';
import { PendingHandshakes } from './pending-handshakes.js';
import { TcpNetwork } from './tcp-network.js';
import {
  endWire,
  ignore,
  remoteAddressOf,
  remoteHostOf,
  type Network,
  type NetworkServer,
  type Wire,
} from './wire.js';

/** Options of the link transport. */
export interface TransportOptions {
  /**
   * The local identity, read at each handshake (the endpoint is only known after `listen()`,
   * so it is a function).
   */
  readonly identity: () => NodeIdentity;
  /**
   * Shared secret of the cluster (`NODE_COOKIE`), or its keyring (with the previous cookies
   * still accepted, `NODE_COOKIE_PREVIOUS`), or the promise of one (handshakes wait for it).
   * A string is derived with the slow cookie KDF here, once per process per cookie (see
   * `deriveCookieKey`). Never sent, never logged.
   */
  readonly cookie: string | CookieKeyring | Promise<CookieKeyring>;
  /** Frame types (16–255) delivered as `'frame'` events; any other type closes the link. */
  readonly acceptedTypes: ReadonlySet<number>;
  /**
   * Membership's admission rule, applied in every handshake once the peer proved the cookie;
   * a refused peer gets a REFUSE with the reason and its dial fails. @default admit all
   */
  readonly admit?: Admission;
  /** Address the listener binds (`CLUSTER_BIND_ADDRESS`). @default '0.0.0.0' */
  readonly bindAddress?: string;
  /** Port the listener binds, 0 for any free port (`CLUSTER_PORT`). @default 45893 */
  readonly port?: number;
  /**
   * Resolution of the failure detector, ms: the dialer probes a link idle for
   * `failureTimeoutMs − 2 × heartbeatIntervalMs` (see `HeartbeatMonitor`). @default 1000
   */
  readonly heartbeatIntervalMs?: number;
  /** A link that received nothing for this long closes with `'heartbeat-timeout'`, ms. @default 5000 */
  readonly failureTimeoutMs?: number;
  /** Deadline of a TCP connect, and separately of a handshake, ms. @default 5000 */
  readonly handshakeTimeoutMs?: number;
  /** Inbound connections allowed in handshake at once; more are closed at once. @default 256 */
  readonly maxPendingHandshakes?: number;
  /**
   * Inbound connections from one source address allowed in handshake at once once half of
   * `maxPendingHandshakes` is taken; more from it are then closed on arrival, so one address
   * cannot take every slot (below half, several nodes on one host may all dial a newcomer at
   * once). @default 4
   */
  readonly maxPendingHandshakesPerSource?: number;
  /** Largest frame body accepted or sent on a link, bytes. @default 16 MiB */
  readonly maxFrameBytes?: number;
  /** Bytes queued on one link beyond which `send` returns false. @default 8 MiB */
  readonly maxWriteBufferBytes?: number;
  /** How long `Link.leave()` waits for the socket to close, ms. @default 1000 */
  readonly leaveTimeoutMs?: number;
  /** Where connections come from. @default TCP */
  readonly network?: Network;
  /** Time seam. @default systemClock */
  readonly clock?: Clock;
  /** Randomness seam (nonces). @default systemRandom */
  readonly random?: Random;
  /** @default a Nest `Logger` named `Transport` */
  readonly logger?: LoggerService;
  /**
   * @internal Benchmarks only: `false` sends frames in the clear after the handshake, to
   * measure what sealing costs. Both ends must agree. @default true
   */
  readonly sealLinks?: boolean;
}

/** Defaults of the optional transport options: the module's defaults (reasons there). */
export const TRANSPORT_DEFAULTS = Object.freeze({
  bindAddress: CLUSTER_DEFAULTS.bindAddress,
  port: CLUSTER_DEFAULTS.port,
  heartbeatIntervalMs: CLUSTER_DEFAULTS.heartbeatIntervalMs,
  failureTimeoutMs: CLUSTER_DEFAULTS.failureTimeoutMs,
  handshakeTimeoutMs: CLUSTER_DEFAULTS.handshakeTimeoutMs,
  maxPendingHandshakes: CLUSTER_DEFAULTS.maxPendingHandshakes,
  maxPendingHandshakesPerSource: CLUSTER_DEFAULTS.maxPendingHandshakesPerSource,
  maxFrameBytes: CLUSTER_DEFAULTS.maxFrameBytes,
  maxWriteBufferBytes: CLUSTER_DEFAULTS.maxWriteBufferBytes,
  leaveTimeoutMs: CLUSTER_DEFAULTS.leaveTimeoutMs,
});

type ResolvedOptions = Required<
  Omit<
    TransportOptions,
    'admit' | 'network' | 'clock' | 'random' | 'logger' | 'cookie' | 'sealLinks'
  >
>;

/** Events of the transport. */
export interface TransportEvents {
  /**
   * A connection completed the handshake and was admitted — inbound, or outbound from
   * `dial()` (emitted before `dial` resolves). Attach listeners synchronously.
   */
  link: [link: Link];
  /** An authenticated handshake ended in a refusal, by either side (see `LinkRefusedError`). */
  refused: [error: LinkRefusedError];
}

/**
 * The link layer: a listener and dialer on a `Network` (TCP in production), length-prefixed
 * frames, the mutual cookie handshake with membership's admission rule, then every frame in
 * sealed records (AES-256-GCM, a key per direction; a record that fails its check closes the
 * link), heartbeats and graceful leave. It never decides about duplicate links: every admitted connection becomes
 * a `Link`, emitted as `'link'` whichever side dialled, for its one consumer (membership).
 *
 * Pre-authentication connections cost bounded memory: only handshake frames of at most
 * 4 KiB, a handshake deadline, at most `maxPendingHandshakes` inbound handshakes at once and,
 * once half of those are taken, `maxPendingHandshakesPerSource` from any one address (more
 * are closed on arrival), and closing on the first violation. Every wire carries an
 * `'error'` listener from its first moment to its last: no network error ends the process.
 *
 * One shared checker timer probes idle links (the dialer drives each link, any frame counts)
 * and expires silent ones; after a stall of the
 * local event loop it judges no one (see `HeartbeatMonitor`).
 *
 * @example
 * const transport = new Transport({ identity: () => self, cookie, port: 0, acceptedTypes: new Set([16]) });
 * transport.on('link', (link) => link.on('frame', (type, payload) => ...));
 * const { port } = await transport.listen();
 * await transport.dial('10.0.1.7', 45893);
 */
export class Transport extends EventEmitter<TransportEvents> {
  private readonly logger: LoggerService;
  private readonly rateLimited: RateLimitedLogger;
  private readonly options: ResolvedOptions;
  private readonly keyring: CookieKeyring | Promise<CookieKeyring>;
  private readonly network: Network;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly admit: Admission | undefined;
  private readonly monitor: HeartbeatMonitor;
  private readonly acceptedTypes: ReadonlySet<number>;
  private readonly sealLinks: boolean;
  private readonly links = new Set<Link>();
  /** Inbound connections in the cookie handshake. */
  private readonly pendingInbound: PendingHandshakes<Wire>;
  private readonly pendingOutbound = new Set<Wire>();
  private server: NetworkServer | undefined;
  private listening = false;
  private isClosed = false;

  constructor(options: TransportOptions) {
    super();
    const defined = Object.fromEntries(
      Object.entries(options).filter(([, value]) => value !== undefined),
    );
    delete defined['cookie'];
    this.options = { ...TRANSPORT_DEFAULTS, ...defined } as ResolvedOptions;
    this.keyring =
      typeof options.cookie === 'string' ? cookieKeyring(options.cookie) : options.cookie;
    this.network = options.network ?? new TcpNetwork();
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
    this.admit = options.admit;
    this.sealLinks = options.sealLinks ?? true;
    this.logger = options.logger ?? new Logger(Transport.name);
    this.acceptedTypes = new Set(
      [...options.acceptedTypes].filter((type) => !isTransportFrameType(type) && type <= 255),
    );
    this.rateLimited = new RateLimitedLogger(this.logger, 60_000, 1024, () => this.clock.now());
    this.pendingInbound = new PendingHandshakes(this.options, this.rateLimited);
    this.monitor = new HeartbeatMonitor({
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      failureTimeoutMs: this.options.failureTimeoutMs,
      clock: this.clock,
      onStall: (lagMs) =>
        this.rateLimited.warn(
          'stall',
          `the event loop was blocked for about ${Math.round(lagMs)} ms; peers get a fresh failure window`,
        ),
    });
  }

  /** Inbound connections currently in handshake. */
  get pendingHandshakes(): number {
    return this.pendingInbound.size;
  }

  /** Outbound connections currently connecting or in handshake. */
  get pendingDials(): number {
    return this.pendingOutbound.size;
  }

  /** Live links, both directions. */
  get linkCount(): number {
    return this.links.size;
  }

  /**
   * Opens the listener. Resolves with the bound address (the actual port when `port` is 0).
   * @throws ListenError (e.g. `EADDRINUSE`, naming `CLUSTER_PORT`)
   */
  async listen(): Promise<{ host: string; port: number }> {
    if (this.isClosed) throw new TransportClosedError('listen');
    if (this.listening) throw new ClusterError('the link transport is already listening');
    this.listening = true;
    const { bindAddress, port } = this.options;
    try {
      // The same limits for a pre-link phase of the network's own (the TLS handshake).
      this.server = await this.network.listen(
        bindAddress,
        port,
        (wire) => this.onConnection(wire),
        this.options,
      );
    } catch (error) {
      this.listening = false;
      throw new ListenError(
        bindAddress,
        port,
        (error as NodeJS.ErrnoException).code ?? 'UNKNOWN',
        error,
      );
    }
    const address = this.server.address;
    if (this.isClosed) {
      await this.server.close();
      throw new TransportClosedError('listen');
    }
    this.logger.log(`listening for links on ${formatEndpoint(address)}`);
    return { host: address.host, port: address.port };
  }

  /**
   * Connects to a peer, runs the handshake (with the admission rule on the listener's
   * identity), emits `'link'` and resolves with the link.
   * @throws PeerUnreachableError (retryable) when the connection cannot be opened
   * @throws LinkRefusedError when either side refused the other after authenticating
   * @throws CookieMismatchError, ProtocolVersionError, HandshakeTimeoutError, HandshakeFailedError
   * @throws TransportClosedError when the transport closed meanwhile
   */
  async dial(host: string, port: number): Promise<Link> {
    if (this.isClosed) throw new TransportClosedError('dial');
    const address = formatEndpoint(host, port);
    const wire = await this.connect(host, port);
    const admission = this.admissionFor(wire);
    let result: HandshakeResult;
    try {
      result = await dialerHandshake(wire, {
        keyring: this.keyring,
        clock: this.clock,
        random: this.random,
        ...(admission.admit ? { admit: admission.admit } : {}),
        identity: this.options.identity(),
        timeoutMs: this.options.handshakeTimeoutMs,
        peerAddress: address,
      });
    } catch (error) {
      this.pendingOutbound.delete(wire);
      void endWire(wire, this.options.leaveTimeoutMs, this.clock);
      if (this.isClosed) throw new TransportClosedError('dial');
      if (error instanceof ProtocolVersionError)
        this.rateLimited.warn(`version:${host}`, error.message);
      if (error instanceof LinkRefusedError) this.onRefused(error, admission.problem());
      const explained = this.network.explainFailure?.(error, address);
      if (explained) throw explained;
      throw error instanceof ClusterError
        ? error
        : new HandshakeFailedError(address, 'unexpected error', { cause: error });
    }
    this.pendingOutbound.delete(wire);
    if (this.isClosed) {
      wire.destroy();
      throw new TransportClosedError('dial');
    }
    const link = this.createLink(wire, result, 'outbound');
    this.emitLink(link);
    return link;
  }

  /** Closes the listener, every pending handshake and every link (without LEAVE), and the timer. */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    const server = this.server;
    this.server = undefined;
    for (const wire of [...this.pendingInbound.entries(), ...this.pendingOutbound]) wire.destroy();
    this.pendingInbound.clear();
    this.pendingOutbound.clear();
    for (const link of [...this.links]) link.close('the transport is closing');
    this.monitor.stop();
    await server?.close();
  }

  private connect(host: string, port: number): Promise<Wire> {
    return new Promise((resolve, reject) => {
      // Dial from the bind address when it is a specific one, so peers see (and log) the
      // address this node is known by, and multi-homed hosts use the intended interface.
      const bind = this.options.bindAddress;
      const localAddress =
        bind && bind !== '0.0.0.0' && bind !== '::' && isIP(bind) === isIP(host) ? bind : undefined;
      const wire = this.network.connect(host, port, localAddress);
      wire.on('error', ignore);
      this.pendingOutbound.add(wire);
      let settled = false;
      const timer = this.clock.setTimeout(() => fail('ETIMEDOUT'), this.options.handshakeTimeoutMs);
      const onError = (error: NodeJS.ErrnoException): void => fail(error.code ?? 'UNKNOWN', error);
      const fail = (code: string, cause?: unknown): void => {
        if (settled) return;
        settled = true;
        this.clock.clearTimeout(timer);
        wire.off('error', onError);
        wire.destroy();
        this.pendingOutbound.delete(wire);
        reject(
          this.isClosed
            ? new TransportClosedError('dial')
            : new PeerUnreachableError(host, port, code, cause),
        );
      };
      wire.once('error', onError);
      wire.once('connect', () => {
        if (settled) return;
        if (this.isClosed) {
          fail('ECONNABORTED');
          return;
        }
        settled = true;
        this.clock.clearTimeout(timer);
        wire.off('error', onError);
        resolve(wire);
      });
      wire.once('close', () => fail('ECONNRESET'));
    });
  }

  private onConnection(wire: Wire): void {
    wire.on('error', ignore);
    if (this.isClosed) {
      wire.destroy();
      return;
    }
    const address = remoteAddressOf(wire);
    if (!this.pendingInbound.admit(wire, remoteHostOf(wire), address)) {
      wire.destroy();
      return;
    }
    wire.setNoDelay(true);
    const done = (): void => this.pendingInbound.release(wire);
    const admission = this.admissionFor(wire);
    listenerHandshake(wire, {
      keyring: this.keyring,
      clock: this.clock,
      random: this.random,
      ...(admission.admit ? { admit: admission.admit } : {}),
      identity: this.options.identity(),
      timeoutMs: this.options.handshakeTimeoutMs,
      peerAddress: address,
    }).then(
      (result) => {
        done();
        if (this.isClosed || wire.destroyed) {
          wire.destroy();
          return;
        }
        this.emitLink(this.createLink(wire, result, 'inbound'));
      },
      (error: unknown) => {
        done();
        if (error instanceof LinkRefusedError) this.onRefused(error, admission.problem());
        else this.logInboundFailure(wire, address, error);
        void endWire(wire, Math.min(this.options.leaveTimeoutMs, 1000), this.clock);
      },
    );
  }

  private emitLink(link: Link): void {
    try {
      this.emit('link', link);
    } catch (error) {
      this.logger.error(
        `a 'link' listener threw for ${link.peer.name}`,
        error instanceof Error ? error.stack : String(error),
      );
    }
  }

  /**
   * The admission rule of one connection: the network's check of the proven peer (mutual
   * TLS: its certificate must be for its name) first, then membership's rule. `problem()`
   * tells why the network refused, for the log.
   */
  private admissionFor(wire: Wire): { admit?: Admission; problem: () => string | undefined } {
    const network = this.network;
    if (!network.verifyPeer) return { admit: this.admit, problem: () => undefined };
    let problem: string | undefined;
    return {
      admit: (peer) => {
        problem = network.verifyPeer?.(wire, peer);
        if (problem !== undefined) return 'certificate';
        return this.admit?.(peer);
      },
      problem: () => problem,
    };
  }

  /**
   * A refusal after the cookie proofs. Certificate refusals are the transport's own (logged
   * here, once a minute per peer); the others are membership's rules and go to it.
   */
  private onRefused(error: LinkRefusedError, problem: string | undefined): void {
    if (error.reason !== 'certificate') {
      this.emitRefused(error);
      return;
    }
    const key = `certificate:${error.by}:${error.peer.name}`;
    this.rateLimited.warn(
      key,
      error.by === 'local'
        ? `refused a link with ${error.peer.name} at ${error.address}: ${problem ?? 'its certificate is not for its name'}`
        : `${error.peer.name} at ${error.address} refused this node's certificate: it is not for this node's name there (CLUSTER_TLS_CERT_FILE needs a SAN for the host of NODE_NAME)`,
    );
  }

  private emitRefused(error: LinkRefusedError): void {
    try {
      this.emit('refused', error);
    } catch (thrown) {
      this.logger.error(
        `a 'refused' listener threw: ${thrown instanceof Error ? thrown.message : String(thrown)}`,
      );
    }
  }

  private logInboundFailure(wire: Wire, address: string, error: unknown): void {
    const host = remoteHostOf(wire);
    if (error instanceof CookieMismatchError) {
      this.rateLimited.warn(
        `cookie:${host}`,
        `cookie mismatch from ${address} — check NODE_COOKIE on both nodes`,
      );
    } else if (error instanceof ProtocolVersionError) {
      this.rateLimited.warn(`version:${host}`, error.message);
    } else if (error instanceof HandshakeTimeoutError) {
      this.rateLimited.debug(`timeout:${host}`, error.message);
    } else if (error instanceof MalformedFrameError || error instanceof FrameTooLargeError) {
      this.rateLimited.warn(
        `garbage:${host}`,
        `dropping connection from ${address}: ${error.message}`,
      );
    } else {
      const message = error instanceof Error ? error.message : String(error);
      this.rateLimited.debug(
        `failed:${host}`,
        `inbound handshake from ${address} failed: ${message}`,
      );
    }
  }

  private createLink(wire: Wire, result: HandshakeResult, direction: 'inbound' | 'outbound'): Link {
    const link = new Link({
      socket: wire,
      clock: this.clock,
      decoder: result.decoder,
      keys: this.sealLinks ? result.keys : undefined,
      peer: result.peer,
      direction,
      maxFrameBytes: this.options.maxFrameBytes,
      maxWriteBufferBytes: this.options.maxWriteBufferBytes,
      acceptedTypes: this.acceptedTypes,
      leaveTimeoutMs: this.options.leaveTimeoutMs,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      rateLimited: this.rateLimited,
      onClosed: (closed) => {
        this.links.delete(closed);
        this.monitor.delete(closed);
      },
    });
    this.links.add(link);
    this.monitor.add(link);
    this.logger.debug?.(
      `link ${direction === 'inbound' ? 'from' : 'to'} ${result.peer.name} (${link.remoteAddress}) is up`,
    );
    return link;
  }
}
