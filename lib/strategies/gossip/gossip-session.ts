import { isUnspecifiedHost, parseEndpoint, type Endpoint } from '../../identity/endpoint.js';
import type { RemoteInfo, Socket, BindOptions } from 'node:dgram';
import type { LoggerService } from '@nestjs/common';
import { RateLimitedLogger } from '../../logging/rate-limited-logger.js';
import { GossipSocketError, type GossipSocketOperation } from '../../errors/gossip-socket.error.js';
import { PROTOCOL_VERSION } from '../../transport/frame.js';
import type { StrategyContext } from '../strategy.interface.js';
import { GOSSIP_DEFAULTS } from './gossip-defaults.js';
import {
  createGossipNonce,
  openHeartbeat,
  sealHeartbeat,
  type GossipDropReason,
  type GossipKeyring,
} from './gossip-packet.js';
import type { GossipSettings } from './gossip-settings.js';
import {
  gossipAuthFailed,
  gossipDropped,
  gossipListening,
  gossipOpenFailed,
  gossipSocketHint,
} from './gossip.messages.js';
import { PeerTable } from './peer-table.js';
import { ReplayWindow } from './replay-window.js';

/** Counters of one gossip strategy since `start()`. */
export interface GossipStats {
  /** True while the socket is open. */
  readonly open: boolean;
  /** Attempts to open the socket (1 when the first one worked). */
  readonly openAttempts: number;
  /** Attempts that failed. */
  readonly openFailures: number;
  /** Datagrams received, valid or not. */
  readonly packetsReceived: number;
  /** Heartbeats that passed every check. */
  readonly heartbeatsAccepted: number;
  /**
   * Of those, heartbeats sealed with a retired key (a rotation is under way: some node still
   * seals with it). Zero for a while on every node means the retired key can be removed.
   */
  readonly acceptedUnderPreviousKey: number;
  /** Datagrams dropped, by reason. */
  readonly dropped: Readonly<Record<GossipDropReason, number>>;
  /** Periodic heartbeats sent to the group. */
  readonly heartbeatsSent: number;
  /** Immediate unicast answers sent to newly heard peers. */
  readonly repliesSent: number;
  /** Peers currently in the discovered set. */
  readonly peers: number;
}

interface OpenSockets {
  /** Bound to `ifAddr:port` (shared with `reuseAddr`), member of the group: receives heartbeats. */
  readonly group: Socket;
  /** Bound to an ephemeral port: sends heartbeats, sends and receives the unicast answers. */
  readonly sender: Socket;
}

type StepError = Error & { operation?: GossipSocketOperation; target?: string };

/**
 * Factor by which a group stretches every node's heartbeat interval, and the time a silent peer
 * is remembered: 1 up to `groupScaleNodes` nodes (this one and `peersHeard`), in proportion
 * beyond — so the group's total heartbeat rate stays that of `groupScaleNodes` nodes.
 */
export function gossipGroupScale(peersHeard: number): number {
  return Math.max(1, (peersHeard + 1) / GOSSIP_DEFAULTS.groupScaleNodes);
}

/**
 * One run of the gossip strategy, from `start()` to `stop()`: the sockets, the timers and
 * the peers heard. Never throws out of its public methods.
 *
 * Two sockets: the group socket shares the gossip port with every other instance on the host
 * and receives the multicast (or broadcast) heartbeats; the sender socket has a port of its
 * own, so the unicast answer to a heartbeat reaches exactly the instance that sent it, even
 * when several instances share one host and address.
 */
export class GossipSession {
  private readonly logger: LoggerService;
  private readonly now: () => number;
  private readonly peers = new PeerTable();
  private readonly replay = new ReplayWindow(
    GOSSIP_DEFAULTS.replayWindowMs,
    GOSSIP_DEFAULTS.replayCacheEntries,
  );
  private readonly lastReplyAt = new Map<string, number>();
  private readonly dropLog = new Map<GossipDropReason, { at: number; suppressed: number }>();
  /** Authentication failures warned about, by source address: one line a minute each. */
  private readonly authWarnings: RateLimitedLogger;
  private readonly dropped: Record<GossipDropReason, number> = emptyDropCounts();
  private sockets: OpenSockets | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private consecutiveFailures = 0;
  private lastFailureLog: { message: string; at: number } | undefined;
  private sendFailing = false;
  /** Interval multiplier: 1 while anything changes, doubling per settled round. */
  private slowdown = 1;
  /** A peer was heard for the first time (or at a new endpoint) since the last round. */
  private changedSinceTick = true;
  /** Remote members at the last round. */
  private membersAtTick = 0;
  private identityProblemLogged = false;
  private counters = {
    openAttempts: 0,
    openFailures: 0,
    packetsReceived: 0,
    heartbeatsAccepted: 0,
    acceptedUnderPreviousKey: 0,
    heartbeatsSent: 0,
    repliesSent: 0,
  };

  constructor(
    private readonly ctx: StrategyContext,
    private readonly settings: GossipSettings,
    private readonly keys: GossipKeyring,
  ) {
    this.logger = ctx.logger;
    this.now = settings.now;
    this.authWarnings = new RateLimitedLogger(
      this.logger,
      GOSSIP_DEFAULTS.authWarnIntervalMs,
      GOSSIP_DEFAULTS.authWarnAddresses,
      this.now,
    );
  }

  /** Opens the sockets; on failure reports the error and schedules a retry. Never rejects. */
  async open(): Promise<void> {
    if (this.closed || this.sockets) return;
    this.retryTimer = undefined;
    this.counters.openAttempts++;
    let sockets: OpenSockets;
    try {
      sockets = await this.openSockets();
    } catch (error) {
      this.onFailure(this.toSocketError(error));
      return;
    }
    if (this.closed) {
      closeQuietly(sockets.group);
      closeQuietly(sockets.sender);
      return;
    }
    this.sockets = sockets;
    this.logger.log(gossipListening(this.settings, this.consecutiveFailures));
    this.consecutiveFailures = 0;
    this.lastFailureLog = undefined;
    this.sendFailing = false;
    this.ctx.reportOk();
    this.tick();
  }

  /** Closes the sockets and every timer. Idempotent. */
  close(): void {
    this.closed = true;
    clearTimeout(this.heartbeatTimer);
    clearTimeout(this.retryTimer);
    this.heartbeatTimer = undefined;
    this.retryTimer = undefined;
    this.closeSockets();
  }

  stats(): GossipStats {
    return {
      open: this.sockets !== undefined,
      ...this.counters,
      dropped: { ...this.dropped },
      peers: this.peers.size,
    };
  }

  // ---- sockets -------------------------------------------------------------------------

  private async openSockets(): Promise<OpenSockets> {
    const s = this.settings;
    const group = s.socketFactory({ type: 'udp4', reuseAddr: true });
    const sender = s.socketFactory({ type: 'udp4' });
    for (const socket of [group, sender]) {
      socket.on('error', (error) => this.onRuntimeError(socket, error));
      socket.on('message', (packet, rinfo) => this.onPacket(packet, rinfo));
    }
    try {
      await bindSocket(
        group,
        { address: s.ifAddr, port: s.port, exclusive: true },
        `bind ${s.ifAddr}:${s.port}`,
      );
      await bindSocket(
        sender,
        { address: s.ifAddr, port: 0, exclusive: true },
        `bind ${s.ifAddr}:0 (sender)`,
      );
      for (const socket of [group, sender]) enlargeReceiveBuffer(socket);
      if (s.broadcastOnly) {
        step('setBroadcast', 'enable broadcast', () => {
          group.setBroadcast(true);
          sender.setBroadcast(true);
        });
      } else {
        const iface = s.multicastIf ?? 'the default interface';
        step('addMembership', `join ${s.multicastAddr} on ${iface}`, () =>
          group.addMembership(s.multicastAddr, s.multicastIf),
        );
        if (s.multicastIf !== undefined) {
          const multicastIf = s.multicastIf;
          step('setMulticastInterface', `send multicast from ${multicastIf}`, () =>
            sender.setMulticastInterface(multicastIf),
          );
        }
        step('setMulticastTTL', `set multicast TTL ${s.multicastTtl}`, () => {
          sender.setMulticastTTL(s.multicastTtl);
          sender.setMulticastLoopback(true);
        });
      }
    } catch (error) {
      closeQuietly(group);
      closeQuietly(sender);
      throw error;
    }
    return { group, sender };
  }

  private closeSockets(): void {
    const sockets = this.sockets;
    this.sockets = undefined;
    if (!sockets) return;
    closeQuietly(sockets.group);
    closeQuietly(sockets.sender);
  }

  private onRuntimeError(socket: Socket, error: Error): void {
    const current = this.sockets;
    if (this.closed || !current || (current.group !== socket && current.sender !== socket)) return;
    clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    this.closeSockets();
    this.onFailure(
      this.toSocketError(Object.assign(error, { operation: 'socket', target: 'gossip socket' })),
    );
  }

  private onFailure(error: GossipSocketError): void {
    if (this.closed) return;
    this.consecutiveFailures++;
    this.counters.openFailures++;
    const exponential =
      this.settings.openRetryBaseMs * 2 ** Math.min(this.consecutiveFailures - 1, 30);
    const delay = Math.max(
      1,
      Math.round(Math.min(this.settings.openRetryMaxMs, exponential) * (0.8 + 0.4 * Math.random())),
    );
    const now = this.now();
    const last = this.lastFailureLog;
    const text = gossipOpenFailed(error.message, this.consecutiveFailures, delay);
    if (
      !last ||
      last.message !== error.message ||
      now - last.at >= GOSSIP_DEFAULTS.repeatFailureLogMs
    ) {
      this.logger.error(text);
      this.lastFailureLog = { message: error.message, at: now };
    } else if (this.ctx.debug) {
      this.logger.debug?.(text);
    }
    this.ctx.reportError(error);
    this.retryTimer = setTimeout(() => {
      this.open().catch((e: unknown) => {
        this.logger.error(`gossip: reopening failed unexpectedly: ${String(e)}`);
      });
    }, delay);
    this.retryTimer.unref();
  }

  private toSocketError(error: unknown): GossipSocketError {
    const e = error as StepError & NodeJS.ErrnoException;
    const operation = e?.operation ?? 'socket';
    const code = typeof e?.code === 'string' ? e.code : 'UNKNOWN';
    return new GossipSocketError(
      operation,
      code,
      e?.target ?? 'gossip socket',
      gossipSocketHint(operation, code, this.settings),
      error,
    );
  }

  // ---- sending ---------------------------------------------------------------------------

  private tick(): void {
    if (this.closed || !this.sockets) return;
    this.expire();
    this.send('heartbeat', this.settings.multicastAddr, this.settings.port);
    this.slowdown = this.settled() ? GOSSIP_DEFAULTS.settledSlowdownMax : 1;
    const { heartbeatMinMs: min, heartbeatMaxMs: max } = this.settings;
    this.heartbeatTimer = setTimeout(
      () => this.tick(),
      (min + Math.random() * (max - min)) * this.slowdown * this.groupScale(),
    );
    this.heartbeatTimer.unref();
  }

  /** How much the group's size stretches the heartbeat interval and the expiry of peers. */
  private groupScale(): number {
    return gossipGroupScale(this.peers.size);
  }

  /**
   * True when the last round changed nothing: no new peer, no member lost, and every peer
   * heard is a member (so gossip has nothing left to do but notice changes).
   */
  private settled(): boolean {
    const members = this.ctx.members();
    const remote = members.length - 1;
    const names = new Set(members.map((m) => m.name));
    const settled =
      !this.changedSinceTick &&
      remote >= this.membersAtTick &&
      this.peers.endpoints().every((p) => p.name === undefined || names.has(p.name));
    this.changedSinceTick = false;
    this.membersAtTick = remote;
    return settled;
  }

  private send(kind: 'heartbeat' | 'reply', address: string, port: number): void {
    const sockets = this.sockets;
    if (!sockets) return;
    const self = this.ctx.self;
    let packet: Buffer;
    try {
      packet = sealHeartbeat(this.keys.current, {
        kind,
        sentAt: Math.floor(this.now()),
        nonce: createGossipNonce(),
        protocolVersion: PROTOCOL_VERSION,
        name: self.name,
        incarnation: self.incarnation,
        startedAt: Math.floor(self.startedAt),
        endpoint: self.endpoint,
      });
    } catch (error) {
      if (!this.identityProblemLogged) {
        this.identityProblemLogged = true;
        this.logger.warn(`gossip: not announcing this node yet: ${(error as Error).message}`);
      }
      return;
    }
    try {
      sockets.sender.send(packet, port, address, (error) =>
        this.onSent(kind, address, port, error),
      );
    } catch (error) {
      this.onSent(kind, address, port, error as Error);
    }
  }

  private onSent(
    kind: 'heartbeat' | 'reply',
    address: string,
    port: number,
    error: Error | null,
  ): void {
    if (this.closed) return;
    if (kind === 'reply') {
      if (!error) this.counters.repliesSent++;
      else if (this.ctx.debug)
        this.logger.debug?.(
          `gossip: answer to ${address}:${port} not sent (${(error as NodeJS.ErrnoException).code ?? error.message})`,
        );
      return;
    }
    if (!error) {
      this.counters.heartbeatsSent++;
      if (this.sendFailing) {
        this.sendFailing = false;
        this.logger.log(`gossip: heartbeats to ${address}:${port} are sent again`);
        this.ctx.reportOk();
      }
      return;
    }
    if (this.sendFailing) return;
    this.sendFailing = true;
    const code = (error as NodeJS.ErrnoException).code ?? 'UNKNOWN';
    const failure = new GossipSocketError(
      'send',
      code,
      `send to ${address}:${port}`,
      gossipSocketHint('send', code, this.settings),
      error,
    );
    this.logger.error(failure.message);
    this.ctx.reportError(failure);
  }

  private reply(name: string, rinfo: RemoteInfo, now: number, changed: boolean): void {
    const last = this.lastReplyAt.get(name);
    const interval = changed
      ? GOSSIP_DEFAULTS.replyMinIntervalMs
      : GOSSIP_DEFAULTS.nonMemberReplyIntervalMs;
    if (last !== undefined && now - last < interval) return;
    this.lastReplyAt.set(name, now);
    this.send('reply', rinfo.address, rinfo.port);
  }

  // ---- receiving -------------------------------------------------------------------------

  private onPacket(packet: Buffer, rinfo: RemoteInfo): void {
    if (this.closed) return;
    this.counters.packetsReceived++;
    const opened = openHeartbeat(this.keys, packet);
    // Nothing is allocated for a packet that fails authentication but the drop count.
    if (!opened.ok) return this.dropUnauthenticated(opened.reason, rinfo, opened.keyId);
    const from = `${rinfo.address}:${rinfo.port}`;
    const hb = opened.heartbeat;
    const self = this.ctx.self;
    if (hb.name === self.name && hb.incarnation === self.incarnation) return; // our own, looped back
    const now = this.now();
    const verdict = this.replay.check(hb.nonce, hb.sentAt, now);
    if (verdict !== 'fresh') return this.drop(verdict, from);
    if (hb.name === self.name) {
      this.ctx.reportNameClash?.(
        {
          name: hb.name,
          incarnation: hb.incarnation,
          startedAt: hb.startedAt,
          endpoint: hb.endpoint,
        },
        `gossip from ${from}`,
      );
      return this.drop('self-incarnation', from);
    }
    const endpoint = heartbeatEndpoint(hb.endpoint, rinfo.address);
    if (!endpoint) return this.drop('endpoint', from);

    const isMember = this.ctx.members().some((m) => m.name === hb.name);
    const outcome = this.peers.hear(
      {
        name: hb.name,
        incarnation: hb.incarnation,
        startedAt: hb.startedAt,
        host: endpoint.host,
        port: endpoint.port,
      },
      now,
    );
    if (outcome === 'older') return this.drop('older-incarnation', from);
    this.counters.heartbeatsAccepted++;
    if (this.keys.isPrevious(opened.key)) this.counters.acceptedUnderPreviousKey++;
    const changed = outcome === 'new' || outcome === 'changed';
    if (changed) {
      this.changedSinceTick = true;
      if (this.ctx.debug) {
        this.logger.debug?.(
          `gossip: heard ${hb.name} (incarnation ${hb.incarnation}) at ${endpoint.host}:${endpoint.port} from ${from}`,
        );
      }
      this.ctx.connect(this.peers.endpoints());
    }
    if (hb.kind === 'heartbeat' && (changed || !isMember)) this.reply(hb.name, rinfo, now, changed);
  }

  private expire(): void {
    const now = this.now();
    const members = new Set(this.ctx.members().map((m) => m.name));
    const expireMs = this.settings.expireMs * this.groupScale();
    const gone = this.peers.expire(now, expireMs, (name) => members.has(name));
    for (const [name, at] of this.lastReplyAt) {
      if (now - at >= GOSSIP_DEFAULTS.nonMemberReplyIntervalMs) this.lastReplyAt.delete(name);
    }
    if (gone.length === 0) return;
    if (this.ctx.debug) {
      this.logger.debug?.(
        `gossip: not heard for ${Math.round(expireMs)} ms, forgetting ${gone.map((p) => p.name).join(', ')}`,
      );
    }
    this.ctx.connect(this.peers.endpoints());
  }

  private dropUnauthenticated(
    reason: GossipDropReason,
    rinfo: RemoteInfo,
    keyId: number | undefined,
  ): void {
    if (reason !== 'auth' && reason !== 'key') {
      return this.drop(reason, `${rinfo.address}:${rinfo.port}`);
    }
    this.dropped[reason]++;
    this.warnAuth(rinfo, reason === 'key' ? keyId : undefined);
  }

  private drop(reason: GossipDropReason, from: string): void {
    this.dropped[reason]++;
    if (!this.ctx.debug) return;
    const now = this.now();
    const entry = this.dropLog.get(reason);
    if (entry && now - entry.at < GOSSIP_DEFAULTS.dropLogIntervalMs) {
      entry.suppressed++;
      return;
    }
    this.dropLog.set(reason, { at: now, suppressed: 0 });
    this.logger.debug?.(gossipDropped(reason, from, entry?.suppressed ?? 0));
  }

  /**
   * A packet that fails authentication is a warning, at most once per source address per
   * `authWarnIntervalMs`: the usual causes (different keys, a second cluster on the group)
   * are configuration the operator must see, and a flood still costs one line a minute.
   */
  private warnAuth(rinfo: RemoteInfo, keyId: number | undefined): void {
    this.authWarnings.warn(rinfo.address, () =>
      gossipAuthFailed(`${rinfo.address}:${rinfo.port}`, this.settings, keyId, this.keys),
    );
  }
}

/**
 * The link endpoint a heartbeat announces (`host:port` or `[v6]:port`). An unspecified host
 * (`0.0.0.0`, `::`) means "the address this packet came from".
 */
export function heartbeatEndpoint(endpoint: string, sourceAddress: string): Endpoint | undefined {
  const parsed = parseEndpoint(endpoint);
  if (!parsed) return undefined;
  return isUnspecifiedHost(parsed.host) ? { host: sourceAddress, port: parsed.port } : parsed;
}

function step(operation: GossipSocketOperation, target: string, action: () => void): void {
  try {
    action();
  } catch (error) {
    throw Object.assign(error instanceof Error ? error : new Error(String(error)), {
      operation,
      target,
    });
  }
}

function bindSocket(socket: Socket, options: BindOptions, target: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => {
      socket.off('listening', onListening);
      reject(Object.assign(error, { operation: 'bind', target }));
    };
    const onListening = (): void => {
      socket.off('error', onError);
      resolve();
    };
    socket.once('error', onError);
    socket.once('listening', onListening);
    try {
      socket.bind(options);
    } catch (error) {
      socket.off('error', onError);
      socket.off('listening', onListening);
      reject(Object.assign(error as Error, { operation: 'bind', target }));
    }
  });
}

/**
 * Asks for a bigger receive buffer, so the burst of answers a newcomer gets from a large
 * cluster is not lost. The OS caps it (`net.core.rmem_max` on Linux); failure is harmless.
 */
function enlargeReceiveBuffer(socket: Socket): void {
  try {
    if (socket.getRecvBufferSize() < GOSSIP_DEFAULTS.receiveBufferBytes)
      socket.setRecvBufferSize(GOSSIP_DEFAULTS.receiveBufferBytes);
  } catch {
    // keep the OS default
  }
}

function closeQuietly(socket: Socket): void {
  try {
    socket.removeAllListeners('message');
    socket.close();
  } catch {
    // already closed
  }
}

/** A zero count for every reason a packet can be dropped for. */
export function emptyDropCounts(): Record<GossipDropReason, number> {
  return {
    size: 0,
    magic: 0,
    version: 0,
    key: 0,
    auth: 0,
    malformed: 0,
    stale: 0,
    future: 0,
    replay: 0,
    'self-incarnation': 0,
    'older-incarnation': 0,
    endpoint: 0,
  };
}
