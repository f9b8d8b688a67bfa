// One start of a Nest application context, timed from process start: `bare` (an empty
// module, what bench/workers/bare-nest.mjs runs) or `cluster` (the same plus
// ClusterModule with the gossip strategy on loopback: import, validation, TCP listener,
// gossip sockets). Prints one JSON line: {"mode", "readyMs", "aws"} — readyMs is
// performance.now() once the context is initialised (time since the process started,
// imports included); aws lists the @aws-sdk modules loaded (CommonJS require cache, plus the
// ES modules seen by bench/workers/aws-module-hooks.mjs when run with --import).
//
//   node bench/workers/startup.mjs bare|cluster [--control]
//
// --control also imports @aws-sdk/ec2-metadata-service, to show the count sees an AWS module.
import { createRequire } from 'node:module';

const mode = process.argv[2] ?? 'bare';
const control = process.argv.includes('--control');

await import('reflect-metadata');
const { Module } = await import('@nestjs/common');
const { NestFactory } = await import('@nestjs/core');

let imports = [];
if (mode === 'cluster') {
  const { ClusterModule } = await import('../../dist/index.js');
  const gossipPort = Number(process.env.STARTUP_GOSSIP_PORT ?? 47892);
  imports = [
    ClusterModule.forRoot({
      cookie: 'startup-bench-cookie-0123456789abcdef',
      nodeName: `bench-${process.pid}@127.0.0.1`,
      port: 0,
      bindAddress: '127.0.0.1',
      advertiseAddress: '127.0.0.1',
      strategy: 'gossip',
      strategyConfig: { port: gossipPort, multicastIf: '127.0.0.1', multicastTtl: 0 },
    }),
  ];
} else if (mode !== 'bare') {
  throw new Error(`unknown mode ${mode} (bare, cluster)`);
}
if (control) await import('@aws-sdk/ec2-metadata-service');

class AppModule {}
Module({ imports })(AppModule);
const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error'] });
const readyMs = performance.now();

// Let the resolve hooks' messages arrive before counting.
await new Promise((resolve) => setTimeout(resolve, 50));
const required = Object.keys(createRequire(import.meta.url).cache).filter((p) =>
  p.includes('/@aws-sdk/'),
);
const imported = [...(globalThis.__awsModulesSeen ?? [])];
const aws = [
  ...new Set([...required, ...imported].map((p) => p.replace(/^.*\/node_modules\//, ''))),
];
process.stdout.write(`${JSON.stringify({ mode, control, readyMs, aws })}\n`);
await app.close();
