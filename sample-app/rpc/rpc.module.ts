import { Module } from '@nestjs/common';
import { ClientsModule } from '@nestjs/microservices';
import { ConfigService } from '@nestjs/config';
import { ClusterService } from '../../lib/index.js';
import { ClusterClientProxy } from '../../lib/microservices/index.js';
import { CLUSTER_CLIENT, MicroserviceController } from './ms.controller.js';
import { MicroserviceHandlers, ReceivedEvents } from './ms.handlers.js';
import { RpcController } from './rpc.controller.js';
import { RpcHandlers } from './rpc.handlers.js';

/**
 * Request/reply between nodes, two ways:
 * - `ClusterService`: `@ClusterHandle()` handlers (`echo`, `slow`, `fail`) and `POST /requests`;
 * - `@nestjs/microservices` over `ClusterTransport` (`main.ts`): `@MessagePattern()` handlers
 *   (`sum`, `fail`, `slow`, `never`), `@EventPattern('sample-event')`, and `GET /rpc/sum`,
 *   `POST /rpc/send`, `POST /rpc/events` through a `ClusterClientProxy` from `ClientsModule`.
 *   `RPC_TIMEOUT_MS` (default 5000) is the client's reply timeout.
 */
@Module({
  imports: [
    ClientsModule.registerAsync([
      {
        name: CLUSTER_CLIENT,
        inject: [ClusterService, ConfigService],
        useFactory: (cluster: ClusterService, config: ConfigService) => ({
          customClass: ClusterClientProxy,
          options: { cluster, timeoutMs: Number(config.get<string>('RPC_TIMEOUT_MS') ?? 5000) },
        }),
      },
    ]),
  ],
  controllers: [RpcController, MicroserviceController, MicroserviceHandlers],
  providers: [RpcHandlers, ReceivedEvents],
})
export class RpcModule {}
