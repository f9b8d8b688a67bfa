import { Body, Controller, Logger, Post } from '@nestjs/common';
import { StallPipe } from './stall.dto.js';

/**
 * Test-only routes, mounted when `SAMPLE_DEBUG_ROUTES=true`: they let a test make this node
 * misbehave the way real nodes do. Never enable them where others can reach the app.
 */
@Controller('debug')
export class DebugController {
  private readonly logger = new Logger(DebugController.name);

  /**
   * Blocks the event loop for `ms` (a long GC pause, a CPU-bound request): no heartbeat goes
   * out meanwhile. The failure detector must not blame the peers for the silence afterwards.
   */
  @Post('stall')
  stall(@Body(StallPipe) { ms }: { ms: number }): { stalledMs: number } {
    this.logger.warn(`blocking the event loop for ${ms} ms (POST /debug/stall)`);
    const started = Date.now();
    while (Date.now() - started < ms) {
      // busy wait: nothing else runs on this node meanwhile
    }
    return { stalledMs: Date.now() - started };
  }
}
