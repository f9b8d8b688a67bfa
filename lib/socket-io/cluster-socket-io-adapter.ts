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
import { jsonText } from '../messaging/message-codec.js';
import { batchWebSocketWrites } from './websocket-batching.js';
import {
  batchJson,
  fromWire,
  isWireBatch,
  toWire,
  type WireBatch,
  type WireMessage,
} from './wire-codec.js';

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
/**
 * Largest batch of adapter messages sent as one cluster message, UTF-8 bytes of JSON. A
 * message larger than half of it goes on its own. Well under any sensible `maxPayloadBytes`;
 * a cluster configured below it gets the batch's messages one by one instead.
 */
export const MAX_BATCH_BYTES = 64 * 1024;

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

/** What engine.io is told about a packet socket.io-adapter has encoded. */
interface PacketOptions {
  preEncoded: true;
  volatile?: boolean;
  compress?: boolean;
}

/** A socket as socket.io-adapter's in-memory `broadcast` uses it (socket.io's `Socket`). */
interface AdapterSocket {
  notifyOutgoingListeners?: (packet: unknown) => void;
  readonly client: { writeToEngine(encoded: unknown[], opts: PacketOptions): void };
}

/**
 * socket.io-adapter's own steps of a local broadcast, private in its typings: `_encode` (the
 * socket.io parser, plus the WebSocket frame computed once for every client) and `apply` (the
 * sockets matching rooms and `except`). With them a member delivers a broadcast from the
 * packet text the sender encoded, without decoding and encoding it again. `undefined` if a
 * version of socket.io-adapter lacks them: broadcasts then travel as packets.
 */
const LOCAL_BROADCAST = (():
  | {
      encode: (this: unknown, packet: unknown, opts: PacketOptions) => unknown[];
      apply: (this: unknown, opts: BroadcastOptions, fn: (socket: AdapterSocket) => void) => void;
    }
  | undefined => {
  const base = Adapter.prototype as unknown as Record<string, unknown>;
  const { _encode: encode, apply } = base;
  if (typeof encode !== 'function' || typeof apply !== 'function') return undefined;
  return { encode: encode as never, apply: apply as never };
})();

/** socket.io's EVENT packet type: the only packets sent as encoded text. */
const EVENT = 2;

function packetOptions(flags: BroadcastOptions['flags']): PacketOptions {
  return { preEncoded: true, volatile: flags?.volatile, compress: flags?.compress };
}

/** What socket.io's parser writes before an EVENT packet's JSON data in namespace `nsp`. */
function eventPrefix(nsp: string): string {
  return nsp === '/' ? '2' : `2${nsp},`;
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
 * - **Transport:** each namespace is one cluster topic (`socket.io:/chat`); the messages of
 *   one turn of the event loop go to every member, in order, as one `ClusterService.publish()`
 *   at the end of the turn (one write per link, so each member gets each broadcast once and
 *   delivers it to its local sockets once); a response goes back to the asking member only,
 *   with `ClusterService.send()`, after what was published before it.
 * - **Encoded once:** a broadcast's packet is encoded by socket.io's parser on the sender and
 *   written by every member to its clients as that text (with the WebSocket frame computed
 *   once per member, as socket.io does for its own broadcasts).
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
  /**
   * Adapter messages of the current turn, each JSON text already (encoded when queued, so an
   * error reaches the caller): sent as one cluster message at the end of the turn.
   */
  private outbox: string[] = [];
  private outboxBytes = 0;
  /** The JSON text every encoded broadcast of this adapter starts with. */
  private broadcastHead: string | undefined;
  private flushScheduled = false;
  private readonly flushQueued = (): void => {
    this.flushScheduled = false;
    this.flush();
  };
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
    const event = packet as { type?: unknown; id?: unknown; nsp?: string };
    if (LOCAL_BROADCAST && event.type === EVENT && event.id === undefined) {
      // Encoded once, here: the other members get the packet's text and deliver it as it is.
      event.nsp = this.nsp.name;
      const packetOpts = packetOptions(opts.flags);
      let encoded: unknown[];
      try {
        encoded = LOCAL_BROADCAST.encode.call(this, packet, packetOpts);
      } catch (error) {
        throw this.notEncodable(error);
      }
      if (!opts.flags?.local) {
        const text = encoded.length === 1 ? encoded[0] : undefined;
        if (typeof text === 'string' && text.startsWith(eventPrefix(this.nsp.name))) {
          // The WireMessage { m: { uid, nsp, type, data: { e, opts } } }, strings only.
          this.broadcastHead ??= `{"m":{"uid":${JSON.stringify(this.uid)},"nsp":${JSON.stringify(this.nsp.name)},"type":${MessageType.BROADCAST},"data":{"e":`;
          this.enqueue(
            `${this.broadcastHead}${JSON.stringify(text)},"opts":${JSON.stringify(encodeOptions(opts))}}}}`,
          );
        } else {
          // Binary attachments: the packet itself, its binary values as base64.
          void this.doPublish({
            uid: this.uid,
            nsp: this.nsp.name,
            type: MessageType.BROADCAST,
            data: { packet, opts: encodeOptions(opts) },
          } as unknown as ClusterMessage);
        }
      }
      this.deliverLocally(opts, packet, encoded, packetOpts);
      return DONE;
    }
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
    try {
      super.close();
      this.flush();
    } catch (error) {
      // The cluster may already be shut down: the other members see this node leave anyway.
      this.logger.debug(`${this.topic}: goodbye not sent: ${String(error)}`);
    }
    this.closed = true;
    this.outbox = [];
    for (const subscription of this.subscriptions.splice(0)) subscription.unsubscribe();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  /**
   * Queues the message for every other member; the messages of one turn (a loop of `emit`s,
   * say) leave as one cluster message at its end, in order. Encoded now: a packet that cannot
   * be encoded or is too large throws here, before anyone receives it.
   * @throws PayloadError when the message cannot be encoded or is too large
   */
  protected override doPublish(message: ClusterMessage): Promise<Offset> {
    let json: string;
    try {
      json = JSON.stringify(toWire(this.topic, message));
    } catch (error) {
      throw this.notEncodable(error);
    }
    this.enqueue(json);
    return OFFSET;
  }

  /**
   * Queues the JSON text of a `WireMessage` for the end of the turn (a large one leaves at
   * once, on its own).
   * @throws PayloadError when it is larger than the cluster's `maxPayloadBytes`
   */
  private enqueue(json: string): void {
    const bytes = Buffer.byteLength(json);
    if (bytes > MAX_BATCH_BYTES / 2) {
      // Large: on its own, checked against the cluster's maxPayloadBytes as any publish.
      this.flush();
      this.publishJson(json, bytes);
      return;
    }
    if (this.outboxBytes + bytes + 1 > MAX_BATCH_BYTES) this.flush();
    this.outbox.push(json);
    this.outboxBytes += bytes + 1;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flushQueued);
    }
  }

  protected override doPublishResponse(
    requesterUid: ServerId,
    response: ClusterResponse,
  ): Promise<void> {
    const node = this.nodeByUid.get(requesterUid);
    if (node === undefined)
      return Promise.reject(new Error(`unknown socket.io adapter ${requesterUid}`));
    // What this node published before this answer reaches `node` before it.
    this.flush();
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

  private notEncodable(error: unknown): PayloadError {
    if (error instanceof PayloadError) return error;
    return new PayloadError(
      `socket.io packet on "${this.topic}" is not JSON-serialisable: ${String(error)}`,
      this.topic,
      'not-encodable',
      { cause: error },
    );
  }

  /** Sends the queued messages: one cluster message, or one each when that is refused. */
  private flush(): void {
    if (this.outbox.length === 0) return;
    const items = this.outbox;
    this.outbox = [];
    this.outboxBytes = 0;
    if (items.length === 1) {
      this.publishJson(items[0]);
      return;
    }
    try {
      this.publishJson(batchJson(items));
    } catch (error) {
      if (!(error instanceof PayloadError)) throw error;
      // The cluster's maxPayloadBytes is below MAX_BATCH_BYTES: one by one then.
      for (const item of items) {
        try {
          this.publishJson(item);
        } catch (second) {
          if (!(second instanceof PayloadError)) throw second;
          this.rateLimited.warn('too-large', `${this.topic}: ${second.message}`);
        }
      }
    }
  }

  /**
   * Publishes JSON text made by `toWire` or `batchJson` to every other member (the base class
   * ignores its own messages: this node has delivered locally already).
   * @throws PayloadError when it is larger than the cluster's `maxPayloadBytes`
   */
  private publishJson(json: string, bytes?: number): void {
    let result;
    try {
      result = this.cluster.publish(this.topic, jsonText(json), { includeSelf: false });
    } catch (error) {
      if (error instanceof PayloadError) {
        throw bytes === undefined
          ? error
          : new PayloadError(
              `socket.io packet on "${this.topic}" is ${bytes} bytes encoded, over the cluster's maxPayloadBytes`,
              this.topic,
              'too-large',
              { bytes, cause: error },
            );
      }
      // The cluster is shutting down: the other members see this node leave anyway.
      this.logger.debug(`${this.topic}: not sent: ${String(error)}`);
      return;
    }
    for (const { node, reason } of result.failed) {
      this.rateLimited.warn(
        `publish:${node}`,
        `${this.topic}: socket.io messages did not reach ${node} (${reason})`,
      );
    }
  }

  private assertEncodable(packet: unknown): void {
    let bytes: number;
    try {
      bytes = Buffer.byteLength(JSON.stringify(toWire(this.topic, packet)) ?? '');
    } catch (error) {
      throw this.notEncodable(error);
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

  private onClusterMessage({
    payload,
    from,
  }: ReceivedClusterMessage<WireMessage | WireBatch>): void {
    if (this.closed) return;
    if (isWireBatch(payload)) {
      for (const item of payload.l) {
        if (this.closed) return;
        this.onWireMessage(item, from);
      }
      return;
    }
    this.onWireMessage(payload, from);
  }

  private onWireMessage(payload: unknown, from: string): void {
    try {
      const message =
        payload !== null && typeof payload === 'object'
          ? fromWire(payload as WireMessage)
          : undefined;
      if (!isAdapterMessage(message)) {
        this.rateLimited.warn(
          `malformed:${from}`,
          `${this.topic}: dropped a malformed socket.io message from ${from}`,
        );
        return;
      }
      if (message.uid === this.uid) return;
      this.remember(message.uid, from);
      if (message.type === MessageType.BROADCAST && hasEncodedPacket(message)) {
        this.deliverEncoded(message.nsp, message.data, from);
        return;
      }
      this.onMessage(message as ClusterMessage);
    } catch (error) {
      this.rateLimited.warn(
        `failed:${from}`,
        `${this.topic}: a socket.io message from ${from} could not be handled: ${String(error)}`,
      );
    }
  }

  /** A broadcast that arrived as packet text: delivered as the sender encoded it. */
  private deliverEncoded(nsp: string, data: EncodedBroadcast, from: string): void {
    const prefix = eventPrefix(this.nsp.name);
    const { e: text, opts } = data;
    if (
      nsp !== this.nsp.name ||
      !LOCAL_BROADCAST ||
      !text.startsWith(prefix) ||
      !Array.isArray(opts?.rooms) ||
      (opts.except !== undefined && !Array.isArray(opts.except))
    ) {
      this.rateLimited.warn(
        `malformed:${from}`,
        `${this.topic}: dropped a malformed socket.io broadcast from ${from}`,
      );
      return;
    }
    const flags = opts.flags ?? {};
    const packetOpts = packetOptions(flags);
    const encoded = LOCAL_BROADCAST.encode.call(new PacketText(text), undefined, packetOpts);
    this.deliverLocally(
      { rooms: new Set(opts.rooms), except: new Set(opts.except), flags },
      new EncodedEventPacket(this.nsp.name, text, prefix.length),
      encoded,
      packetOpts,
    );
  }

  /** What socket.io-adapter's own `broadcast` does with an encoded packet, on this node. */
  private deliverLocally(
    opts: BroadcastOptions,
    packet: unknown,
    encoded: unknown[],
    packetOpts: PacketOptions,
  ): void {
    LOCAL_BROADCAST?.apply.call(this, opts, (socket) => {
      socket.notifyOutgoingListeners?.(packet);
      socket.client.writeToEngine(encoded, packetOpts);
    });
  }

  private greet(node: string): void {
    if (this.closed || !this.cluster.members().some((m) => m.name === node)) return;
    this.flush();
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

/** Stands in for the socket.io encoder in `_encode`: the packet is encoded already. */
class PacketText {
  readonly encoder: { encode(): unknown[] };
  constructor(text: string) {
    this.encoder = { encode: () => [text] };
  }
}

/**
 * The packet of a broadcast that arrived as text, for `onAnyOutgoing` listeners: its `data`
 * is decoded only if a socket has such listeners, once for all of them.
 */
class EncodedEventPacket {
  readonly type = EVENT;
  private decoded: unknown;
  constructor(
    readonly nsp: string,
    private readonly text: string,
    private readonly dataOffset: number,
  ) {}

  get data(): unknown {
    return (this.decoded ??= JSON.parse(this.text.slice(this.dataOffset)) as unknown);
  }
}

/** `data` of a broadcast sent as packet text. */
interface EncodedBroadcast {
  /** The packet as socket.io's parser encoded it on the sender. */
  readonly e: string;
  readonly opts: { rooms: Room[]; except?: Room[]; flags?: BroadcastOptions['flags'] };
}

function hasEncodedPacket(
  message: ClusterMessage | ClusterResponse,
): message is ClusterMessage & { data: EncodedBroadcast } {
  const data = (message as { data?: unknown }).data;
  return (
    data !== null && typeof data === 'object' && typeof (data as { e?: unknown }).e === 'string'
  );
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
