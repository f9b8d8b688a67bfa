import { Module } from '@nestjs/common';
import { ClusterController } from './cluster.controller.js';

/** `GET /cluster` and its live stream `GET /cluster/events`. */
@Module({ controllers: [ClusterController] })
export class ClusterApiModule {}
