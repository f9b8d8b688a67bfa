import { Module } from '@nestjs/common';
import { DashboardController } from './dashboard.controller.js';

/** `GET /`: a self-contained live page over the HTTP API. */
@Module({ controllers: [DashboardController] })
export class DashboardModule {}
