import { ClusterError } from './cluster.error.js';

/** Why a payload was refused before it reached any link. */
export type PayloadErrorReason = 'not-encodable' | 'too-large' | 'invalid-topic';

/**
 * A message, request or reply could not be sent because its payload (or topic) cannot be
 * encoded: it is not JSON-serialisable (BigInt, a cycle, a function, a symbol or `undefined`
 * at the top level), it exceeds `maxPayloadBytes`, or the topic is empty or too long.
 * Thrown at the call; nothing was sent to any member.
 */
export class PayloadError extends ClusterError {
  constructor(
    message: string,
    /** Topic of the refused message. */
    readonly topic: string,
    /** Why the payload was refused. */
    readonly reason: PayloadErrorReason,
    details: { bytes?: number; limitBytes?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: details.cause, retryable: false });
    this.bytes = details.bytes;
    this.limitBytes = details.limitBytes;
  }

  /** Encoded size of the payload in bytes, when it could be encoded. */
  readonly bytes?: number;
  /** The configured `maxPayloadBytes`, for `too-large`. */
  readonly limitBytes?: number;
}
