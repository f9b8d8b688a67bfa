import { statSync } from 'node:fs';
import { createServer as createTcpServer, type Socket } from 'node:net';
import {
  connect,
  createSecureContext,
  createServer,
  type PeerCertificate,
  type SecureContext,
  type Server,
  type TLSSocket,
} from 'node:tls';
import { Logger, type LoggerService } from '@nestjs/common';
import { CLUSTER_DEFAULTS } from '../config/cluster.defaults.js';
import { ClusterConfigError } from '../errors/cluster-config.error.js';
import { ClusterError } from '../errors/cluster.error.js';
import { HandshakeFailedError } from '../errors/handshake-failed.error.js';
import { PeerCertificateError } from '../errors/peer-certificate.error.js';
import type { NodeIdentity } from '../interfaces/member.interface.js';
import { RateLimitedLogger } from '../logging/rate-limited-logger.js';
import { systemClock, type Clock, type TimerHandle } from '../runtime/clock.js';
import { sendRefuse } from './handshake.js';
import { PendingHandshakes, type PendingHandshakeLimits } from './pending-handshakes.js';
import { listenOn } from './tcp-network.js';
import {
  certificateNameProblem,
  loadTlsMaterial,
  nodeNameHost,
  oneLine,
  TLS_FILE_VARIABLES,
  type TlsFiles,
  type TlsMaterial,
  type TlsProblem,
} from './tls-material.js';
import {
  ignore,
  remoteAddressOf,
  remoteHostOf,
  type Network,
  type NetworkServer,
  type Wire,
} from './wire.js';

/** Options of {@link TlsNetwork}. */
export interface TlsNetworkOptions {
  /** The certificate, key and CA files (`CLUSTER_TLS_CERT_FILE`, `_KEY_FILE`, `_CA_FILE`). */
  readonly files: TlsFiles;
  /** This node's name: a reloaded certificate must be for its host, as peers check. */
  readonly nodeName: string;
  /** How often the files are checked for changes, ms. @default 5000 */
  readonly reloadIntervalMs?: number;
  /** Deadline of a TLS handshake on the listener, ms. @default 10000 */
  readonly handshakeTimeoutMs?: number;
  /** Time seam (reload polling, validity checks). @default systemClock */
  readonly clock?: Clock;
  /** @default a Nest `Logger` named `ClusterTls` */
  readonly logger?: LoggerService;
}

/** Defaults of {@link TlsNetworkOptions}. */
export const TLS_NETWORK_DEFAULTS = Object.freeze({
  /** A replaced certificate is in use for new links within 5–10 s (two checks: it must settle). */
  reloadIntervalMs: 5000,
  /** A TLS handshake that takes longer is a stuck or hostile client. */
  handshakeTimeoutMs: 10_000,
  /** An expired own certificate is logged again at most hourly. */
  expiredLogIntervalMs: 3_600_000,
});

/** OpenSSL verification codes, as a peer's certificate problem a person can act on. */
const VERIFY_REASONS: Readonly<Record<string, string>> = {
  CERT_HAS_EXPIRED: 'has expired',
  CERT_NOT_YET_VALID: 'is not valid yet (check both clocks)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'is not issued by the cluster CA',
  UNABLE_TO_GET_ISSUER_CERT: 'is not issued by the cluster CA',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'is not issued by the cluster CA',
  SELF_SIGNED_CERT_IN_CHAIN: 'is not issued by the cluster CA',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'is self-signed, not issued by the cluster CA',
  CERT_SIGNATURE_FAILURE: 'has a signature that does not verify',
  CERT_UNTRUSTED: 'is not trusted for this purpose',
  CERT_REJECTED: 'is not accepted for this purpose',
  INVALID_PURPOSE: 'is not for TLS client and server use (extendedKeyUsage)',
  CERT_REVOKED: 'is revoked',
};

/** What a node without TLS next to one with it must change. */
const TLS_EVERYWHERE =
  'every node needs CLUSTER_TLS_CERT_FILE, CLUSTER_TLS_KEY_FILE and CLUSTER_TLS_CA_FILE, or none';

/** A TLS failure that means "the peer does not speak TLS": plain-TCP node, other protocol. */
const NOT_TLS = /WRONG_VERSION_NUMBER|UNKNOWN_PROTOCOL|HTTP_REQUEST|PACKET_LENGTH_TOO_LONG/;

/**
 * The `Network` of links over mutual TLS 1.3: every link is a TLS connection on which both
 * sides present a certificate issued by the cluster CA, and the cookie handshake runs inside
 * it. Once the handshake has told a side the peer's name, {@link verifyPeer} checks that the
 * peer's certificate is for that name's host (SAN DNS or IP) — on both sides.
 *
 * The listener asks for a client certificate and checks the verification result itself
 * (`requestCert`, then `authorized` on the secure connection), so a refused certificate is
 * logged with the reason and the peer gets a REFUSE frame (`certificate`) it can report,
 * instead of a bare reset. The dialer verifies the listener's certificate against the CA in
 * the TLS handshake (`rejectUnauthorized`); the DNS-style server-name check is replaced by
 * the node-name check above (peers are dialled by address, not by name).
 *
 * The three files are checked every `reloadIntervalMs` while a listener is open: once
 * changed and unchanged for one more check, they are read and validated like at start-up;
 * valid files give a new `SecureContext` for every new connection (live links keep theirs),
 * invalid ones are logged naming the file and the reason, and the previous certificate stays
 * in use. Certificate rotation needs no restart.
 */
export class TlsNetwork implements Network {
  private readonly files: TlsFiles;
  private readonly host: string;
  private readonly clock: Clock;
  private readonly logger: LoggerService;
  private readonly limited: RateLimitedLogger;
  private readonly reloadIntervalMs: number;
  private readonly handshakeTimeoutMs: number;
  private readonly servers = new Set<Server>();
  /** Connections in the TLS handshake, one table per listener. */
  private readonly inHandshake = new Set<PendingHandshakes<Socket>>();
  /** Errors of dials that failed before the TLS session was up (see explainFailure). */
  private readonly preSessionErrors = new WeakSet<object>();
  private material: TlsMaterial;
  private context: SecureContext;
  private signature: string;
  private pendingSignature: string | undefined;
  private timer: TimerHandle | undefined;
  private expiredLoggedAt = -Infinity;

  /** Reads and checks the files; throws `ClusterConfigError` naming each bad one. */
  constructor(options: TlsNetworkOptions) {
    this.files = options.files;
    this.host = nodeNameHost(options.nodeName);
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? new Logger('ClusterTls');
    this.limited = new RateLimitedLogger(this.logger, 60_000, 1024, () => this.clock.now());
    this.reloadIntervalMs = options.reloadIntervalMs ?? TLS_NETWORK_DEFAULTS.reloadIntervalMs;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? TLS_NETWORK_DEFAULTS.handshakeTimeoutMs;
    this.signature = this.fileSignature();
    const { material, problems } = this.load();
    if (!material) {
      throw new ClusterConfigError(
        problems.map((p) => ({ name: TLS_FILE_VARIABLES[p.file], message: p.message })),
      );
    }
    this.material = material;
    this.context = contextOf(material);
  }

  /** Inbound connections currently in the TLS handshake, on every listener. */
  get pendingHandshakes(): number {
    let pending = 0;
    for (const table of this.inHandshake) pending += table.size;
    return pending;
  }

  /** This node's current certificate (the one new connections present). */
  get certificate(): TlsMaterial['certificate'] {
    return this.material.certificate;
  }

  /**
   * Listens for TLS links. A TCP connection enters the TLS handshake only if `limits` admit
   * it (the transport's caps, applied to this phase with a table of its own; else the
   * module's defaults): it holds its slot until its TLS session is up, its TLS handshake
   * fails or it closes, whichever comes first. Refused connections are closed on arrival,
   * before any TLS work.
   */
  async listen(
    host: string,
    port: number,
    onConnection: (wire: Wire) => void,
    limits: PendingHandshakeLimits = CLUSTER_DEFAULTS,
  ): Promise<NetworkServer> {
    const table = new PendingHandshakes<Socket>(limits, this.limited);
    /** The TCP socket under each connection in the TLS handshake, by remote endpoint. */
    const rawByEndpoint = new Map<string, Socket>();
    const release = (socket: Wire): void => {
      const endpoint = remoteAddressOf(socket);
      const raw = rawByEndpoint.get(endpoint);
      if (!raw) return;
      rawByEndpoint.delete(endpoint);
      table.release(raw);
    };
    // Never listens itself: the TCP listener below hands it the connections it admits.
    const server = createServer({
      ...contextOptions(this.material),
      requestCert: true,
      // Checked below, so that a refusal is logged with its reason and told to the peer.
      rejectUnauthorized: false,
      handshakeTimeout: this.handshakeTimeoutMs,
      noDelay: true,
    });
    server.on('secureConnection', (socket: TLSSocket) => {
      socket.on('error', ignore);
      release(socket);
      if (!socket.authorized) {
        this.refuseUnverified(socket);
        return;
      }
      onConnection(socket);
    });
    server.on('tlsClientError', (error: Error & { code?: string }, socket: TLSSocket) => {
      socket.on('error', ignore);
      release(socket);
      this.onClientError(error, socket);
      // tls.Server reports a handshake timeout but leaves the connection open.
      socket.destroy();
    });
    server.on('error', ignore);
    const tcp = createTcpServer({ noDelay: true }, (raw: Socket) => {
      raw.on('error', ignore);
      const endpoint = remoteAddressOf(raw);
      if (!table.admit(raw, remoteHostOf(raw), endpoint)) {
        raw.destroy();
        return;
      }
      rawByEndpoint.set(endpoint, raw);
      raw.once('close', () => {
        if (rawByEndpoint.get(endpoint) === raw) rawByEndpoint.delete(endpoint);
        table.release(raw);
      });
      // Documented for tls.Server: a socket emitted as 'connection' enters its TLS handshake.
      server.emit('connection', raw);
    });
    const address = await listenOn(tcp, host, port);
    this.servers.add(server);
    this.inHandshake.add(table);
    this.schedule();
    return {
      address: { host: address.address, port: address.port },
      close: () =>
        new Promise<void>((done) => {
          this.servers.delete(server);
          this.inHandshake.delete(table);
          if (this.servers.size === 0) this.stopPolling();
          // Connections still in the TLS handshake go now; links are closed by their owner.
          for (const raw of table.entries()) raw.destroy();
          table.clear();
          rawByEndpoint.clear();
          tcp.close(() => done());
        }),
    };
  }

  connect(host: string, port: number, localAddress?: string): Wire {
    const socket = connect({
      host,
      port,
      ...(localAddress ? { localAddress } : {}),
      secureContext: this.context,
      minVersion: 'TLSv1.3',
      rejectUnauthorized: true,
      // Peers are dialled by address; the certificate is checked against the node name
      // the cookie handshake proves (verifyPeer), not against the address dialled.
      checkServerIdentity: () => undefined,
    });
    socket.setNoDelay(true);
    let secured = false;
    socket.once('secureConnect', () => (secured = true));
    socket.on('error', (error: Error) => {
      if (!secured) this.preSessionErrors.add(error);
    });
    return socket;
  }

  /**
   * Checks, once the handshake proved `peer`'s name, that the certificate the peer
   * presented on `wire` is for that name's host. Returns the problem, or undefined.
   */
  verifyPeer(wire: Wire, peer: NodeIdentity): string | undefined {
    const socket = wire as TLSSocket;
    const certificate =
      typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
    if (!certificate || Object.keys(certificate).length === 0)
      return `${peer.name} presented no certificate`;
    const host = nodeNameHost(peer.name);
    const problem = certificateNameProblem(certificate, host);
    return problem
      ? `its certificate (${describePeerCertificate(certificate)}) is not for ${peer.name}: ${problem}`
      : undefined;
  }

  /** Turns a TLS failure of a dial into an error naming the peer, the reason and the file. */
  explainFailure(error: unknown, peerAddress: string): ClusterError | undefined {
    if (error instanceof PeerCertificateError) {
      return error.side === 'remote'
        ? new PeerCertificateError(
            peerAddress,
            'remote',
            `check that its CLUSTER_TLS_CA_FILE holds the CA that issued this node's certificate (${this.files.certFile}, issuer ${oneLine(this.material.certificate.issuer)}); its log says why`,
          )
        : undefined;
    }
    const code = codeOf(error);
    if (code === undefined) return undefined;
    const reason = VERIFY_REASONS[code];
    if (reason) {
      return new PeerCertificateError(
        peerAddress,
        'local',
        `its certificate ${reason} (${code}; trusted CA: ${this.files.caFile})`,
        code,
      );
    }
    if (NOT_TLS.test(code)) {
      return new HandshakeFailedError(
        peerAddress,
        `it does not speak TLS (${code} in the TLS handshake): ${TLS_EVERYWHERE}`,
      );
    }
    if (isReset(code) && this.failedBeforeSession(error)) {
      // A TLS listener at its pending-handshake cap closes connections on arrival, too.
      return new HandshakeFailedError(
        peerAddress,
        `it does not speak TLS (${code} in the TLS handshake): ${TLS_EVERYWHERE}; or it is dropping connections from this address for now (too many handshakes pending there: its log says so)`,
      );
    }
    return undefined;
  }

  private failedBeforeSession(error: unknown): boolean {
    let current: unknown = error;
    for (let depth = 0; depth < 5 && current && typeof current === 'object'; depth++) {
      if (this.preSessionErrors.has(current)) return true;
      current = (current as { cause?: unknown }).cause;
    }
    return false;
  }

  // ---- listener side -------------------------------------------------------------------

  private refuseUnverified(socket: TLSSocket): void {
    const address = `${socket.remoteAddress ?? 'unknown'}:${socket.remotePort ?? 0}`;
    const code = String(socket.authorizationError ?? 'NO_CERTIFICATE');
    const certificate = socket.getPeerCertificate();
    const hasCertificate = certificate && Object.keys(certificate).length > 0;
    const reason = hasCertificate
      ? `its certificate ${VERIFY_REASONS[code] ?? 'was not accepted'} (${code}; ${describePeerCertificate(certificate)}; trusted CA: ${this.files.caFile})`
      : 'it presented no certificate';
    this.limited.warn(`refused:${socket.remoteAddress ?? ''}`, () => {
      return `refused a TLS link from ${address}: ${reason}`;
    });
    // The TLS session is up, so the peer can be told why in the link protocol.
    sendRefuse(socket, 'certificate');
    socket.end();
    const timer = this.clock.setTimeout(() => socket.destroy(), 1000);
    socket.once('close', () => this.clock.clearTimeout(timer));
  }

  private onClientError(error: Error & { code?: string }, socket: TLSSocket): void {
    const address = `${socket.remoteAddress ?? 'unknown'}:${socket.remotePort ?? 0}`;
    const code = error.code ?? 'UNKNOWN';
    const key = `tls:${socket.remoteAddress ?? ''}`;
    if (NOT_TLS.test(code)) {
      this.limited.warn(
        key,
        `dropping a connection from ${address} that does not speak TLS (${code}): ${TLS_EVERYWHERE}`,
      );
    } else if (/ALERT/.test(code)) {
      // The dialer refused this node's certificate; the alert names its reason.
      this.limited.warn(
        key,
        `${address} refused this node's certificate (${code}): check that its CLUSTER_TLS_CA_FILE holds the CA that issued ${this.files.certFile}`,
      );
    } else {
      this.limited.debug(key, `TLS handshake from ${address} failed: ${error.message}`);
    }
  }

  // ---- reload --------------------------------------------------------------------------

  private load(): { material?: TlsMaterial; problems: TlsProblem[] } {
    return loadTlsMaterial(this.files, { now: this.clock.wallNow(), host: this.host });
  }

  private schedule(): void {
    if (this.timer !== undefined || this.servers.size === 0) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.check();
      this.schedule();
    }, this.reloadIntervalMs);
    this.timer.unref?.();
  }

  private stopPolling(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One check: reload settled changes, and complain about an expired certificate. */
  private check(): void {
    const now = this.clock.wallNow();
    const signature = this.fileSignature();
    if (signature !== this.signature) {
      if (signature !== this.pendingSignature) {
        // Changed since the last check: wait until the files settle (a rotation writes
        // several), then load them.
        this.pendingSignature = signature;
      } else {
        this.pendingSignature = undefined;
        this.signature = signature;
        this.reload();
      }
      return;
    }
    this.pendingSignature = undefined;
    const notAfter = Date.parse(this.material.certificate.validTo);
    if (
      notAfter < now &&
      this.clock.now() - this.expiredLoggedAt >= TLS_NETWORK_DEFAULTS.expiredLogIntervalMs
    ) {
      this.expiredLoggedAt = this.clock.now();
      this.logger.error(
        `TLS: the certificate in CLUSTER_TLS_CERT_FILE (${this.files.certFile}) expired on ${new Date(notAfter).toISOString()}: peers refuse new links from this node; replace the file (it is re-read within ${duration(2 * this.reloadIntervalMs)})`,
      );
    }
  }

  private reload(): void {
    const { material, problems } = this.load();
    if (!material) {
      for (const p of problems) {
        this.logger.error(
          `TLS: not loading the changed files: ${TLS_FILE_VARIABLES[p.file]}: ${p.message}; new links keep the certificate loaded before (${describeOwn(this.material)})`,
        );
      }
      return;
    }
    this.material = material;
    this.context = contextOf(material);
    for (const server of this.servers) server.setSecureContext(contextOptions(material));
    this.expiredLoggedAt = -Infinity;
    this.logger.log(
      `TLS: loaded the new certificate from ${this.files.certFile} (${describeOwn(material)}); new links use it`,
    );
  }

  /** mtime, size and inode of the three files: a change of any means "read them again". */
  private fileSignature(): string {
    return [this.files.certFile, this.files.keyFile, this.files.caFile]
      .map((file) => {
        try {
          const s = statSync(file);
          return `${s.ino}:${s.size}:${s.mtimeMs}`;
        } catch (error) {
          return `missing:${(error as NodeJS.ErrnoException).code ?? ''}`;
        }
      })
      .join('|');
  }
}

function contextOptions(material: TlsMaterial) {
  return {
    cert: material.cert,
    key: material.key,
    ca: material.ca,
    minVersion: 'TLSv1.3' as const,
  };
}

function contextOf(material: TlsMaterial): SecureContext {
  return createSecureContext(contextOptions(material));
}

function describeOwn(material: TlsMaterial): string {
  const c = material.certificate;
  return `${c.subjectAltName ?? 'no SAN'}, valid until ${new Date(Date.parse(c.validTo)).toISOString()}`;
}

function describePeerCertificate(c: PeerCertificate): string {
  const cn = c.subject?.CN;
  return [
    cn ? `CN=${Array.isArray(cn) ? cn.join(',') : cn}` : undefined,
    c.subjectaltname,
    c.issuer?.CN ? `issuer CN=${String(c.issuer.CN)}` : undefined,
    c.valid_to ? `valid until ${c.valid_to}` : undefined,
  ]
    .filter(Boolean)
    .join(', ');
}

function duration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
}

function isReset(code: string): boolean {
  return code === 'ECONNRESET' || code === 'EPIPE';
}

/** The first errno-style `code` on an error or its causes. */
function codeOf(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
