import { Module } from '@nestjs/common';
import { RpcController } from './rpc.controller.js';
import { RpcHandlers } from './rpc.handlers.js';

/**
 * Request/reply between nodes: `@ClusterHandle()` handlers (`echo`, `slow`, `fail`) on every
 * node, and `POST /requests` to ask any member's handler from this one.
 */
@Module({
  controllers: [RpcController],
  providers: [RpcHandlers],
})
export class RpcModule {}
