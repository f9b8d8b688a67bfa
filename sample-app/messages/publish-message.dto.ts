import { BadRequestException, Injectable, type PipeTransform } from '@nestjs/common';

/** Body of `POST /messages`. */
export interface PublishMessageDto {
  /** Topic to publish on, e.g. `greetings`. */
  topic: string;
  /** Any JSON value. */
  payload: unknown;
}

/** Longest topic accepted, in characters. */
export const MAX_TOPIC_LENGTH = 200;

/** Validates the body of `POST /messages`; every problem is reported in one 400. */
@Injectable()
export class PublishMessagePipe implements PipeTransform<unknown, PublishMessageDto> {
  transform(body: unknown): PublishMessageDto {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new BadRequestException(
        'body must be a JSON object like {"topic":"greetings","payload":"hello"}',
      );
    }
    const { topic, payload } = body as Record<string, unknown>;
    const problems: string[] = [];
    if (topic === undefined) problems.push('topic is required (a non-empty string)');
    else if (typeof topic !== 'string' || topic.trim() === '')
      problems.push('topic must be a non-empty string');
    else if (topic.length > MAX_TOPIC_LENGTH)
      problems.push(`topic must be at most ${MAX_TOPIC_LENGTH} characters`);
    if (!('payload' in body)) problems.push('payload is required (any JSON value)');
    if (problems.length) throw new BadRequestException(problems);
    return { topic: topic as string, payload };
  }
}
