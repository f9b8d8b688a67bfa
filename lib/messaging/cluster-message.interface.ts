/** A message received on a topic, from `publish()` or `send()` on any member (self included). */
export interface ClusterMessage<T = unknown> {
  /** Topic the message was published or sent on. */
  readonly topic: string;
  /**
   * The payload, as decoded from its JSON form: what `JSON.parse(JSON.stringify(payload))`
   * gives on the sender (a `Date` arrives as a string, `undefined` properties are dropped).
   * Subscribers on one node share the same decoded object.
   */
  readonly payload: T;
  /** Name of the node that published or sent it. */
  readonly from: string;
  /** Sender's clock (epoch ms) when the message was published or sent. */
  readonly at?: number;
}

/** Why a member did not get a published message. */
export type PublishFailureReason =
  /** The member is unreachable from this node (other members still reach it): nothing sent. */
  | 'unreachable'
  /** The link's write buffer is full (`maxWriteBufferBytes`): the peer is slow or stuck. */
  | 'backpressure'
  /** The member left between the membership snapshot and the write. */
  | 'not-a-member';

/** Options of one `publish()`. */
export interface PublishOptions {
  /**
   * Deliver to this node's own subscribers too (asynchronously, in publish order). A publisher
   * that ignores its own messages (it has already acted on them locally) sets `false` and
   * saves their decoding.
   * @default true
   */
  readonly includeSelf?: boolean;
}

/**
 * Outcome of one `publish()`. `delivered` lists the members the message was queued for (the
 * local node included unless `includeSelf: false`: local subscribers get it asynchronously,
 * in publish order); a member
 * in `failed` did not get it, and publishing never waits for it.
 *
 * "Delivered" means written to the member's link: the link is an ordered TCP stream, so the
 * member receives it unless the link breaks, in which case the member is reported `down`.
 */
export interface PublishResult {
  /** Members the message was queued for, self first (when included). */
  readonly delivered: string[];
  /** Members that did not get the message, with the reason. */
  readonly failed: { readonly node: string; readonly reason: PublishFailureReason }[];
}

/** Options of `ClusterMessaging`. */
export interface ClusterMessagingOptions {
  /** Largest encoded (JSON) payload of a message, request or reply, in bytes. @default 1 MiB */
  maxPayloadBytes?: number;
  /** Timeout of `request()` when the call sets none, ms. @default 5000 */
  defaultRequestTimeoutMs?: number;
}

/** Options of one `request()`. */
export interface RequestOptions {
  /** Time to wait for the reply, ms. @default `defaultRequestTimeoutMs` (5000) */
  timeoutMs?: number;
}

/** A request handler: receives the payload and the requesting node's name; returns the reply. */
export type RequestHandler<T = unknown, R = unknown> = (payload: T, from: string) => R | Promise<R>;
