import { Logger } from '@nestjs/common';
import { Observable, type Subscriber } from 'rxjs';
import { BackpressureError } from '../errors/backpressure.error.js';
import { ClusterError } from '../errors/cluster.error.js';
import { DuplicateHandlerError } from '../errors/duplicate-handler.error.js';
import { MemberGoneError } from '../errors/member-gone.error.js';
import { MessagingClosedError } from '../errors/messaging-closed.error.js';
import { NoHandlerError } from '../errors/no-handler.error.js';
import { NotAMemberError } from '../errors/not-a-member.error.js';
import { RemoteHandlerError } from '../errors/remote-handler.error.js';
import { RequestTimeoutError } from '../errors/request-timeout.error.js';
import type {
  ClusterMessage,
  ClusterMessagingOptions,
  PublishOptions,
  PublishResult,
  RequestHandler,
  RequestOptions,
} from './cluster-message.interface.js';
import {
  decodeMessageFrame,
  decodeReplyErrorFrame,
  decodeReplyFrame,
  decodeRequestFrame,
  encodeMessageFrame,
  encodePayload,
  encodeReplyErrorFrame,
  encodeReplyFrame,
  encodeRequestFrame,
  encodeTopic,
  MessagingFrameType,
  parseJson,
  ReplyErrorCode,
} from './message-codec.js';
import type { PeerChannel } from './peer-channel.interface.js';
import { RateLimitedLogger } from '../logging/rate-limited-logger.js';

/** Defaults of `ClusterMessagingOptions`. */
export const MESSAGING_DEFAULTS = Object.freeze({
  /** 1 MiB: well under the link's 16 MiB frame limit, large enough for any sane message. */
  maxPayloadBytes: 1024 * 1024,
  /** 5 s: the failure timeout, so a dead peer is noticed about when the request gives up. */
  defaultRequestTimeoutMs: 5_000,
});

interface PendingRequest {
  readonly node: string;
  readonly topic: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

const EMPTY = Buffer.alloc(0);
const MAX_REQUEST_ID = 0xffff_ffff;

/**
 * Pub/sub and request/reply between the members of a cluster, over a `PeerChannel`.
 *
 * - `publish(topic, payload)` reaches every subscriber of `topic` on every member, the
 *   publishing node included (locally asynchronously, in publish order). A member whose link
 *   write buffer is full is reported in `PublishResult.failed` and never blocks the others.
 * - `send(node, topic, payload)` reaches the subscribers of `topic` on one member (self allowed).
 * - `request(node, topic, payload)` calls the handler registered with `handle(topic, fn)` on
 *   one member and resolves with its return value. It rejects with `RequestTimeoutError`,
 *   `MemberUnreachableError` (at once when it is unreachable from this node; nothing sent),
 *   `MemberGoneError` (at once when the member leaves, goes down or becomes unreachable from
 *   this node while the request waits; `unreachable: true` for the last), `RemoteHandlerError`
 *   (the handler threw) or `NoHandlerError`.
 *
 * Ordering: messages from one sender to one receiver arrive in the order they were sent
 * (frames are written to the link's TCP stream in call order and dispatched in arrival order).
 *
 * Encoding: a small binary header (topic, timestamp or request id) followed by the payload as
 * UTF-8 JSON text; see `MessagingFrameType` for the layouts. JSON keeps the wire readable and
 * independent of the Node.js version of each member (a rolling deploy may mix versions, which
 * `v8.serialize` does not promise to survive). A payload JSON cannot represent (BigInt,
 * cycles, a function, symbol or `undefined` at the top level) or larger than `maxPayloadBytes`
 * fails at the call with a `PayloadError` and never reaches a link; local delivery goes
 * through the same encoding, so a local subscriber sees exactly what a remote one sees.
 *
 * Incoming frames that cannot be decoded are dropped and logged (rate-limited).
 */
export class ClusterMessaging {
  private readonly logger = new Logger(ClusterMessaging.name);
  private readonly rateLimited = new RateLimitedLogger(this.logger, 10_000);
  private readonly maxPayloadBytes: number;
  private readonly defaultRequestTimeoutMs: number;
  private readonly subscribers = new Map<string, Set<Subscriber<ClusterMessage<unknown>>>>();
  private readonly handlers = new Map<string, RequestHandler>();
  private readonly pending = new Map<number, PendingRequest>();
  private readonly pendingByNode = new Map<string, Set<number>>();
  private readonly localQueue: ClusterMessage<unknown>[] = [];
  private readonly unregister: (() => void)[] = [];
  private localDrainScheduled = false;
  private nextRequestId = 1;
  private closed = false;

  constructor(
    private readonly channel: PeerChannel,
    options: ClusterMessagingOptions = {},
  ) {
    this.maxPayloadBytes = positive(
      options.maxPayloadBytes,
      MESSAGING_DEFAULTS.maxPayloadBytes,
      'maxPayloadBytes',
    );
    this.defaultRequestTimeoutMs = positive(
      options.defaultRequestTimeoutMs,
      MESSAGING_DEFAULTS.defaultRequestTimeoutMs,
      'defaultRequestTimeoutMs',
    );
    const on = (type: number, handler: (from: string, frame: Buffer) => void): void => {
      this.unregister.push(
        channel.onFrame(type, (from, frame) => {
          try {
            handler(from, frame);
          } catch (error) {
            this.dropFrame(type, from, error);
          }
        }),
      );
    };
    on(MessagingFrameType.PUBLISH, (from, frame) =>
      this.onMessage(MessagingFrameType.PUBLISH, from, frame),
    );
    on(MessagingFrameType.SEND, (from, frame) =>
      this.onMessage(MessagingFrameType.SEND, from, frame),
    );
    on(MessagingFrameType.REQUEST, (from, frame) => this.onRequest(from, frame));
    on(MessagingFrameType.REPLY, (from, frame) => this.onReply(from, frame));
    on(MessagingFrameType.REPLY_ERROR, (from, frame) => this.onReplyError(from, frame));
    this.unregister.push(
      channel.onMemberGone((name, unreachable) => this.onMemberGone(name, unreachable === true)),
    );
  }

  /**
   * Publishes `payload` on `topic` to every member, self included unless
   * `options.includeSelf` is `false`.
   * @throws PayloadError when the payload cannot be encoded or is too large (nothing is sent)
   * @throws MessagingClosedError after `close()`
   */
  publish<T>(topic: string, payload: T, options: PublishOptions = {}): PublishResult {
    const includeSelf = options.includeSelf !== false;
    this.assertOpen(topic);
    const topicBytes = encodeTopic(topic);
    const body = encodePayload(topic, payload, this.maxPayloadBytes);
    const at = Date.now();
    const frame = encodeMessageFrame(topicBytes, at, body);
    const self = this.channel.selfName;
    const result: PublishResult = { delivered: includeSelf ? [self] : [], failed: [] };
    for (const node of this.channel.memberNames()) {
      if (node === self) continue;
      try {
        if (this.channel.sendFrame(node, MessagingFrameType.PUBLISH, frame)) {
          result.delivered.push(node);
        } else {
          result.failed.push({ node, reason: 'backpressure' });
          this.rateLimited.warn(
            `backpressure:${node}`,
            `write buffer of the link to ${node} is full: a published "${topic}" was not sent to it`,
          );
        }
      } catch (error) {
        if (!(error instanceof NotAMemberError)) throw error;
        result.failed.push({ node, reason: 'not-a-member' });
      }
    }
    for (const node of this.channel.unreachableNames?.() ?? [])
      result.failed.push({ node, reason: 'unreachable' });
    if (includeSelf) this.enqueueLocal(topic, body, self, at);
    return result;
  }

  /**
   * Emits every message on `topic` that reaches this node (from `publish()` on any member,
   * or `send()` addressed to this node). Completes on `close()`.
   */
  subscribe<T>(topic: string): Observable<ClusterMessage<T>> {
    return new Observable<ClusterMessage<T>>((subscriber) => {
      if (this.closed) {
        subscriber.complete();
        return undefined;
      }
      const typed = subscriber as unknown as Subscriber<ClusterMessage<unknown>>;
      let set = this.subscribers.get(topic);
      if (!set) {
        set = new Set();
        this.subscribers.set(topic, set);
      }
      set.add(typed);
      return () => {
        const current = this.subscribers.get(topic);
        if (!current) return;
        current.delete(typed);
        if (current.size === 0) this.subscribers.delete(topic);
      };
    });
  }

  /**
   * Sends `payload` on `topic` to the subscribers on one member (`node` may be this node).
   * @throws PayloadError when the payload cannot be encoded or is too large (nothing is sent)
   * @throws NotAMemberError when `node` is not a current member (`MemberUnreachableError` when
   *   it is unreachable from this node)
   * @throws BackpressureError when the link's write buffer to `node` is full
   * @throws MessagingClosedError after `close()`
   */
  send<T>(node: string, topic: string, payload: T): void {
    this.assertOpen(topic);
    const topicBytes = encodeTopic(topic);
    const body = encodePayload(topic, payload, this.maxPayloadBytes);
    const at = Date.now();
    if (node === this.channel.selfName) {
      this.enqueueLocal(topic, body, node, at);
      return;
    }
    if (
      !this.channel.sendFrame(
        node,
        MessagingFrameType.SEND,
        encodeMessageFrame(topicBytes, at, body),
      )
    ) {
      throw new BackpressureError(node, topic);
    }
  }

  /**
   * Calls the handler of `topic` on `node` (this node allowed) and resolves with its reply.
   * Rejects with `PayloadError` (before anything is sent), `NotAMemberError`,
   * `BackpressureError`, `RequestTimeoutError`, `MemberGoneError`, `NoHandlerError`,
   * `RemoteHandlerError` or `MessagingClosedError`.
   */
  request<R = unknown, T = unknown>(
    node: string,
    topic: string,
    payload: T,
    options: RequestOptions = {},
  ): Promise<R> {
    try {
      this.assertOpen(topic);
      const timeoutMs = positive(options.timeoutMs, this.defaultRequestTimeoutMs, 'timeoutMs');
      const topicBytes = encodeTopic(topic);
      const body = encodePayload(topic, payload, this.maxPayloadBytes);
      if (node === this.channel.selfName) {
        return this.requestSelf<R>(topic, body, timeoutMs);
      }
      const id = this.allocateRequestId();
      if (
        !this.channel.sendFrame(
          node,
          MessagingFrameType.REQUEST,
          encodeRequestFrame(id, topicBytes, body),
        )
      ) {
        throw new BackpressureError(node, topic);
      }
      return new Promise<R>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.settle(id);
          reject(new RequestTimeoutError(node, topic, timeoutMs));
        }, timeoutMs);
        timer.unref();
        this.pending.set(id, {
          node,
          topic,
          resolve: resolve as (value: unknown) => void,
          reject,
          timer,
        });
        let ids = this.pendingByNode.get(node);
        if (!ids) {
          ids = new Set();
          this.pendingByNode.set(node, ids);
        }
        ids.add(id);
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Registers the handler of requests on `topic` on this node; its return value (or resolved
   * value) is the reply, a throw or rejection reaches the caller as `RemoteHandlerError`.
   * Returns the unregister function.
   * @throws DuplicateHandlerError when `topic` already has a handler on this node
   */
  handle<T = unknown, R = unknown>(topic: string, fn: RequestHandler<T, R>): () => void {
    this.assertOpen(topic);
    encodeTopic(topic);
    if (this.handlers.has(topic)) {
      throw new DuplicateHandlerError(topic);
    }
    const handler = fn as RequestHandler;
    this.handlers.set(topic, handler);
    return () => {
      if (this.handlers.get(topic) === handler) this.handlers.delete(topic);
    };
  }

  /**
   * Stops messaging: unregisters from the channel, rejects pending requests with
   * `MessagingClosedError`, completes every subscription and drops queued local messages.
   * Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.unregister.splice(0)) off();
    for (const [id, request] of [...this.pending]) {
      this.settle(id);
      request.reject(new MessagingClosedError(request.topic));
    }
    this.handlers.clear();
    this.localQueue.length = 0;
    const all = [...this.subscribers.values()].flatMap((set) => [...set]);
    this.subscribers.clear();
    for (const subscriber of all) subscriber.complete();
  }

  private assertOpen(topic: string): void {
    if (this.closed) throw new MessagingClosedError(topic);
  }

  private allocateRequestId(): number {
    let id = this.nextRequestId;
    while (this.pending.has(id)) id = id >= MAX_REQUEST_ID ? 1 : id + 1;
    this.nextRequestId = id >= MAX_REQUEST_ID ? 1 : id + 1;
    return id;
  }

  /** Removes a pending request and its timer; returns it if it was still pending. */
  private settle(id: number): PendingRequest | undefined {
    const request = this.pending.get(id);
    if (!request) return undefined;
    this.pending.delete(id);
    clearTimeout(request.timer);
    const ids = this.pendingByNode.get(request.node);
    ids?.delete(id);
    if (ids?.size === 0) this.pendingByNode.delete(request.node);
    return request;
  }

  private enqueueLocal(topic: string, body: Buffer, from: string, at: number): void {
    if (!this.subscribers.has(topic)) return;
    const payload = JSON.parse(body.toString('utf8')) as unknown;
    this.localQueue.push({ topic, payload, from, at });
    if (!this.localDrainScheduled) {
      this.localDrainScheduled = true;
      queueMicrotask(() => this.drainLocal());
    }
  }

  private drainLocal(): void {
    this.localDrainScheduled = false;
    // Messages queued while draining (a subscriber that publishes) are delivered in this pass.
    for (let i = 0; i < this.localQueue.length; i++) {
      this.deliver(this.localQueue[i]);
    }
    this.localQueue.length = 0;
  }

  private deliver(message: ClusterMessage<unknown>): void {
    const set = this.subscribers.get(message.topic);
    if (!set) return;
    for (const subscriber of [...set]) subscriber.next(message);
  }

  private onMessage(type: number, from: string, frame: Buffer): void {
    const { topic, at, json } = decodeMessageFrame(type, frame);
    if (!this.subscribers.has(topic)) return;
    this.deliver({ topic, payload: parseJson(type, json), from, at });
  }

  private onRequest(from: string, frame: Buffer): void {
    const { id, topic, json } = decodeRequestFrame(frame);
    const payload = parseJson(MessagingFrameType.REQUEST, json);
    const handler = this.handlers.get(topic);
    if (!handler) {
      this.reply(from, topic, MessagingFrameType.REPLY_ERROR, () =>
        encodeReplyErrorFrame(id, ReplyErrorCode.NO_HANDLER, {
          name: 'NoHandlerError',
          message: '',
        }),
      );
      return;
    }
    // The handler runs now, not a microtask later: a synchronous one is answered in this very
    // turn, an asynchronous one when its promise settles.
    let result: unknown;
    try {
      result = handler(payload, from);
    } catch (error) {
      this.answerFailed(from, topic, id, error);
      return;
    }
    if (!isPromiseLike(result)) {
      this.answer(from, topic, id, result);
      return;
    }
    Promise.resolve(result).then(
      (value) => this.answer(from, topic, id, value),
      (error: unknown) => this.answerFailed(from, topic, id, error),
    );
  }

  /** Replies with a handler's value (or, when it cannot be encoded, with the failure). */
  private answer(from: string, topic: string, id: number, value: unknown): void {
    try {
      let body: Buffer;
      try {
        body = value === undefined ? EMPTY : encodePayload(topic, value, this.maxPayloadBytes);
      } catch (error) {
        this.replyFailed(from, topic, id, error);
        return;
      }
      this.reply(from, topic, MessagingFrameType.REPLY, () => encodeReplyFrame(id, body));
    } catch (error) {
      this.logger.error(`reply to "${topic}" from ${from} failed: ${String(error)}`);
    }
  }

  private answerFailed(from: string, topic: string, id: number, error: unknown): void {
    try {
      this.replyFailed(from, topic, id, error);
    } catch (failure) {
      this.logger.error(`reply to "${topic}" from ${from} failed: ${String(failure)}`);
    }
  }

  private replyFailed(from: string, topic: string, id: number, error: unknown): void {
    const { name, message } = describeError(error);
    this.reply(from, topic, MessagingFrameType.REPLY_ERROR, () =>
      encodeReplyErrorFrame(id, ReplyErrorCode.HANDLER_FAILED, { name, message }),
    );
  }

  private reply(to: string, topic: string, type: number, build: () => Buffer): void {
    if (this.closed) return;
    try {
      if (!this.channel.sendFrame(to, type, build())) {
        this.rateLimited.warn(
          `reply-backpressure:${to}`,
          `write buffer of the link to ${to} is full: the reply to "${topic}" was dropped (the caller will time out)`,
        );
      }
    } catch (error) {
      if (error instanceof NotAMemberError) {
        this.logger.debug(`reply to "${topic}" not sent: ${to} is no longer a member`);
        return;
      }
      throw error;
    }
  }

  private onReply(from: string, frame: Buffer): void {
    const { id, json } = decodeReplyFrame(frame);
    const request = this.pending.get(id);
    if (!request || request.node !== from) return;
    const value = json.length === 0 ? undefined : parseJson(MessagingFrameType.REPLY, json);
    this.settle(id);
    request.resolve(value);
  }

  private onReplyError(from: string, frame: Buffer): void {
    const { id, code, name, message } = decodeReplyErrorFrame(frame);
    const request = this.pending.get(id);
    if (!request || request.node !== from) return;
    this.settle(id);
    request.reject(
      code === ReplyErrorCode.NO_HANDLER
        ? new NoHandlerError(from, request.topic)
        : new RemoteHandlerError(from, request.topic, name, message),
    );
  }

  private onMemberGone(name: string, unreachable: boolean): void {
    const ids = this.pendingByNode.get(name);
    if (!ids) return;
    for (const id of [...ids]) {
      const request = this.settle(id);
      request?.reject(new MemberGoneError(name, request.topic, unreachable));
    }
  }

  private async requestSelf<R>(topic: string, body: Buffer, timeoutMs: number): Promise<R> {
    const self = this.channel.selfName;
    const handler = this.handlers.get(topic);
    if (!handler) throw new NoHandlerError(self, topic);
    const payload = JSON.parse(body.toString('utf8')) as unknown;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RequestTimeoutError(self, topic, timeoutMs)), timeoutMs);
      timer.unref();
    });
    try {
      const value = await Promise.race([
        Promise.resolve().then(() => handler(payload, self)),
        timeout,
      ]).catch((error: unknown) => {
        if (error instanceof RequestTimeoutError) throw error;
        const { name, message } = describeError(error);
        throw new RemoteHandlerError(self, topic, name, message);
      });
      if (value === undefined) return undefined as R;
      try {
        return JSON.parse(encodePayload(topic, value, this.maxPayloadBytes).toString('utf8')) as R;
      } catch (error) {
        const { name, message } = describeError(error);
        throw new RemoteHandlerError(self, topic, name, message);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  private dropFrame(type: number, from: string, error: unknown): void {
    this.rateLimited.warn(
      `malformed:${from}:${type}`,
      `dropped a messaging frame (type ${type}) from ${from}: ${(error as Error)?.message ?? String(error)}`,
    );
  }
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new ClusterError(
      `${name} must be a positive number of ${name.endsWith('Ms') ? 'ms' : 'bytes'}, got ${value}`,
    );
  }
  return value;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

function describeError(error: unknown): { name: string; message: string } {
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { name: 'Error', message: String(error) };
}
