import { Body, Controller, HttpCode, HttpException, HttpStatus, Post } from '@nestjs/common';
import {
  BackpressureError,
  ClusterService,
  MemberGoneError,
  MessagingClosedError,
  NoHandlerError,
  NotAMemberError,
  PayloadError,
  RemoteHandlerError,
  RequestTimeoutError,
} from '../../lib/index.js';
import { type SendRequestDto, SendRequestPipe } from './send-request.dto.js';

/** Answer of `POST /requests`. */
export interface RequestAnswer {
  reply: unknown;
  /** Time from sending the request to its reply, ms. */
  ms: number;
}

/** HTTP status for each way `ClusterService.request()` can fail. */
const STATUS_OF: [new (...args: never[]) => Error, HttpStatus][] = [
  [RequestTimeoutError, HttpStatus.GATEWAY_TIMEOUT],
  [RemoteHandlerError, HttpStatus.BAD_GATEWAY],
  [MemberGoneError, HttpStatus.SERVICE_UNAVAILABLE],
  [NotAMemberError, HttpStatus.SERVICE_UNAVAILABLE],
  [BackpressureError, HttpStatus.SERVICE_UNAVAILABLE],
  [MessagingClosedError, HttpStatus.SERVICE_UNAVAILABLE],
  [NoHandlerError, HttpStatus.NOT_FOUND],
  [PayloadError, HttpStatus.BAD_REQUEST],
];

@Controller('requests')
export class RpcController {
  constructor(private readonly cluster: ClusterService) {}

  /**
   * Asks `node`'s handler of `topic` and answers with its reply, or with the error: 504
   * timeout, 502 the handler failed (with its message), 503 the member is gone or unknown,
   * 404 no handler for the topic there. Error bodies are `{"error": <class>, "message"}`.
   */
  @Post()
  @HttpCode(HttpStatus.OK)
  async request(@Body(SendRequestPipe) body: SendRequestDto): Promise<RequestAnswer> {
    const started = performance.now();
    try {
      const reply = await this.cluster.request(body.node, body.topic, body.payload, {
        timeoutMs: body.timeoutMs,
      });
      return { reply, ms: Math.round(performance.now() - started) };
    } catch (error) {
      const match = STATUS_OF.find(([type]) => error instanceof type);
      if (!match) throw error;
      const { name, message } = error as Error;
      throw new HttpException(
        { error: name, message, ms: Math.round(performance.now() - started) },
        match[1],
      );
    }
  }
}
