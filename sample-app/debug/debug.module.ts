import { Module } from '@nestjs/common';
import { DebugController } from './debug.controller.js';

/** Test-only routes; see `DebugController`. Imported only when `SAMPLE_DEBUG_ROUTES=true`. */
@Module({ controllers: [DebugController] })
export class DebugModule {}
