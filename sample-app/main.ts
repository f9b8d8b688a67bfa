import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import type { AddressInfo } from 'node:net';
import { ClusterService } from '../lib/index.js';
import { AppModule } from './app.module.js';

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(AppModule);
  // SIGTERM / SIGINT close the app: the node leaves the cluster gracefully.
  app.enableShutdownHooks();
  // The dashboard route sends its own, stricter Content-Security-Policy.
  app.useSecurityHeaders({ contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } });
  app.enableCsrfProtection();

  const config = app.get(ConfigService);
  const port = Number(config.get<string>('PORT') ?? 3000);
  const host = config.get<string>('HOST') ?? '0.0.0.0';
  await app.listen(port, host);

  const { port: boundPort } = app.getHttpServer().address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '::' ? 'localhost' : host;
  const name = app.get(ClusterService).self.name;
  new Logger('SampleApp').log(`${name}: dashboard on http://${shownHost}:${boundPort}/`);
}

void bootstrap();
