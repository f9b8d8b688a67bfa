import { Controller, Injectable } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { ClusterService } from '../../lib/index.js';
import { ClusterContext } from '../../lib/microservices/index.js';
import { MAX_SLOW_MS } from './rpc.handlers.js';

/** An event received by this node's `@EventPattern('sample-event')` handler. */
export interface ReceivedEvent {
  payload: unknown;
  from: string;
  receivedAt: string;
}

/** Events kept for `GET /rpc/events`. */
const EVENTS_KEPT = 500;

/** The `sample-event` events this node received, for `GET /rpc/events`. */
@Injectable()
export class ReceivedEvents {
  private readonly events: ReceivedEvent[] = [];

  add(event: ReceivedEvent): void {
    this.events.push(event);
    if (this.events.length > EVENTS_KEPT) this.events.splice(0, this.events.length - EVENTS_KEPT);
  }

  /** Oldest first. */
  list(): ReceivedEvent[] {
    return [...this.events];
  }
}

/**
 * `@nestjs/microservices` handlers this node serves through `ClusterTransport` (connected in
 * `main.ts`): any member's `ClusterClientProxy.send('sum', …)` may be answered here.
 */
@Controller()
export class MicroserviceHandlers {
  constructor(
    private readonly cluster: ClusterService,
    private readonly events: ReceivedEvents,
  ) {}

  /** `{a, b}` → `{sum, node}` (`node`: the member that answered). */
  @MessagePattern('sum')
  sum(@Payload() data: { a?: unknown; b?: unknown } | null): { sum: number; node: string } {
    const { a, b } = data ?? {};
    if (
      typeof a !== 'number' ||
      typeof b !== 'number' ||
      !Number.isFinite(a) ||
      !Number.isFinite(b)
    ) {
      throw new RpcException('sum: a and b must be finite numbers');
    }
    return { sum: a + b, node: this.cluster.self.name };
  }

  /** Throws `RpcException(data.message)`: the caller's observable fails with it. */
  @MessagePattern('fail')
  fail(@Payload() data: { message?: unknown } | null): never {
    throw new RpcException(typeof data?.message === 'string' ? data.message : 'failed on purpose');
  }

  /** Waits `data.ms` (0 to 10 000), then answers `{waitedMs, node}`. */
  @MessagePattern('slow')
  async slow(
    @Payload() data: { ms?: unknown } | null,
  ): Promise<{ waitedMs: number; node: string }> {
    const ms = data?.ms;
    if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 0 || ms > MAX_SLOW_MS) {
      throw new RpcException(`slow: ms must be an integer from 0 to ${MAX_SLOW_MS}`);
    }
    const started = Date.now();
    await new Promise((resolve) => setTimeout(resolve, ms).unref());
    return { waitedMs: Date.now() - started, node: this.cluster.self.name };
  }

  /** Never answers: the caller gets its timeout. */
  @MessagePattern('never')
  never(): Promise<never> {
    return new Promise<never>(() => undefined);
  }

  /** Records `sample-event` events for `GET /rpc/events`. */
  @EventPattern('sample-event')
  onSampleEvent(@Payload() payload: unknown, @Ctx() context: unknown): void {
    const from = (context as ClusterContext).getFrom();
    this.events.add({ payload, from, receivedAt: new Date().toISOString() });
  }
}
