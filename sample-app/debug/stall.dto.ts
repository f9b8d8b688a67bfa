import { BadRequestException, Injectable, type PipeTransform } from '@nestjs/common';

/** Longest stall accepted, ms. */
export const MAX_STALL_MS = 30_000;

/** Validates `{"ms": <1..30000>}`. */
@Injectable()
export class StallPipe implements PipeTransform<unknown, { ms: number }> {
  transform(body: unknown): { ms: number } {
    const ms = (body as { ms?: unknown } | null)?.ms;
    if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 1 || ms > MAX_STALL_MS) {
      throw new BadRequestException(`ms must be an integer from 1 to ${MAX_STALL_MS}`);
    }
    return { ms };
  }
}
