import { EventEmitter } from 'node:events';
import { CLUSTER_DEFAULTS } from '../config/cluster.defaults.js';
import { createServer, connect, isIP, type AddressInfo, type Server, type Socket } from 'node:net';
import { Logger } from '@nestjs/common';
import { ClusterError } from '../errors/cluster.error.js';
import { CookieMismatchError } from '../errors/cookie-mismatch.error.js';
import { FrameTooLargeError } from '../errors/frame-too-large.error.js';
import { HandshakeFailedError } from '../errors/handshake-failed.error.js';
import { HandshakeTimeoutError } from '../errors/handshake-timeout.error.js';
import { ListenError } from '../errors/listen.error.js';
import { MalformedFrameError } from '../errors/malformed-frame.error.js';
import { PeerUnreachableError } from '../errors/peer-unreachable.error.js';
import { ProtocolVersionError } from '../errors/protocol-version.error.js';
import { TransportClosedError } from '../errors/transport-closed.error.js';
import type { NodeIdentity } from '../interfaces/member.interface.js';
import { endSocket, formatAddress, remoteAddressOf, remoteHostOf } from './address.js';
import { isTransportFrameType } from './frame-types.js';
import { dialerHandshake, listenerHandshake, type HandshakeResult } from './handshake.js';
import { HeartbeatMonitor } from './heartbeat-monitor.js';
import { Link } from './link.js';
import { RateLimitedLogger } from '../logging/rate-limited-logger.js';

/** Options of the link transport. */
export interface TransportOptions {
  /**
   * The local identity, read at each handshake (the endpoint is only known after `listen()`,
   * so it is a function).
   */
  readonly identity: () => NodeIdentity;
  /** Shared secret of the cluster (`NODE_COOKIE`). Never sent, never logged. */
  readonly cookie: string;
  /** Frame types (16–255) delivered as `'frame'` events; any other type closes the link. */
  readonly acceptedTypes: ReadonlySet<number>;
  /** Address the listener binds (`CLUSTER_BIND_ADDRESS`). @default '0.0.0.0' */
  readonly bindAddress?: string;
  /** Port the listener binds, 0 for any free port (`CLUSTER_PORT`). @default 45893 */
  readonly port?: number;
  /** A HEARTBEAT is sent on a link idle for this long, ms. @default 1000 */
  readonly heartbeatIntervalMs?: number;
  /** A link that received nothing for this long closes with `'heartbeat-timeout'`, ms. @default 5000 */
  readonly failureTimeoutMs?: number;
  /** Deadline of a TCP connect, and separately of a handshake, ms. @default 5000 */
  readonly handshakeTimeoutMs?: number;
  /** Inbound connections allowed in handshake at once; more are closed at once. @default 256 */
  readonly maxPendingHandshakes?: number;
  /** Largest frame body accepted or sent on a link, bytes. @default 16 MiB */
  readonly maxFrameBytes?: number;
  /** Bytes queued on one link beyond which `send` returns false. @default 8 MiB */
  readonly maxWriteBufferBytes?: number;
  /** How long `Link.leave()` waits for the socket to close, ms. @default 1000 */
  readonly leaveTimeoutMs?: number;
}

/** Defaults of the optional transport options: the module's defaults (reasons there). */
export const TRANSPORT_DEFAULTS = Object.freeze({
  bindAddress: CLUSTER_DEFAULTS.bindAddress,
  port: CLUSTER_DEFAULTS.port,
  heartbeatIntervalMs: CLUSTER_DEFAULTS.heartbeatIntervalMs,
  failureTimeoutMs: CLUSTER_DEFAULTS.failureTimeoutMs,
  handshakeTimeoutMs: CLUSTER_DEFAULTS.handshakeTimeoutMs,
  maxPendingHandshakes: CLUSTER_DEFAULTS.maxPendingHandshakes,
  maxFrameBytes: CLUSTER_DEFAULTS.maxFrameBytes,
  maxWriteBufferBytes: CLUSTER_DEFAULTS.maxWriteBufferBytes,
  leaveTimeoutMs: CLUSTER_DEFAULTS.leaveTimeoutMs,
});

type ResolvedOptions = Required<TransportOptions>;

/** Events of the transport. */
export interface TransportEvents {
  /** An inbound connection completed the handshake. Attach listeners synchronously. */
  link: [link: Link];
}

/**
 * The link layer: a TCP listener and dialer, length-prefixed frames, the mutual cookie
 * handshake, heartbeats and graceful leave. Bytes only: it never decides about membership,
 * duplicate links or names — every authenticated connection becomes a `Link`.
 *
 * Pre-authentication connections cost bounded memory: only handshake frames of at most
 * 4 KiB, a handshake deadline, at most `maxPendingHandshakes` inbound handshakes at once
 * (more are closed on arrival), and closing on the first violation.
 *
 * One shared checker timer sends heartbeats and expires silent links; after a stall of the
 * local event loop it judges no one (see `HeartbeatMonitor`).
 *
 * @example
 * const transport = new Transport({ identity: () => self, cookie, port: 0, acceptedTypes: new Set([16]) });
 * const { port } = await transport.listen();
 * transport.on('link', (link) => link.on('frame', (type, payload) => ...));
 * const link = await transport.dial('10.0.1.7', 45893);
 */
export class Transport extends EventEmitter<TransportEvents> {
  private readonly logger = new Logger(Transport.name);
  private readonly rateLimited: RateLimitedLogger;
  private readonly options: ResolvedOptions;
  private readonly monitor: HeartbeatMonitor;
  private readonly acceptedTypes: ReadonlySet<number>;
  private readonly links = new Set<Link>();
  private readonly pendingInbound = new Set<Socket>();
  private readonly pendingOutbound = new Set<Socket>();
  private server: Server | undefined;
  private isClosed = false;

  constructor(options: TransportOptions) {
    super();
    const defined = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
    this.options = { ...TRANSPORT_DEFAULTS, ...defined } as ResolvedOptions;
    this.acceptedTypes = new Set(
      [...options.acceptedTypes].filter((type) => !isTransportFrameType(type) && type <= 255),
    );
    this.rateLimited = new RateLimitedLogger(this.logger);
    this.monitor = new HeartbeatMonitor({
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      failureTimeoutMs: this.options.failureTimeoutMs,
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

  /** Live links, both directions. */
  get linkCount(): number {
    return this.links.size;
  }

  /**
   * Opens the listener. Resolves with the bound address (the actual port when `port` is 0).
   * @throws ListenError (e.g. `EADDRINUSE`, naming `CLUSTER_PORT`)
   */
  listen(): Promise<{ host: string; port: number }> {
    if (this.isClosed) return Promise.reject(new TransportClosedError('listen'));
    if (this.server) return Promise.reject(new ClusterError('the link transport is already listening'));
    const { bindAddress, port } = this.options;
    const server = createServer({ noDelay: true }, (socket) => this.onConnection(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => {
        this.server = undefined;
        reject(new ListenError(bindAddress, port, error.code ?? 'UNKNOWN', error));
      };
      server.once('error', onError);
      server.listen({ host: bindAddress, port }, () => {
        server.off('error', onError);
        server.on('error', (error: NodeJS.ErrnoException) =>
          this.logger.error(`link listener failed: ${error.code ?? error.message}`),
        );
        const address = server.address() as AddressInfo;
        this.logger.log(`listening for links on ${formatAddress(address.address, address.port)}`);
        resolve({ host: address.address, port: address.port });
      });
    });
  }

  /**
   * Connects to a peer and runs the handshake.
   * @throws PeerUnreachableError (retryable) when the TCP connection cannot be opened
   * @throws CookieMismatchError, ProtocolVersionError, HandshakeTimeoutError, HandshakeFailedError
   * @throws TransportClosedError when the transport closed meanwhile
   */
  async dial(host: string, port: number): Promise<Link> {
    if (this.isClosed) throw new TransportClosedError('dial');
    const address = formatAddress(host, port);
    const socket = await this.connect(host, port);
    let result: HandshakeResult;
    try {
      result = await dialerHandshake(socket, {
        cookie: this.options.cookie,
        identity: this.options.identity(),
        timeoutMs: this.options.handshakeTimeoutMs,
        peerAddress: address,
      });
    } catch (error) {
      this.pendingOutbound.delete(socket);
      void endSocket(socket, this.options.leaveTimeoutMs);
      if (this.isClosed) throw new TransportClosedError('dial');
      if (error instanceof ProtocolVersionError) this.rateLimited.warn(`version:${host}`, error.message);
      throw error instanceof ClusterError
        ? error
        : new HandshakeFailedError(address, 'unexpected error', { cause: error });
    }
    this.pendingOutbound.delete(socket);
    if (this.isClosed) {
      socket.destroy();
      throw new TransportClosedError('dial');
    }
    return this.createLink(socket, result, 'outbound');
  }

  /** Closes the listener, every pending handshake and every link (without LEAVE), and the timer. */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    const server = this.server;
    this.server = undefined;
    const serverClosed = server
      ? new Promise<void>((resolve) => server.close(() => resolve()))
      : Promise.resolve();
    for (const socket of [...this.pendingInbound, ...this.pendingOutbound]) socket.destroy();
    this.pendingInbound.clear();
    this.pendingOutbound.clear();
    for (const link of [...this.links]) link.close('the transport is closing');
    this.monitor.stop();
    await serverClosed;
  }

  private connect(host: string, port: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      // Dial from the bind address when it is a specific one, so peers see (and log) the
      // address this node is known by, and multi-homed hosts use the intended interface.
      const bind = this.options.bindAddress;
      const localAddress = bind && bind !== '0.0.0.0' && bind !== '::' && isIP(bind) === isIP(host) ? bind : undefined;
      const socket = connect({ host, port, noDelay: true, ...(localAddress ? { localAddress } : {}) });
      this.pendingOutbound.add(socket);
      const timer = setTimeout(() => fail('ETIMEDOUT'), this.options.handshakeTimeoutMs);
      timer.unref();
      const onError = (error: NodeJS.ErrnoException): void => fail(error.code ?? 'UNKNOWN', error);
      const fail = (code: string, cause?: unknown): void => {
        clearTimeout(timer);
        socket.off('error', onError);
        socket.on('error', () => undefined);
        socket.destroy();
        this.pendingOutbound.delete(socket);
        reject(this.isClosed ? new TransportClosedError('dial') : new PeerUnreachableError(host, port, code, cause));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        if (this.isClosed) {
          fail('ECONNABORTED');
          return;
        }
        resolve(socket);
      });
      socket.once('close', () => {
        if (!socket.connecting) return;
        fail('ECONNRESET');
      });
    });
  }

  private onConnection(socket: Socket): void {
    socket.on('error', () => undefined);
    if (this.isClosed) {
      socket.destroy();
      return;
    }
    const address = remoteAddressOf(socket);
    if (this.pendingInbound.size >= this.options.maxPendingHandshakes) {
      socket.destroy();
      this.rateLimited.warn(
        'pending-cap',
        `${this.options.maxPendingHandshakes} handshakes already pending: dropping the connection from ${address}`,
      );
      return;
    }
    socket.setNoDelay(true);
    this.pendingInbound.add(socket);
    listenerHandshake(socket, {
      cookie: this.options.cookie,
      identity: this.options.identity(),
      timeoutMs: this.options.handshakeTimeoutMs,
      peerAddress: address,
    }).then(
      (result) => {
        this.pendingInbound.delete(socket);
        if (this.isClosed || socket.destroyed) {
          socket.destroy();
          return;
        }
        const link = this.createLink(socket, result, 'inbound');
        try {
          this.emit('link', link);
        } catch (error) {
          this.logger.error(
            `a 'link' listener threw for ${link.peer.name}`,
            error instanceof Error ? error.stack : String(error),
          );
        }
      },
      (error: unknown) => {
        this.pendingInbound.delete(socket);
        this.logInboundFailure(socket, address, error);
        void endSocket(socket, Math.min(this.options.leaveTimeoutMs, 1000));
      },
    );
  }

  private logInboundFailure(socket: Socket, address: string, error: unknown): void {
    const host = remoteHostOf(socket);
    if (error instanceof CookieMismatchError) {
      this.rateLimited.warn(`cookie:${host}`, `cookie mismatch from ${address} — check NODE_COOKIE on both nodes`);
    } else if (error instanceof ProtocolVersionError) {
      this.rateLimited.warn(`version:${host}`, error.message);
    } else if (error instanceof HandshakeTimeoutError) {
      this.rateLimited.debug(`timeout:${host}`, error.message);
    } else if (error instanceof MalformedFrameError || error instanceof FrameTooLargeError) {
      this.rateLimited.warn(`garbage:${host}`, `dropping connection from ${address}: ${error.message}`);
    } else {
      const message = error instanceof Error ? error.message : String(error);
      this.rateLimited.debug(`failed:${host}`, `inbound handshake from ${address} failed: ${message}`);
    }
  }

  private createLink(socket: Socket, result: HandshakeResult, direction: 'inbound' | 'outbound'): Link {
    const link = new Link({
      socket,
      decoder: result.decoder,
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
    this.logger.debug(`link ${direction === 'inbound' ? 'from' : 'to'} ${result.peer.name} (${link.remoteAddress}) is up`);
    return link;
  }
}
