import { EventEmitter } from 'node:events';
import { Logger } from '@nestjs/common';
import { FrameTooLargeError } from '../errors/frame-too-large.error.js';
import type { NodeIdentity } from '../interfaces/member.interface.js';
import type { Clock } from '../runtime/clock.js';
import { endWire, remoteAddressOf, type Wire } from './wire.js';
import { encodeFrame, frameBodyBytes, FrameDecoder, HEADER_BYTES, type Frame } from './frame.js';
import { FrameType, frameTypeName, isTransportFrameType } from './frame-types.js';
import type { MonitoredLink } from './heartbeat-monitor.js';
import type { RateLimitedLogger } from '../logging/rate-limited-logger.js';
import {
  maxRecordBytes,
  RECORD_TARGET_BYTES,
  RecordOpener,
  RecordSealer,
  type RecordKeys,
} from './record-seal.js';

/**
 * Why a link closed:
 * - `leave`: the peer said LEAVE (graceful shutdown);
 * - `closed`: the socket closed or failed without a LEAVE;
 * - `heartbeat-timeout`: nothing was received for `failureTimeoutMs`;
 * - `protocol-error`: the peer sent a malformed, oversized or unknown frame, or a sealed record
 *   failed its integrity check (logged as `integrity failure from <name> (<address>)`);
 * - `local`: this node closed it (`close()`, `leave()`, or the transport closing).
 */
export type LinkCloseReason = 'leave' | 'closed' | 'heartbeat-timeout' | 'protocol-error' | 'local';

/** Why a peer left, carried in its LEAVE frame: it shuts down, or its discovery dropped this node. */
export type LeaveCause = 'shutdown' | 'discovery';

/** Encodes a LEAVE payload: the cause in UTF-8 (an empty payload means `shutdown`). */
export function encodeLeave(cause: LeaveCause): Buffer {
  return cause === 'shutdown' ? Buffer.alloc(0) : Buffer.from(cause, 'utf8');
}

/** Decodes a LEAVE payload; anything unknown reads as `shutdown`. */
export function decodeLeave(payload: Buffer): LeaveCause {
  return payload.toString('utf8') === 'discovery' ? 'discovery' : 'shutdown';
}

/** Bit 0 of a HEARTBEAT's flags byte: the sender asks for an answer at once (a probe). */
export const HEARTBEAT_PROBE = 0x01;

/** Encodes a HEARTBEAT payload: one flags byte. */
export function encodeHeartbeat(probe: boolean): Buffer {
  return Buffer.from([probe ? HEARTBEAT_PROBE : 0]);
}

/**
 * True when a HEARTBEAT asks for an answer: its probe bit is set, or its payload is empty (a
 * peer that predates the flags byte, whose heartbeats were all answerable). Other bits and any
 * further bytes are reserved and ignored.
 */
export function heartbeatWantsAnswer(payload: Buffer): boolean {
  return payload.length === 0 || (payload[0] & HEARTBEAT_PROBE) !== 0;
}

const PROBE_PAYLOAD = encodeHeartbeat(true);
const PLAIN_PAYLOAD = encodeHeartbeat(false);

/** Events of a link. */
export interface LinkEvents {
  /** A frame of one of the transport's accepted types arrived. */
  frame: [type: number, payload: Buffer];
  /** The link closed; emitted exactly once. `cause` is set when the reason is `leave`. */
  close: [reason: LinkCloseReason, cause?: LeaveCause];
}

/** Everything a link is built from; created by the transport after a successful handshake. */
export interface LinkInit {
  readonly socket: Wire;
  readonly clock: Clock;
  /** The connection's decoder, possibly already holding bytes of the first records. */
  readonly decoder: FrameDecoder;
  /**
   * This side's record keys: every record is sealed with `send` and opened with `receive`.
   * Undefined only in benchmarks that measure the cost of sealing (frames in the clear).
   */
  readonly keys: RecordKeys | undefined;
  readonly peer: NodeIdentity;
  readonly direction: 'inbound' | 'outbound';
  readonly maxFrameBytes: number;
  readonly maxWriteBufferBytes: number;
  readonly acceptedTypes: ReadonlySet<number>;
  /** Heartbeat interval, ms (a probe is answered unless we wrote within half of it). */
  readonly heartbeatIntervalMs: number;
  /** Bound on how long `leave()` waits for the socket to close, ms. */
  readonly leaveTimeoutMs: number;
  /** Rate limiter for protocol-error lines. */
  readonly rateLimited: RateLimitedLogger;
  /** Called once when the link closes (the transport stops watching it). */
  readonly onClosed: (link: Link) => void;
}

/**
 * An authenticated connection to one peer. Created by `Transport` (returned by `dial()`,
 * or emitted as `'link'` for inbound connections); never constructed by applications.
 *
 * Frames already received are delivered from the next turn of the event loop, so attach the
 * `'frame'` and `'close'` listeners synchronously when you receive the link.
 */
export class Link extends EventEmitter<LinkEvents> implements MonitoredLink {
  private readonly logger = new Logger(Link.name);
  /** The authenticated identity of the peer. */
  readonly peer: NodeIdentity;
  /** Who opened the connection: the peer (`inbound`) or this node (`outbound`). */
  readonly direction: 'inbound' | 'outbound';
  /** `host:port` of the remote end of the socket. */
  readonly remoteAddress: string;
  /** @internal monotonic time bytes were last received */
  lastReceivedAt: number;
  /** @internal monotonic time a frame was last written */
  lastSentAt: number;
  /** @internal monotonic time a HEARTBEAT asking for an answer was last written */
  probeSentAt: number | undefined;
  /** @internal the dialer drives the link's liveness; the listener answers */
  readonly drives: boolean;
  /** @internal held to the failure timeout (see `watch`) */
  watched = true;
  /** @internal monotonic time of the probe `suspect` sent, until bytes arrive */
  suspectedAt: number | undefined;
  private readonly socket: Wire;
  private readonly clock: Clock;
  private readonly init: LinkInit;
  private closeReason: LinkCloseReason | undefined;
  private retiring = false;
  private ending = false;
  private leaving: Promise<void> | undefined;
  /** Decoder of the frames (of the opened records when sealed). */
  private readonly decoder: FrameDecoder;
  private readonly sealer: RecordSealer | undefined;
  private readonly opener: RecordOpener | undefined;
  /** Bytes of the stream that arrived with the end of the handshake, opened at start. */
  private early: Buffer[] = [];
  /** Encoded frames waiting to be sealed into the next record. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /** @internal */
  constructor(init: LinkInit) {
    super();
    this.init = init;
    this.socket = init.socket;
    this.peer = init.peer;
    this.direction = init.direction;
    this.drives = init.direction === 'outbound';
    this.clock = init.clock;
    this.remoteAddress = remoteAddressOf(init.socket);
    this.lastReceivedAt = this.clock.now();
    this.lastSentAt = this.lastReceivedAt;
    if (init.keys) {
      this.sealer = new RecordSealer(init.keys.send);
      this.opener = new RecordOpener(
        init.keys.receive,
        maxRecordBytes(init.maxFrameBytes, HEADER_BYTES),
      );
      this.early = init.decoder.takeBuffered();
      this.decoder = new FrameDecoder(init.maxFrameBytes);
    } else {
      this.decoder = init.decoder;
      this.decoder.maxFrameBytes = init.maxFrameBytes;
    }
    this.socket.setNoDelay(true);
    this.socket.on('error', this.onError);
    this.socket.on('close', this.onSocketClose);
    this.clock.defer(() => this.start());
  }

  /** True once the link closed, started leaving or was retired; `send` returns false then. */
  get closed(): boolean {
    return this.closeReason !== undefined || this.retiring;
  }

  /**
   * Retires a redundant link (two nodes dialled each other at once and the other link won):
   * nothing more is sent on it, but it stays open and keeps delivering what arrives, until
   * `end()` — or `reinstate()` if the winning link fails first.
   */
  retire(): void {
    if (this.closeReason === undefined) this.retiring = true;
  }

  /** Makes a retired, still open link usable again; false when it has closed meanwhile. */
  reinstate(): boolean {
    if (this.closeReason !== undefined || this.ending) return false;
    this.retiring = false;
    return true;
  }

  /**
   * Ends a retired link: a FIN after what is queued; frames the peer sent before its own end
   * are still delivered, and `'close'` follows when the socket closes.
   */
  end(): void {
    if (this.closeReason !== undefined || this.ending) return;
    this.retiring = true;
    this.ending = true;
    this.flushRecord();
    void endWire(this.socket, this.init.leaveTimeoutMs, this.clock);
  }

  /** Bytes queued in the socket (or waiting to be sealed), not yet handed to the kernel. */
  get bufferedBytes(): number {
    return this.socket.writableLength + this.pendingBytes;
  }

  /**
   * Queues one frame. Returns false — and queues nothing — when the link is closed or more than
   * `maxWriteBufferBytes` are already queued (the peer does not keep up).
   * @throws FrameTooLargeError when the frame would exceed `maxFrameBytes`
   */
  send(type: number, payload: Buffer): boolean {
    const size = frameBodyBytes(payload.length);
    if (size > this.init.maxFrameBytes) throw new FrameTooLargeError(size, this.init.maxFrameBytes);
    if (this.closed || this.socket.destroyed) return false;
    if (this.bufferedBytes > this.init.maxWriteBufferBytes) return false;
    this.write(type, payload);
    return true;
  }

  /**
   * Leaves gracefully: sends LEAVE with its cause, flushes and ends the socket. The peer sees
   * `'close'` with reason `'leave'` and the cause; this link emits `'close'` with `'local'` at
   * once. Resolves when the socket closed, or after `leaveTimeoutMs` at most.
   */
  leave(cause: LeaveCause = 'shutdown'): Promise<void> {
    if (this.leaving) return this.leaving;
    if (this.closed) return Promise.resolve();
    this.write(FrameType.LEAVE, encodeLeave(cause));
    this.flushRecord();
    this.leaving = endWire(this.socket, this.init.leaveTimeoutMs, this.clock);
    this.finish('local');
    return this.leaving;
  }

  /** Closes the link at once (no LEAVE); emits `'close'` with `'local'`. */
  close(reason = 'closed by this node'): void {
    if (this.closeReason !== undefined) return;
    this.logger.debug(`closing link to ${this.describe()}: ${reason}`);
    this.finish('local');
    this.socket.destroy();
  }

  /** @internal the peer gets a fresh failure window (after a local event-loop stall) */
  grace(now: number): void {
    this.lastReceivedAt = now;
    if (this.suspectedAt !== undefined) this.suspectedAt = now;
  }

  /**
   * Sets whether the failure detector holds this link to the failure timeout (the default) or
   * only probes it at the slow pace (see `HeartbeatMonitor`). Membership watches the members
   * around this node on its heartbeat ring; a link that becomes watched gets a fresh failure
   * window and a probe.
   */
  watch(watched: boolean): void {
    if (watched === this.watched) return;
    this.watched = watched;
    if (!watched || this.closed || this.socket.destroyed) return;
    const now = this.clock.now();
    this.grace(now);
    this.sendHeartbeat(now, true);
  }

  /**
   * Probes the peer now and closes the link (`heartbeat-timeout`) unless something arrives
   * within the answer window of a probe (see `HeartbeatMonitor`): another member reported a
   * loss, and this link may not have been watched. Does nothing while a suspicion is pending.
   */
  suspect(): void {
    if (this.suspectedAt !== undefined || this.closed || this.socket.destroyed) return;
    const now = this.clock.now();
    this.suspectedAt = now;
    this.sendHeartbeat(now, true);
  }

  /** @internal one HEARTBEAT; `probe` asks the peer to answer at once */
  sendHeartbeat(now: number, probe: boolean): void {
    if (this.closed || this.socket.destroyed) return;
    if (this.bufferedBytes > this.init.maxWriteBufferBytes) return;
    this.write(FrameType.HEARTBEAT, probe ? PROBE_PAYLOAD : PLAIN_PAYLOAD);
    this.lastSentAt = now;
    if (probe) this.probeSentAt = now;
  }

  /** @internal */
  expire(silentMs: number): void {
    if (this.closed) return;
    this.logger.warn(
      `no frame from ${this.describe()} for ${Math.round(silentMs)} ms (failure timeout): closing the link`,
    );
    this.finish('heartbeat-timeout');
    this.socket.destroy();
  }

  private describe(): string {
    return `${this.peer.name} (${this.remoteAddress})`;
  }

  private write(type: number, payload: Buffer): void {
    // Frames written in one turn of the event loop leave in one batch: a burst of small
    // messages costs one system call, not one per message. Sealed, the batch is one record (or
    // a few of at most RECORD_TARGET_BYTES each, or one per larger frame), sealed and written
    // at the end of the turn; a lone small record is one buffer, so one `write`, with no cork.
    // In the clear, the socket is corked for the turn and the frames leave in one `writev`.
    const frame = encodeFrame(type, payload);
    if (this.sealer) {
      if (this.pendingBytes > 0 && this.pendingBytes + frame.length > RECORD_TARGET_BYTES)
        this.flushRecord();
      this.pending.push(frame);
      this.pendingBytes += frame.length;
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        process.nextTick(this.flushTurn);
      }
    } else {
      if (!this.corked) {
        this.corked = true;
        this.socket.cork();
        process.nextTick(this.uncork);
      }
      this.socket.write(frame);
    }
    this.lastSentAt = this.clock.now();
  }

  /** Seals the pending frames into one record and queues it on the socket. */
  private flushRecord(): void {
    if (this.pendingBytes === 0 || this.sealer === undefined) return;
    const parts = this.pending;
    const length = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    if (this.socket.destroyed) return;
    const record = this.sealer.seal(parts, length);
    if (record.length === 1) {
      this.socket.write(record[0]);
      return;
    }
    // A large record's three parts leave in one writev.
    this.socket.cork();
    for (const bytes of record) this.socket.write(bytes);
    this.socket.uncork();
  }

  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  private flushScheduled = false;
  private readonly flushTurn = (): void => {
    this.flushScheduled = false;
    this.flushRecord();
  };

  private start(): void {
    if (this.closeReason !== undefined) return;
    const early = this.early;
    this.early = [];
    for (const chunk of early) {
      this.receive(chunk);
      if (this.closeReason !== undefined) return;
    }
    this.drain();
    if (this.closeReason !== undefined) return;
    this.socket.on('data', this.onData);
    this.socket.resume();
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.closeReason !== undefined) return;
    this.lastReceivedAt = this.clock.now();
    this.suspectedAt = undefined;
    this.receive(chunk);
    this.drain();
  };

  /** Opens the records in `chunk` (when sealed) and hands their frames to the decoder. */
  private receive(chunk: Buffer): void {
    if (this.opener === undefined) {
      this.feed(chunk);
      return;
    }
    let plaintexts: Buffer[];
    try {
      plaintexts = this.opener.push(chunk);
    } catch (error) {
      this.integrityFailure((error as Error).message);
      return;
    }
    for (const plain of plaintexts) {
      if (!this.feed(plain)) return;
      // Decode as we go, so the decoder never holds more than one record's frames.
      this.drain();
      if (this.closeReason !== undefined) return;
    }
  }

  private feed(bytes: Buffer): boolean {
    try {
      this.decoder.write(bytes);
      return true;
    } catch (error) {
      this.protocolError((error as Error).message);
      return false;
    }
  }

  /** Reads and handles every complete frame held by the decoder. */
  private drain(): void {
    while (this.closeReason === undefined) {
      let frame: Frame | undefined;
      try {
        frame = this.decoder.read();
      } catch (error) {
        this.protocolError((error as Error).message);
        return;
      }
      if (frame === undefined) return;
      this.handle(frame);
    }
  }

  private handle(frame: Frame): void {
    if (this.retiring && frame.type === FrameType.HEARTBEAT) return;
    if (frame.type === FrameType.HEARTBEAT) {
      // Answer a probe at once, unless something we wrote within half an interval is already
      // on its way: the answer carries the TCP acknowledgement of the probe, so an idle
      // period costs one round trip (three packets). A plain heartbeat needs no answer.
      if (!heartbeatWantsAnswer(frame.payload)) return;
      const now = this.clock.now();
      if (now - this.lastSentAt >= this.init.heartbeatIntervalMs / 2)
        this.sendHeartbeat(now, false);
      return;
    }
    if (frame.type === FrameType.LEAVE) {
      const cause = decodeLeave(frame.payload);
      this.logger.debug(`${this.describe()} left (${cause})`);
      this.finish('leave', cause);
      void endWire(this.socket, this.init.leaveTimeoutMs, this.clock);
      return;
    }
    if (isTransportFrameType(frame.type) || !this.init.acceptedTypes.has(frame.type)) {
      this.protocolError(`unexpected ${frameTypeName(frame.type)} frame`);
      return;
    }
    try {
      this.emit('frame', frame.type, frame.payload);
    } catch (error) {
      this.logger.error(
        `a 'frame' listener threw on ${frameTypeName(frame.type)} from ${this.peer.name}`,
        error instanceof Error ? error.stack : String(error),
      );
    }
  }

  private protocolError(detail: string): void {
    if (this.closeReason !== undefined) return;
    this.init.rateLimited.warn(
      `protocol:${this.socket.remoteAddress ?? 'unknown'}`,
      `closing link to ${this.describe()}: protocol error: ${detail}`,
    );
    this.finish('protocol-error');
    this.socket.destroy();
  }

  /** A sealed record failed its check: one line naming the peer, then the link closes. */
  private integrityFailure(detail: string): void {
    if (this.closeReason !== undefined) return;
    this.logger.warn(`integrity failure from ${this.describe()}: ${detail}; closing the link`);
    this.finish('protocol-error');
    this.socket.destroy();
  }

  private readonly onError = (error: Error): void => {
    const code = (error as NodeJS.ErrnoException).code ?? error.message;
    this.logger.debug(`link to ${this.describe()} failed: ${code}`);
    this.finish('closed');
  };

  private readonly onSocketClose = (): void => {
    // A stream cut inside a record is an integrity failure, not a plain close.
    if (this.opener && this.closeReason === undefined && !this.ending) {
      try {
        this.opener.end();
      } catch (error) {
        this.integrityFailure((error as Error).message);
        return;
      }
    }
    this.finish('closed');
  };

  private finish(reason: LinkCloseReason, cause?: LeaveCause): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    this.socket.off('data', this.onData);
    this.init.onClosed(this);
    this.emit('close', reason, cause);
  }
}
