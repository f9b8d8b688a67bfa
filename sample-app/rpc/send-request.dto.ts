import { BadRequestException, Injectable, type PipeTransform } from '@nestjs/common';

/** Body of `POST /requests`. */
export interface SendRequestDto {
  /** Member to ask, e.g. `app@10.0.1.5` (may be this node). */
  node: string;
  /** Topic of the handler on that member, e.g. `echo`. */
  topic: string;
  /** Any JSON value. */
  payload: unknown;
  /** Time to wait for the reply, ms; the library's default (5000) when absent. */
  timeoutMs?: number;
}

/** Longest timeout accepted, ms. */
export const MAX_TIMEOUT_MS = 60_000;
/** Longest node name or topic accepted, in characters. */
const MAX_NAME_LENGTH = 200;

/** Validates the body of `POST /requests`; every problem is reported in one 400. */
@Injectable()
export class SendRequestPipe implements PipeTransform<unknown, SendRequestDto> {
  transform(body: unknown): SendRequestDto {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new BadRequestException(
        'body must be a JSON object like {"node":"app@10.0.1.5","topic":"echo","payload":"hi"}',
      );
    }
    const { node, topic, payload, timeoutMs } = body as Record<string, unknown>;
    const problems: string[] = [];
    for (const [field, value] of [
      ['node', node],
      ['topic', topic],
    ] as const) {
      if (value === undefined) problems.push(`${field} is required (a non-empty string)`);
      else if (typeof value !== 'string' || value.trim() === '')
        problems.push(`${field} must be a non-empty string`);
      else if (value.length > MAX_NAME_LENGTH)
        problems.push(`${field} must be at most ${MAX_NAME_LENGTH} characters`);
    }
    if (!('payload' in body)) problems.push('payload is required (any JSON value)');
    if (
      timeoutMs !== undefined &&
      (typeof timeoutMs !== 'number' ||
        !Number.isInteger(timeoutMs) ||
        timeoutMs < 1 ||
        timeoutMs > MAX_TIMEOUT_MS)
    ) {
      problems.push(`timeoutMs must be an integer from 1 to ${MAX_TIMEOUT_MS}`);
    }
    if (problems.length) throw new BadRequestException(problems);
    return {
      node: node as string,
      topic: topic as string,
      payload,
      ...(timeoutMs === undefined ? {} : { timeoutMs: timeoutMs as number }),
    };
  }
}
