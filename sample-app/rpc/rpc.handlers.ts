import { Injectable } from '@nestjs/common';
import { ClusterHandle, ClusterService } from '../../lib/index.js';

/** Longest wait `slow` accepts, ms: a handler should never hold a request open for long. */
export const MAX_SLOW_MS = 10_000;

/** Reply of `echo`. */
export interface EchoReply {
  echo: unknown;
  /** Node that answered. */
  by: string;
}

/**
 * Request handlers this node offers to every member: `ClusterService.request(node, 'echo', …)`
 * on any node (this one included) calls `echo` here. What a handler returns (or resolves
 * with) is the reply; what it throws reaches the caller as `RemoteHandlerError`.
 */
@Injectable()
export class RpcHandlers {
  constructor(private readonly cluster: ClusterService) {}

  /** Replies with the payload and the name of the node that answered. */
  @ClusterHandle('echo')
  echo(payload: unknown): EchoReply {
    return { echo: payload, by: this.cluster.self.name };
  }

  /** Waits `payload.ms` (0 to 10 000) before replying: a slow handler, to see timeouts. */
  @ClusterHandle('slow')
  async slow(payload: { ms?: unknown } | null): Promise<{ waitedMs: number; by: string }> {
    const ms = payload?.ms;
    if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 0 || ms > MAX_SLOW_MS) {
      throw new RangeError(`slow: ms must be an integer from 0 to ${MAX_SLOW_MS}`);
    }
    const started = Date.now();
    await new Promise((resolve) => setTimeout(resolve, ms).unref());
    return { waitedMs: Date.now() - started, by: this.cluster.self.name };
  }

  /** Always fails with `payload.message`: the caller gets it in a `RemoteHandlerError`. */
  @ClusterHandle('fail')
  fail(payload: { message?: unknown } | null): never {
    const message = typeof payload?.message === 'string' ? payload.message : 'failed on purpose';
    throw new Error(message);
  }
}
