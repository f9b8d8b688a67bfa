// Baseline: a Nest application context with an empty module, no cluster.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { runWorker } from './common.mjs';

class EmptyModule {}
Module({})(EmptyModule);

let app;
await runWorker({
  async start() {
    app = await NestFactory.createApplicationContext(EmptyModule, { logger: ['error', 'warn'] });
  },
  async stop() {
    await app?.close();
  },
});
