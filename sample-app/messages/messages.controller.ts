import { Body, Controller, Get, type MessageEvent, Post, Query, Sse } from '@nestjs/common';
import { map, type Observable } from 'rxjs';
import type { PublishResult } from '../../lib/index.js';
import { type PublishMessageDto, PublishMessagePipe } from './publish-message.dto.js';
import { MessagesService, type ReceivedMessage } from './messages.service.js';

/** Messages returned by `GET /messages`. */
const LIST_LIMIT = 100;

@Controller('messages')
export class MessagesController {
  constructor(private readonly messages: MessagesService) {}

  /** Publishes `payload` on `topic` to every node; answers which members got it. */
  @Post()
  publish(@Body(PublishMessagePipe) body: PublishMessageDto): PublishResult {
    return this.messages.publish(body.topic, body.payload);
  }

  /** The last messages this node received (all topics, or `?topic=`), oldest first. */
  @Get()
  list(@Query('topic') topic?: string): ReceivedMessage[] {
    return this.messages.list(topic || undefined, LIST_LIMIT);
  }

  /** Server-Sent Events: one `message` event per message this node receives. */
  @Sse('events')
  events(): Observable<MessageEvent> {
    return this.messages.received$.pipe(map((data): MessageEvent => ({ type: 'message', data })));
  }
}
