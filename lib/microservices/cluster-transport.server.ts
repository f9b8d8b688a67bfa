import { Logger } from '@nestjs/common';
import {
  Server,
  type CustomTransportStrategy,
  type ReadPacket,
  type WritePacket,
} from '@nestjs/microservices';
import type { Subscription } from 'rxjs';
import type { ClusterService } from '../cluster.service.js';
import { RateLimitedLogger } from '../logging/rate-limited-logger.js';
import type { ClusterMessage } from '../messaging/cluster-message.interface.js';
import { ClusterContext } from './cluster.context.js';
import {
  CLUSTER_TRANSPORT,
  DEFAULT_TRANSPORT_NAMESPACE,
  NO_MESSAGE_HANDLER,
  transportTopics,
  type PatternsAnnouncement,
  type TransportTopics,
} from './cluster-transport.constants.js';

/** Options of `ClusterTransport`. */
export interface ClusterTransportOptions {
  /**
   * Transport namespace: servers and clients talk only within one. Use several to keep
   * unrelated sets of handlers apart in one cluster.
   * @default 'default'
   */
  namespace?: string;
  /** Serializer of outgoing replies (Nest's `ConsumerSerializer`). @default identity */
  serializer?: { serialize(value: unknown, options?: Record<string, unknown>): unknown };
  /** Deserializer of incoming packets (Nest's `ConsumerDeserializer`). @default Nest's */
  deserializer?: {
    deserialize(
      value: unknown,
      options?: Record<string, unknown>,
    ): ReadPacket | Promise<ReadPacket>;
  };
}

/** Status of `ClusterTransport` (`server.status`). */
export type ClusterTransportStatus = 'listening' | 'closed';

/**
 * A `@nestjs/microservices` transport over the cluster: `@MessagePattern()` handlers on this
 * member answer `ClusterClientProxy.send()` from any member, and `@EventPattern()` handlers
 * receive every `ClusterClientProxy.emit()`. No broker: requests and events travel over the
 * links of `ClusterService`. Interceptors, pipes, guards and exception filters apply as with
 * Nest's built-in transports (Nest wraps the handlers before they reach a transport).
 *
 * ```ts
 * const app = await NestFactory.create(AppModule); // AppModule imports ClusterModule
 * app.connectMicroservice({ strategy: new ClusterTransport(app.get(ClusterService)) });
 * await app.startAllMicroservices();
 * await app.listen(3000);
 * ```
 *
 * How it works: each server answers one request topic (`nestjs-cluster:ms:<namespace>:rpc`)
 * and tells clients which message patterns it has (on request, and by a publish whenever it
 * starts or stops), so a client sends each request to a member that handles its pattern.
 * A request's reply carries every value the handler's stream emitted, in order, then the end
 * of the stream (or its error), so an `Observable` handler's values all reach the caller
 * (together, when the stream completes). Events are published to every member.
 */
export class ClusterTransport
  extends Server<Record<string, never>, ClusterTransportStatus>
  implements CustomTransportStrategy
{
  override transportId = CLUSTER_TRANSPORT;
  protected override readonly logger = new Logger(ClusterTransport.name);
  private readonly rateLimited = new RateLimitedLogger(this.logger, 10_000);
  private readonly topics: TransportTopics;
  private readonly cleanup: (() => void)[] = [];
  private listening = false;

  constructor(
    private readonly cluster: ClusterService,
    private readonly options: ClusterTransportOptions = {},
  ) {
    super();
    this.topics = transportTopics(options.namespace ?? DEFAULT_TRANSPORT_NAMESPACE);
    this.initializeSerializer(options);
    this.initializeDeserializer(options);
  }

  /** Registers the handlers with the cluster and announces this member's message patterns. */
  listen(callback: (...optionalParams: unknown[]) => unknown): void {
    try {
      this.cleanup.push(
        this.cluster.handle<unknown, WritePacket[]>(this.topics.rpc, (raw, from) =>
          this.onRequest(raw, from),
        ),
        this.cluster.handle<unknown, string[]>(this.topics.patterns, () => this.messagePatterns()),
      );
      const events: Subscription = this.cluster
        .subscribe<unknown>(this.topics.event)
        .subscribe((message) => this.onEvent(message));
      this.cleanup.push(() => events.unsubscribe());
    } catch (error) {
      this.close();
      callback(error);
      return;
    }
    this.listening = true;
    this.announce(this.messagePatterns());
    this._status$.next('listening');
    this.logger.log(
      `listening on the cluster (${this.topics.rpc}): ${this.messagePatterns().length} message pattern(s)`,
    );
    callback();
  }

  /** Withdraws this member's patterns and stops answering. Idempotent. */
  close(): void {
    if (this.listening) this.announce([]);
    this.listening = false;
    for (const off of this.cleanup.splice(0)) off();
    this._status$.next('closed');
  }

  /** Not used by this transport: it has no events of its own. */
  on(): void {
    throw new Error('ClusterTransport has no events; watch ClusterService.events$ instead');
  }

  /** The `ClusterService` this transport runs on. */
  unwrap<T>(): T {
    return this.cluster as T;
  }

  /** Normalised patterns of this server's `@MessagePattern()` handlers, sorted. */
  messagePatterns(): string[] {
    return [...this.messageHandlers]
      .filter(([, handler]) => !handler.isEventHandler)
      .map(([pattern]) => pattern)
      .sort();
  }

  /**
   * The route of an incoming pattern. Nest's own lookup first tries `JSON.parse(pattern)`,
   * which throws, and builds a stack trace, for every plain string pattern such as `'sum'`:
   * a tenth of a busy server's CPU. A pattern that already is the route of a handler (what
   * `ClusterClientProxy` sends) needs no parsing; any other goes through Nest's lookup.
   */
  protected override getRouteFromPattern(pattern: string): string {
    return this.messageHandlers.has(pattern) ? pattern : super.getRouteFromPattern(pattern);
  }

  private announce(patterns: string[]): void {
    try {
      this.cluster.publish<PatternsAnnouncement>(this.topics.patternsChanged, { patterns });
    } catch (error) {
      this.logger.debug(`patterns not announced: ${String(error)}`);
    }
  }

  /** Answers one request; without waiting for a microtask when the deserializer is synchronous. */
  private onRequest(raw: unknown, from: string): Promise<WritePacket[]> {
    let packet: ReadPacket | PromiseLike<ReadPacket>;
    try {
      packet = this.deserializer.deserialize(raw);
    } catch (error) {
      return Promise.reject(error);
    }
    return isPromiseLike(packet)
      ? Promise.resolve(packet).then((resolved) => this.answer(resolved, from))
      : this.answer(packet, from);
  }

  private answer(packet: ReadPacket, from: string): Promise<WritePacket[]> {
    const pattern = this.getPatternAsString(packet.pattern);
    const context = new ClusterContext([from, pattern, metadataOf(packet)]);
    const handler = this.getHandlerByPattern(pattern);
    if (!handler || handler.isEventHandler) {
      return Promise.resolve([this.serialize({ err: NO_MESSAGE_HANDLER, isDisposed: true })]);
    }
    return new Promise<WritePacket[]>((resolve) => {
      const replies: WritePacket[] = [];
      const respond = (data: WritePacket): void => {
        replies.push(this.serialize(data));
        if (data.isDisposed) resolve(replies);
      };
      Promise.resolve(
        this.handleRequest(
          context,
          async () => this.transformToObservable(await handler(packet.data, context)),
          respond,
        ),
      ).catch((error: unknown) => respond({ err: plainError(error), isDisposed: true }));
    });
  }

  private onEvent({ payload, from }: ClusterMessage<unknown>): void {
    void (async () => {
      const packet = await this.deserializer.deserialize(payload);
      const pattern = this.getPatternAsString(packet.pattern);
      if (!this.getHandlerByPattern(pattern)) {
        // Events reach every member; a member without a handler for this one lets it pass.
        this.rateLimited.debug(
          `event:${pattern}`,
          `no @EventPattern handler for "${pattern}" (from ${from})`,
        );
        return;
      }
      await this.handleEvent(
        pattern,
        packet,
        new ClusterContext([from, pattern, metadataOf(packet)]),
      );
    })().catch((error: unknown) =>
      this.rateLimited.warn(
        'event-failed',
        `an event from ${from} could not be handled: ${String(error)}`,
      ),
    );
  }

  private serialize(data: WritePacket): WritePacket {
    const out = data.err instanceof Error ? { ...data, err: plainError(data.err) } : data;
    return this.serializer.serialize(out as never) as WritePacket;
  }
}

function metadataOf(packet: ReadPacket): Record<string, unknown> | undefined {
  return (packet as ReadPacket & { metadata?: Record<string, unknown> }).metadata;
}

/** An `Error` as JSON can carry it (JSON.stringify of an Error is `{}`). */
function plainError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  return { ...error, name: error.name, message: error.message };
}

function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
