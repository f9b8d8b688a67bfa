import { Logger } from '@nestjs/common';
import {
  ClientProxy,
  type MsPattern,
  type ReadPacket,
  type WritePacket,
} from '@nestjs/microservices';
import { Observable, type Subscription } from 'rxjs';
import type { ClusterService } from '../cluster.service.js';
import { BackpressureError } from '../errors/backpressure.error.js';
import { MemberGoneError } from '../errors/member-gone.error.js';
import { NoHandlerError } from '../errors/no-handler.error.js';
import { NoPatternHandlerError } from '../errors/no-pattern-handler.error.js';
import { RequestTimeoutError } from '../errors/request-timeout.error.js';
import type { ClusterEvent } from '../interfaces/member.interface.js';
import {
  DEFAULT_TRANSPORT_NAMESPACE,
  transportTopics,
  type PatternsAnnouncement,
  type TransportTopics,
} from './cluster-transport.constants.js';

/** Options of `ClusterClientProxy` (also the `options` of a `ClientsModule` entry). */
export interface ClusterClientOptions {
  /** The app's `ClusterService`. */
  cluster: ClusterService;
  /** Transport namespace; the same as the servers'. @default 'default' */
  namespace?: string;
  /**
   * Time to wait for the reply of one `send()`, ms; then the observable fails with a
   * `RequestTimeoutError`. Nest's built-in clients wait forever; a cluster member can vanish,
   * so this one does not.
   * @default 30000
   */
  timeoutMs?: number;
  /** Time to wait for one member's list of patterns, ms (asked up to 3 times). @default 1000 */
  discoveryTimeoutMs?: number;
  /** Serializer of outgoing packets (Nest's `ProducerSerializer`). @default identity */
  serializer?: { serialize(value: unknown): unknown };
  /** Deserializer of replies (Nest's `ProducerDeserializer`). @default Nest's */
  deserializer?: { deserialize(value: unknown): WritePacket | Promise<WritePacket> };
}

/** Defaults of `ClusterClientOptions`. */
export const CLUSTER_CLIENT_DEFAULTS = Object.freeze({
  /** 30 s: longer than any sane handler, short enough that a stuck member is noticed. */
  timeoutMs: 30_000,
  /** 1 s: a live member answers in milliseconds; a frozen one must not hold up connect(). */
  discoveryTimeoutMs: 1_000,
});

/** Times a member is asked for its patterns before the client waits for its announcement. */
const DISCOVERY_ATTEMPTS = 3;

/** Status of `ClusterClientProxy` (`client.status`). */
export type ClusterClientStatus = 'connected' | 'closed';

/**
 * A `ClientProxy` over the cluster: `send(pattern, data)` is answered by the
 * `@MessagePattern()` handler of a member running `ClusterTransport` (requests are spread
 * round-robin over the members that handle the pattern, this one included), and
 * `emit(pattern, data)` reaches the `@EventPattern()` handlers of every member, once each.
 *
 * ```ts
 * ClientsModule.registerAsync([{
 *   name: 'MATH',
 *   inject: [ClusterService],
 *   useFactory: (cluster: ClusterService) => ({ customClass: ClusterClientProxy, options: { cluster } }),
 * }])
 * // then: constructor(@Inject('MATH') private readonly math: ClientProxy) {}
 * ```
 *
 * Errors of `send()`: what the remote handler's exception filters produced (as with Nest's
 * built-in transports: `{ status: 'error', message }` for an `RpcException('message')`), or
 * `NoPatternHandlerError` (no member handles the pattern), `MemberGoneError` (the member went
 * down or left before replying), `RequestTimeoutError`, `PayloadError` (data too large or not
 * JSON-serialisable; nothing sent), `BackpressureError`.
 */
export class ClusterClientProxy extends ClientProxy<Record<never, never>, ClusterClientStatus> {
  private readonly logger = new Logger(ClusterClientProxy.name);
  private readonly cluster: ClusterService;
  private readonly topics: TransportTopics;
  private readonly timeoutMs: number;
  private readonly discoveryTimeoutMs: number;
  /** Message patterns of each member, as it last said. */
  private readonly patternsByNode = new Map<string, Set<string>>();
  private readonly nextIndex = new Map<string, number>();
  private readonly subscriptions: Subscription[] = [];
  /** Pattern lists being asked for: a request waits for them rather than miss a member. */
  private readonly discovering = new Map<string, Promise<void>>();
  private connecting: Promise<void> | undefined;
  /** True once `connect()` has resolved (until `close()`). */
  private connected = false;
  /** Members handling each pattern, for the `members()` list below; cleared on any change. */
  private readonly candidates = new Map<string, string[]>();
  /** The `members()` list `candidates` was computed from (a new list on every change). */
  private candidatesMembers: readonly unknown[] | undefined;

  constructor(options: ClusterClientOptions) {
    super();
    if (!options?.cluster)
      throw new Error('ClusterClientProxy needs options.cluster (the ClusterService)');
    this.cluster = options.cluster;
    this.topics = transportTopics(options.namespace ?? DEFAULT_TRANSPORT_NAMESPACE);
    this.timeoutMs = options.timeoutMs ?? CLUSTER_CLIENT_DEFAULTS.timeoutMs;
    this.discoveryTimeoutMs =
      options.discoveryTimeoutMs ?? CLUSTER_CLIENT_DEFAULTS.discoveryTimeoutMs;
    this.initializeSerializer(options);
    this.initializeDeserializer(options);
  }

  /** Learns which member handles which message pattern; called by the first `send()`/`emit()`. */
  connect(): Promise<void> {
    this.connecting ??= this.start();
    return this.connecting;
  }

  /** Stops following the members' patterns. */
  close(): void {
    for (const subscription of this.subscriptions.splice(0)) subscription.unsubscribe();
    this.patternsByNode.clear();
    this.candidates.clear();
    this.connected = false;
    this.connecting = undefined;
    this._status$.next('closed');
  }

  /** The `ClusterService` this client runs on. */
  unwrap<T>(): T {
    return this.cluster as T;
  }

  /**
   * Sends a request, as `ClientProxy.send` does. Once connected, the request leaves as soon as
   * the observable is subscribed to: Nest's own `send` first awaits `connect()` again (an
   * async function, a promise and an rxjs `mergeMap` per request), which at one request in
   * flight is a measurable part of the round trip.
   */
  override send<TResult = unknown, TInput = unknown>(
    pattern: unknown,
    data: TInput,
  ): Observable<TResult> {
    if (!this.connected || pattern === null || pattern === undefined || data == null)
      return super.send<TResult, TInput>(pattern, data);
    return new Observable<TResult>((observer) =>
      this.publish(this.createPacket(pattern, data), this.createObserver(observer)),
    );
  }

  /** Members that handle `pattern` (any form `send()` accepts), sorted by name. */
  membersHandling(pattern: unknown): string[] {
    return [...this.candidatesFor(this.normalizePattern(pattern as never))];
  }

  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    let active = true;
    const deliver = (reply: WritePacket): void => {
      if (active) callback(reply);
    };
    if (this.discovering.size > 0) {
      void Promise.all(this.discovering.values()).then(() => {
        if (active) this.dispatchRequest(packet, deliver);
      });
    } else {
      this.dispatchRequest(packet, deliver);
    }
    return () => {
      active = false;
    };
  }

  /**
   * Members that handle the normalised `pattern`, sorted by name. Kept until the patterns of a
   * member or the membership change (requests spread over it need no fresh list each time).
   */
  private candidatesFor(pattern: string): readonly string[] {
    const current = this.cluster.members();
    if (current !== this.candidatesMembers) {
      this.candidates.clear();
      this.candidatesMembers = current;
    }
    const cached = this.candidates.get(pattern);
    if (cached) return cached;
    const members = new Set(current.map((m) => m.name));
    const found = [...this.patternsByNode]
      .filter(([node, patterns]) => members.has(node) && patterns.has(pattern))
      .map(([node]) => node)
      .sort();
    this.candidates.set(pattern, found);
    return found;
  }

  private dispatchRequest(packet: ReadPacket, deliver: (packet: WritePacket) => void): void {
    const pattern = this.normalizePattern(packet.pattern as MsPattern);
    const candidates = this.candidatesFor(pattern);
    if (candidates.length === 0) {
      deliver({
        err: new NoPatternHandlerError(
          pattern,
          this.cluster.members().map((m) => m.name),
        ),
        isDisposed: true,
      });
      return;
    }
    const index = (this.nextIndex.get(pattern) ?? 0) % candidates.length;
    this.nextIndex.set(pattern, index + 1);
    const node = candidates[index];
    let request: Promise<WritePacket[]>;
    try {
      request = this.cluster.request<WritePacket[]>(
        node,
        this.topics.rpc,
        this.serializer.serialize(packet),
        {
          timeoutMs: this.timeoutMs,
        },
      );
    } catch (error) {
      deliver({ err: error, isDisposed: true });
      return;
    }
    request.then(
      (replies) => {
        if (!Array.isArray(replies) || replies.length === 0) {
          deliver({
            err: new Error(`malformed reply from ${node} to "${pattern}"`),
            isDisposed: true,
          });
          return;
        }
        this.deliverReplies(replies, 0, deliver);
      },
      (error: unknown) => deliver({ err: this.describe(error, pattern), isDisposed: true }),
    );
  }

  /**
   * Deserializes and delivers `replies` from `index` on, in order: synchronously while the
   * deserializer is (Nest's is), waiting for it where it returns a promise.
   */
  private deliverReplies(
    replies: readonly WritePacket[],
    index: number,
    deliver: (packet: WritePacket) => void,
  ): void {
    for (let i = index; i < replies.length; i++) {
      const packet = this.deserializer.deserialize(replies[i]);
      if (isPromiseLike(packet)) {
        void Promise.resolve(packet).then(
          (resolved) => {
            deliver(resolved);
            this.deliverReplies(replies, i + 1, deliver);
          },
          (error: unknown) => deliver({ err: error, isDisposed: true }),
        );
        return;
      }
      deliver(packet);
    }
  }

  protected dispatchEvent<T = unknown>(packet: ReadPacket): Promise<T> {
    try {
      this.cluster.publish(this.topics.event, this.serializer.serialize(packet));
      return Promise.resolve(undefined as T);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private async start(): Promise<void> {
    this.subscriptions.push(
      this.cluster
        .subscribe<PatternsAnnouncement>(this.topics.patternsChanged)
        .subscribe(({ payload, from }) => this.setPatterns(from, payload?.patterns)),
      this.cluster.events$.subscribe((event) => this.onClusterEvent(event)),
    );
    await Promise.all(this.cluster.members().map((member) => this.discover(member.name)));
    this.connected = this.subscriptions.length > 0;
    this._status$.next('connected');
  }

  private onClusterEvent(event: ClusterEvent): void {
    this.candidates.clear();
    if (event.type === 'join' || event.type === 'reachable') void this.discover(event.member.name);
    else this.patternsByNode.delete(event.member.name);
  }

  private discover(node: string): Promise<void> {
    const running = this.discovering.get(node);
    if (running) return running;
    const asking = this.askPatterns(node).finally(() => {
      if (this.discovering.get(node) === asking) this.discovering.delete(node);
    });
    this.discovering.set(node, asking);
    return asking;
  }

  private async askPatterns(node: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const patterns = await this.cluster.request<string[]>(node, this.topics.patterns, null, {
          timeoutMs: this.discoveryTimeoutMs,
        });
        this.setPatterns(node, patterns);
        return;
      } catch (error) {
        // A request sent while two nodes are still settling on one link can be lost: ask again.
        const stillThere = this.cluster.members().some((m) => m.name === node);
        if (error instanceof RequestTimeoutError && stillThere && attempt < DISCOVERY_ATTEMPTS)
          continue;
        // No server there yet (it announces its patterns when it starts), or the member left.
        if (!(error instanceof NoHandlerError))
          this.logger.debug(`patterns of ${node} unknown: ${String(error)}`);
        return;
      }
    }
  }

  private setPatterns(node: string, patterns: unknown): void {
    if (!Array.isArray(patterns)) return;
    this.candidates.clear();
    const valid = patterns.filter((p): p is string => typeof p === 'string');
    if (valid.length === 0) this.patternsByNode.delete(node);
    else this.patternsByNode.set(node, new Set(valid));
  }

  /** Cluster errors name the transport's internal topic; say the pattern instead. */
  private describe(error: unknown, pattern: string): unknown {
    if (error instanceof MemberGoneError)
      return new MemberGoneError(error.node, pattern, error.unreachable);
    if (error instanceof RequestTimeoutError)
      return new RequestTimeoutError(error.node, pattern, error.timeoutMs);
    if (error instanceof BackpressureError) return new BackpressureError(error.node, pattern);
    if (error instanceof NoHandlerError) return new NoPatternHandlerError(pattern, [error.node]);
    return error;
  }
}

function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
