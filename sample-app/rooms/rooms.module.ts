import { Module } from '@nestjs/common';
import { RoomsController } from './rooms.controller.js';
import { RoomsGateway } from './rooms.gateway.js';

/**
 * Socket.IO rooms across the cluster: the `RoomsGateway` (`join`, `leave`) and the HTTP
 * routes under `/rooms`. `main.ts` installs `ClusterIoAdapter`.
 */
@Module({
  controllers: [RoomsController],
  providers: [RoomsGateway],
})
export class RoomsModule {}
