import 'reflect-metadata';
import { ConsoleLogger, Logger, type LogLevel } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ClusterConfigError, ClusterService } from '../lib/index.js';
import { ClusterTransport } from '../lib/microservices/index.js';
import { ClusterIoAdapter } from '../lib/socket-io/index.js';
import { AppModule } from './app.module.js';

/** `LOG_LEVEL` → the levels Nest prints (that level and the more severe ones). */
const LOG_LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];

function logLevels(level: string | undefined): LogLevel[] {
  const index = LOG_LEVELS.indexOf((level ?? 'log') as LogLevel);
  return LOG_LEVELS.slice(0, index < 0 ? LOG_LEVELS.indexOf('log') + 1 : index + 1);
}

/**
 * Nest's console logger, except that a configuration error is printed as its message alone:
 * the list of variables to fix, with no stack trace (the stack says nothing to an operator).
 */
class SampleLogger extends ConsoleLogger {
  override error(message: unknown, ...optionalParams: unknown[]): void {
    if (message instanceof ClusterConfigError) {
      const context = optionalParams.filter((p) => typeof p === 'string').slice(-1);
      super.error(`${message.name}: ${message.message}`, ...context);
      return;
    }
    super.error(message, ...optionalParams);
  }
}

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(AppModule, {
    logger: new SampleLogger(),
    // Logs wait until LOG_LEVEL is known (it may come from a .env file).
    bufferLogs: true,
    // On shutdown, close kept-alive connections (dashboards, SSE clients) instead of waiting.
    forceCloseConnections: true,
  });
  const config = app.get(ConfigService);
  app.useLogger(logLevels(config.get<string>('LOG_LEVEL')));
  // SIGTERM / SIGINT close the app: the node leaves the cluster gracefully.
  app.enableShutdownHooks();
  // The dashboard route sends its own, stricter Content-Security-Policy.
  app.useSecurityHeaders({
    contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
  });
  app.enableCsrfProtection();

  // Socket.IO rooms across the cluster (no Redis adapter), and @MessagePattern() handlers
  // answering ClientProxy.send() from any member (no broker).
  app.useWebSocketAdapter(new ClusterIoAdapter(app));
  app.connectMicroservice(
    { strategy: new ClusterTransport(app.get(ClusterService)) },
    { inheritAppConfig: true },
  );
  await app.startAllMicroservices();

  const port = Number(config.get<string>('PORT') ?? 3000);
  const host = config.get<string>('HOST') ?? '0.0.0.0';
  await app.listen(port, host);

  const { port: boundPort } = (app.getHttpServer() as HttpServer).address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '::' ? 'localhost' : host;
  const name = app.get(ClusterService).self.name;
  new Logger('SampleApp').log(`${name}: dashboard on http://${shownHost}:${boundPort}/`);
}

void bootstrap();
