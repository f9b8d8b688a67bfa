import type { INestApplicationContext } from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import type { Server, ServerOptions } from 'socket.io';
import { ClusterService } from '../cluster.service.js';
import {
  createClusterAdapter,
  type ClusterSocketIoAdapterOptions,
} from './cluster-socket-io-adapter.js';

/**
 * Nest's `IoAdapter` with the cluster adapter installed: every `@WebSocketGateway()` server
 * of the app broadcasts to rooms across all members, as `@socket.io/redis-adapter` does, with
 * no Redis.
 *
 * ```ts
 * const app = await NestFactory.create(AppModule); // AppModule imports ClusterModule
 * app.useWebSocketAdapter(new ClusterIoAdapter(app));
 * ```
 *
 * `ClusterService` is taken from the app when the first socket.io server is created.
 */
export class ClusterIoAdapter extends IoAdapter {
  private readonly app: INestApplicationContext | undefined;

  constructor(
    appOrHttpServer?: INestApplicationContext | object,
    private readonly options: ClusterSocketIoAdapterOptions & {
      /** Use this `ClusterService` instead of the app's (e.g. with a plain HTTP server). */
      cluster?: ClusterService;
    } = {},
  ) {
    super(appOrHttpServer);
    this.app = isAppContext(appOrHttpServer) ? appOrHttpServer : undefined;
  }

  override createIOServer(port: number, options?: ServerOptions): Server {
    const server = super.createIOServer(port, options);
    const { cluster: given, ...adapterOptions } = this.options;
    const cluster = given ?? this.app?.get(ClusterService);
    if (!cluster) {
      throw new Error(
        'ClusterIoAdapter needs the Nest app (new ClusterIoAdapter(app)) or options.cluster',
      );
    }
    server.adapter(createClusterAdapter(cluster, adapterOptions));
    return server;
  }
}

function isAppContext(value: unknown): value is INestApplicationContext {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { get?: unknown }).get === 'function' &&
    typeof (value as { getHttpServer?: unknown }).getHttpServer === 'function'
  );
}
