import { Logger } from '@nestjs/common';
import type { Subscription } from 'rxjs';
import {
  Adapter,
  ClusterAdapterWithHeartbeat,
  MessageType,
  type BroadcastOptions,
  type ClusterMessage,
  type ClusterResponse,
  type Offset,
  type Room,
  type ServerId,
} from 'socket.io-adapter';
import type { ClusterService } from '../cluster.service.js';
import { PayloadError } from '../errors/payload.error.js';
import type { ClusterEvent } from '../interfaces/member.interface.js';
import { RateLimitedLogger } from '../logging/rate-limited-logger.js';
import type { ClusterMessage as ReceivedClusterMessage } from '../messaging/cluster-message.interface.js';
import { batchWebSocketWrites } from './websocket-batching.js';
import { fromWire, toWire, type WireMessage } from './wire-codec.js';

/** Options of the cluster adapter (`createClusterAdapter`, `ClusterIoAdapter`). */
export interface ClusterSocketIoAdapterOptions {
  /**
   * Prefix of the cluster messaging topic of each namespace (`<prefix>:<namespace>`). Servers
   * that should share rooms use the same prefix; two socket.io servers that must stay apart in
   * one cluster use different ones.
   * @default 'socket.io'
   */
  topicPrefix?: string;
  /**
   * socket.io-adapter's heartbeat interval, ms: how often an idle adapter tells the others it
   * is there. Membership changes are taken from the cluster at once; this is only a fallback.
   * @default 5000
   */
  heartbeatInterval?: number;
  /**
   * socket.io-adapter's heartbeat timeout, ms: an adapter silent that long is no longer waited
   * for by `fetchSockets` and `serverSideEmit` acknowledgements.
   * @default 10000
   */
  heartbeatTimeout?: number;
  /**
   * Largest encoded (JSON) packet checked before an acknowledged broadcast or a
   * `serverSideEmit` leaves this node, bytes; keep it at or below the cluster's
   * `maxPayloadBytes`. Plain broadcasts are checked by cluster messaging itself.
   * @default 1 MiB
   */
  maxPacketBytes?: number;
}

/** Defaults of `ClusterSocketIoAdapterOptions`. */
export const CLUSTER_SOCKET_IO_DEFAULTS = Object.freeze({
  /** One topic family for every socket.io server of the app. */
  topicPrefix: 'socket.io',
  /** socket.io-adapter's own default; cluster events make it a fallback only. */
  heartbeatInterval: 5_000,
  /** socket.io-adapter's own default: two missed heartbeats. */
  heartbeatTimeout: 10_000,
  /** Cluster messaging's default `maxPayloadBytes`. */
  maxPacketBytes: 1024 * 1024,
});

const OFFSET: Promise<Offset> = Promise.resolve('');
const DONE: Promise<void> = Promise.resolve();
/** Second greeting of a member that joined, ms after the join. */
const REGREET_MS = 1_000;

/** The namespace an adapter serves (socket.io's `Namespace`, kept structural). */
interface AdapterNamespace {
  readonly name: string;
  /** The socket.io server, whose `engine` is the engine.io server once attached. */
  readonly server?: { readonly engine?: unknown };
}

/**
 * Broadcast options as they travel. An empty `except` or `flags` is left out (most broadcasts
 * have neither): the base class's decoding reads a missing one as empty, and every broadcast
 * is JSON-encoded on the sender and decoded on each member.
 */
function encodeOptions(opts: BroadcastOptions): {
  rooms: Room[];
  except?: Room[];
  flags?: NonNullable<BroadcastOptions['flags']>;
} {
  const encoded: { rooms: Room[]; except?: Room[]; flags?: BroadcastOptions['flags'] } = {
    rooms: [...opts.rooms],
  };
  if (opts.except !== undefined && opts.except.size > 0) encoded.except = [...opts.except];
  if (opts.flags !== undefined && Object.keys(opts.flags).length > 0) encoded.flags = opts.flags;
  return encoded;
}

function isAdapterMessage(value: unknown): value is ClusterMessage | ClusterResponse {
  if (value === null || typeof value !== 'object') return false;
  const { uid, nsp, type } = value as Record<string, unknown>;
  return typeof uid === 'string' && typeof nsp === 'string' && typeof type === 'number';
}

/**
 * socket.io adapter over the cluster: what `@socket.io/redis-adapter` does with a Redis
 * server, done over the links every member already has.
 *
 * It is socket.io-adapter's own `ClusterAdapterWithHeartbeat` (the base of the Redis Streams
 * and Postgres adapters), so broadcasts, rooms, `except`, `socketsJoin` / `socketsLeave` /
 * `disconnectSockets`, `fetchSockets`, `serverSideEmit` with acknowledgements and broadcasts
 * with acknowledgements keep socket.io's semantics. This class adds:
 *
 * - **Transport:** each namespace is one cluster topic (`socket.io:/chat`); a message goes to
 *   every member with one `ClusterService.publish()` (one write per link, so each member gets
 *   each broadcast once and delivers it to its local sockets once); a response goes back to
 *   the asking member only, with `ClusterService.send()`.
 * - **Membership from the cluster:** when a member joins, the adapters greet it at once (no
 *   wait for a heartbeat); when it leaves or goes down (a crash is seen as soon as its link
 *   closes), its adapters are dropped, so a pending `fetchSockets()` or `serverSideEmit`
 *   acknowledgement resolves with the answers it has instead of waiting for the timeout.
 * - **Clear errors at the call:** a packet that cannot be sent to the other members (larger
 *   than the cluster's `maxPayloadBytes`, not JSON-serialisable) makes `emit()` throw a
 *   `PayloadError` before any socket, local or remote, receives it.
 * - **Binary data:** `Buffer`s, `ArrayBuffer`s and typed arrays inside packets survive the
 *   trip (base64 inside the JSON frame) and reach remote sockets as binary attachments.
 * - **One write per client per burst:** the packets engine.io flushes to a WebSocket client
 *   at once leave in one `writev` instead of one system call per frame
 *   (`batchWebSocketWrites`).
 *
 * Not supported: connection state recovery (it needs persisted offsets, which the cluster
 * does not keep). Use through `ClusterIoAdapter` (Nest) or `createClusterAdapter()`.
 */
export class ClusterSocketIoAdapter extends ClusterAdapterWithHeartbeat {
  /** Set by the base class (typed `any` there). */
  declare readonly nsp: AdapterNamespace;
  private readonly logger = new Logger(ClusterSocketIoAdapter.name);
  private readonly rateLimited = new RateLimitedLogger(this.logger, 10_000);
  private readonly topic: string;
  private readonly maxPacketBytes: number;
  /** Adapter ids seen from each member, to drop them when the member leaves. */
  private readonly uidsByNode = new Map<string, Set<ServerId>>();
  private readonly nodeByUid = new Map<ServerId, string>();
  private readonly subscriptions: Subscription[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    nsp: AdapterNamespace,
    private readonly cluster: ClusterService,
    options: ClusterSocketIoAdapterOptions = {},
  ) {
    const resolved = { ...CLUSTER_SOCKET_IO_DEFAULTS, ...stripUndefined(options) };
    super(nsp, {
      heartbeatInterval: resolved.heartbeatInterval,
      heartbeatTimeout: resolved.heartbeatTimeout,
    });
    this.topic = `${resolved.topicPrefix}:${nsp.name}`;
    this.maxPacketBytes = resolved.maxPacketBytes;
    this.subscriptions.push(
      cluster
        .subscribe<WireMessage>(this.topic)
        .subscribe((message) => this.onClusterMessage(message)),
      cluster.events$.subscribe((event) => this.onClusterEvent(event)),
    );
  }

  /**
   * Broadcasts to the matching sockets of every member. The packet goes to the other members
   * first, synchronously: when it cannot be encoded the call throws and nobody receives it.
   * @throws PayloadError when the packet is too large or not JSON-serialisable
   */
  override broadcast(packet: unknown, opts: BroadcastOptions): Promise<void> {
    if (!opts.flags?.local) {
      // Straight to doPublish: the base class's publish() adds a promise and a microtask per
      // broadcast for an error doPublish never reports (it throws synchronously instead). Its
      // heartbeat runs on its own timer meanwhile, one message per interval.
      void this.doPublish({
        uid: this.uid,
        nsp: this.nsp.name,
        type: MessageType.BROADCAST,
        // socket.io-adapter types `except` and `flags` as always there; its decoding is not.
        data: { packet, opts: encodeOptions(opts) as Required<ReturnType<typeof encodeOptions>> },
      });
    }
    Adapter.prototype.broadcast.call(this, packet, opts);
    return DONE;
  }

  /**
   * Broadcasts with acknowledgements; socket.io calls `ack` once per client, on every member.
   * @throws PayloadError when the packet is too large or not JSON-serialisable
   */
  override broadcastWithAck(
    packet: unknown,
    opts: BroadcastOptions,
    clientCountCallback: (clientCount: number) => void,
    ack: (...args: unknown[]) => void,
  ): void {
    if (!opts.flags?.local) this.assertEncodable(packet);
    super.broadcastWithAck(packet, opts, clientCountCallback, ack);
  }

  /**
   * Emits to the other members' `io.on(event)` listeners; with an acknowledgement callback,
   * it is called with the answers of every member that answered (a member that leaves or
   * crashes meanwhile is not waited for).
   * @throws PayloadError when the arguments are too large or not JSON-serialisable
   */
  override serverSideEmit(packet: unknown[]): Promise<unknown> {
    const last = packet[packet.length - 1];
    const ack =
      typeof last === 'function'
        ? (last as (err: Error | null, responses: unknown[]) => void)
        : undefined;
    this.assertEncodable(ack ? packet.slice(0, -1) : packet);
    return super.serverSideEmit(packet).catch((error: unknown) => {
      this.rateLimited.warn(
        'server-side-emit',
        `serverSideEmit on ${this.topic} failed: ${String(error)}`,
      );
      ack?.(error instanceof Error ? error : new Error(String(error)), []);
    });
  }

  /** socket.io adds a socket to its rooms as it connects: its engine is attached by then. */
  override addAll(id: string, rooms: Set<Room>): Promise<void> | void {
    batchWebSocketWrites(this.nsp.server?.engine);
    return super.addAll(id, rooms);
  }

  override close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      super.close();
    } catch (error) {
      // The cluster may already be shut down: the other members see this node leave anyway.
      this.logger.debug(`${this.topic}: goodbye not sent: ${String(error)}`);
    }
    for (const subscription of this.subscriptions.splice(0)) subscription.unsubscribe();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  protected override doPublish(message: ClusterMessage): Promise<Offset> {
    // The base class ignores its own messages: this node has delivered locally already.
    const result = this.cluster.publish(this.topic, toWire(this.topic, message), {
      includeSelf: false,
    });
    for (const { node, reason } of result.failed) {
      this.rateLimited.warn(
        `publish:${node}`,
        `${this.topic}: a socket.io message (type ${message.type}) did not reach ${node} (${reason})`,
      );
    }
    return OFFSET;
  }

  protected override doPublishResponse(
    requesterUid: ServerId,
    response: ClusterResponse,
  ): Promise<void> {
    const node = this.nodeByUid.get(requesterUid);
    if (node === undefined)
      return Promise.reject(new Error(`unknown socket.io adapter ${requesterUid}`));
    try {
      this.cluster.send(node, this.topic, toWire(this.topic, response));
    } catch (error) {
      if (!(error instanceof PayloadError)) return Promise.reject(error);
      // Answer anyway, so that the asking member does not wait for its timeout.
      this.rateLimited.warn(
        `response:${response.type}`,
        `${this.topic}: answer to ${node} replaced by an empty one: ${error.message}`,
      );
      try {
        this.cluster.send(node, this.topic, toWire(this.topic, emptyResponse(response)));
      } catch (second) {
        return Promise.reject(second);
      }
    }
    return Promise.resolve();
  }

  private assertEncodable(packet: unknown): void {
    let bytes: number;
    try {
      bytes = Buffer.byteLength(JSON.stringify(toWire(this.topic, packet)) ?? '');
    } catch (error) {
      if (error instanceof PayloadError) throw error;
      throw new PayloadError(
        `socket.io packet on "${this.topic}" is not JSON-serialisable: ${String(error)}`,
        this.topic,
        'not-encodable',
        { cause: error },
      );
    }
    if (bytes > this.maxPacketBytes) {
      throw new PayloadError(
        `socket.io packet on "${this.topic}" is ${bytes} bytes encoded, over the limit of ${this.maxPacketBytes}`,
        this.topic,
        'too-large',
        { bytes, limitBytes: this.maxPacketBytes },
      );
    }
  }

  private onClusterMessage({ payload, from }: ReceivedClusterMessage<WireMessage>): void {
    if (this.closed) return;
    try {
      const message =
        payload !== null && typeof payload === 'object' ? fromWire(payload) : undefined;
      if (!isAdapterMessage(message)) {
        this.rateLimited.warn(
          `malformed:${from}`,
          `${this.topic}: dropped a malformed socket.io message from ${from}`,
        );
        return;
      }
      if (message.uid === this.uid) return;
      this.remember(message.uid, from);
      this.onMessage(message as ClusterMessage);
    } catch (error) {
      this.rateLimited.warn(
        `failed:${from}`,
        `${this.topic}: a socket.io message from ${from} could not be handled: ${String(error)}`,
      );
    }
  }

  private greet(node: string): void {
    if (this.closed || !this.cluster.members().some((m) => m.name === node)) return;
    try {
      this.cluster.send(
        node,
        this.topic,
        toWire(this.topic, {
          uid: this.uid,
          nsp: this.nsp.name,
          type: MessageType.INITIAL_HEARTBEAT,
        }),
      );
    } catch (error) {
      this.logger.debug(`${this.topic}: greeting to ${node} not sent: ${String(error)}`);
    }
  }

  private remember(uid: ServerId, node: string): void {
    const known = this.nodeByUid.get(uid);
    if (known === node) return;
    if (known !== undefined) this.uidsByNode.get(known)?.delete(uid);
    this.nodeByUid.set(uid, node);
    let uids = this.uidsByNode.get(node);
    if (!uids) {
      uids = new Set();
      this.uidsByNode.set(node, uids);
    }
    uids.add(uid);
  }

  private onClusterEvent(event: ClusterEvent): void {
    if (this.closed) return;
    const node = event.member.name;
    if (event.type === 'join' || event.type === 'reachable') {
      // Greet the new member now: it answers with a heartbeat, so both know each other at once.
      // Once more a little later: a frame sent while two nodes settle on one link can be lost.
      this.greet(node);
      const again = setTimeout(() => {
        this.timers.delete(again);
        this.greet(node);
      }, REGREET_MS);
      again.unref();
      this.timers.add(again);
      return;
    }
    const uids = this.uidsByNode.get(node);
    if (!uids) return;
    this.uidsByNode.delete(node);
    for (const uid of uids) {
      this.nodeByUid.delete(uid);
      // The base class's own "adapter closed" path: pending requests stop waiting for it.
      this.onMessage({ uid, nsp: this.nsp.name, type: MessageType.ADAPTER_CLOSE });
    }
  }
}

/** The same response with nothing in it (the original could not be encoded). */
function emptyResponse(response: ClusterResponse): ClusterResponse {
  switch (response.type) {
    case MessageType.FETCH_SOCKETS_RESPONSE:
      return { ...response, data: { requestId: response.data.requestId, sockets: [] } };
    case MessageType.SERVER_SIDE_EMIT_RESPONSE:
    case MessageType.BROADCAST_ACK:
      return { ...response, data: { requestId: response.data.requestId, packet: null } };
    default:
      return response;
  }
}

function stripUndefined<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(options).filter(([, value]) => value !== undefined),
  ) as Partial<T>;
}

/**
 * An adapter constructor for `io.adapter(...)`, for plain socket.io servers:
 *
 * ```ts
 * const io = new Server(httpServer);
 * io.adapter(createClusterAdapter(app.get(ClusterService)));
 * ```
 */
export function createClusterAdapter(
  cluster: ClusterService,
  options: ClusterSocketIoAdapterOptions = {},
): (nsp: AdapterNamespace) => ClusterSocketIoAdapter {
  // A plain function, not an arrow: socket.io calls it with `new`, as the Redis adapter's.
  return function clusterAdapter(nsp: AdapterNamespace): ClusterSocketIoAdapter {
    return new ClusterSocketIoAdapter(nsp, cluster, options);
  };
}
