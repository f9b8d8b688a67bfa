import {
  BadRequestException,
  Body,
  Controller,
  Get,
  HttpCode,
  HttpException,
  HttpStatus,
  Inject,
  Post,
  Query,
} from '@nestjs/common';
import { ClientProxy } from '@nestjs/microservices';
import { firstValueFrom, lastValueFrom, toArray } from 'rxjs';
import {
  BackpressureError,
  ClusterError,
  MemberGoneError,
  PayloadError,
  RemoteHandlerError,
  RequestTimeoutError,
} from '../../lib/index.js';
import { NoPatternHandlerError } from '../../lib/microservices/index.js';
import { type ReceivedEvent, ReceivedEvents } from './ms.handlers.js';

/** Injection token of the sample app's `ClusterClientProxy` (see `rpc.module.ts`). */
export const CLUSTER_CLIENT = 'CLUSTER_CLIENT';

/** Longest pattern accepted by `POST /rpc/send`, in characters. */
const MAX_PATTERN_LENGTH = 200;

/** HTTP status for the transport errors a `send()` can fail with. */
const STATUS_OF: [new (...args: never[]) => Error, HttpStatus][] = [
  [NoPatternHandlerError, HttpStatus.NOT_FOUND],
  [RequestTimeoutError, HttpStatus.GATEWAY_TIMEOUT],
  [MemberGoneError, HttpStatus.SERVICE_UNAVAILABLE],
  [BackpressureError, HttpStatus.SERVICE_UNAVAILABLE],
  [PayloadError, HttpStatus.PAYLOAD_TOO_LARGE],
  [RemoteHandlerError, HttpStatus.BAD_GATEWAY],
];

/**
 * Calls `@MessagePattern()` handlers through the `@nestjs/microservices` `ClientProxy` of the
 * cluster transport, and emits events to every member's `@EventPattern()` handlers.
 */
@Controller('rpc')
export class MicroserviceController {
  constructor(
    @Inject(CLUSTER_CLIENT) private readonly client: ClientProxy,
    private readonly received: ReceivedEvents,
  ) {}

  /** `GET /rpc/sum?a=1&b=2` → `{"sum":3,"node":<member that answered>}`. */
  @Get('sum')
  async sum(
    @Query('a') a?: string,
    @Query('b') b?: string,
  ): Promise<{ sum: number; node: string }> {
    const problems = [
      ['a', a],
      ['b', b],
    ]
      .filter(
        ([, value]) =>
          value === undefined || value.trim() === '' || !Number.isFinite(Number(value)),
      )
      .map(([name]) => `${name} must be a number`);
    if (problems.length) throw new BadRequestException(problems);
    return this.call(() => firstValueFrom(this.client.send('sum', { a: Number(a), b: Number(b) })));
  }

  /**
   * `POST /rpc/send {"pattern","data"}` → `{"responses":[…]}`: every value the handler's
   * stream emitted. Errors: 502 with the handler's error (`{"error":"RpcException","remote":…}`),
   * 404 no member handles the pattern, 503 the member went down, 504 timeout, 413 payload.
   */
  @Post('send')
  @HttpCode(HttpStatus.OK)
  async send(@Body() body: unknown): Promise<{ responses: unknown[] }> {
    const { pattern, data } = (typeof body === 'object' && body !== null ? body : {}) as Record<
      string,
      unknown
    >;
    if (typeof pattern !== 'string' || pattern === '' || pattern.length > MAX_PATTERN_LENGTH) {
      throw new BadRequestException([
        `pattern must be a non-empty string of at most ${MAX_PATTERN_LENGTH} characters`,
      ]);
    }
    const responses = await this.call(() =>
      lastValueFrom(this.client.send(pattern, data ?? null).pipe(toArray())),
    );
    return { responses };
  }

  /** `POST /rpc/events {"payload"}`: `emit('sample-event', payload)` to every member. */
  @Post('events')
  @HttpCode(HttpStatus.ACCEPTED)
  async emit(@Body() body: unknown): Promise<{ emitted: true }> {
    const payload =
      (typeof body === 'object' && body !== null
        ? (body as Record<string, unknown>).payload
        : undefined) ?? null;
    await this.call(() =>
      lastValueFrom(this.client.emit('sample-event', payload), { defaultValue: undefined }),
    );
    return { emitted: true };
  }

  /** The `sample-event` events this node's handler received, oldest first. */
  @Get('events')
  events(): ReceivedEvent[] {
    return this.received.list();
  }

  private async call<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      const match = STATUS_OF.find(([type]) => error instanceof type);
      if (match) {
        const { name, message } = error as Error;
        throw new HttpException({ error: name, message }, match[1]);
      }
      if (error instanceof ClusterError || error instanceof HttpException) throw error;
      // What the remote handler's exception filter produced (an RpcException's error).
      throw new HttpException({ error: 'RpcException', remote: error }, HttpStatus.BAD_GATEWAY);
    }
  }
}
