// A user's app, as test/consumer/consumer.spec.ts builds it three times (CommonJS on Nest 12,
// ESM on Nest 12, CommonJS on Nest 11) against the packed tarball: one file, no relative
// imports, so that the same source compiles as CommonJS and as ESM.
//
// It starts from the environment (ConfigModule + forRootFromEnv), answers `whoami`
// requests (@ClusterHandle), waits for CONSUMER_MEMBERS members, asks every other member
// `whoami`, runs the same module as two in-memory nodes of `nestjs-cluster/testing`, prints
// one JSON line and runs until SIGTERM.
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import {
  ClusterHandle,
  ClusterModule,
  ClusterService,
  Ec2Strategy,
  MissingPackageError,
  RequestTimeoutError,
} from 'nestjs-cluster';
import { ClusterHealthIndicator } from 'nestjs-cluster/health';
import { ClusterTestingModule } from 'nestjs-cluster/testing';

@Injectable()
class Probe {
  constructor(
    readonly cluster: ClusterService,
    readonly health: ClusterHealthIndicator,
  ) {}

  @ClusterHandle('whoami')
  whoami(asker: string): string {
    return `${this.cluster.self.name} answers ${asker}`;
  }
}

@Module({
  imports: [
    ConfigModule.forRoot({ ignoreEnvFile: true }),
    ClusterModule.forRootFromEnv(),
    TerminusModule,
  ],
  providers: [ClusterHealthIndicator, Probe],
})
class AppModule {}

/** What starting the EC2 strategy says when the AWS SDK is not installed. */
async function ec2WithoutSdk(): Promise<string> {
  const strategy = new Ec2Strategy({ tagName: 'cluster', tagValue: 'consumer', clusterPort: 1 });
  try {
    await strategy.start({
      logger: console,
      debug: false,
      self: { name: 'probe@127.0.0.1' },
    } as never);
    return 'started';
  } catch (err) {
    return err instanceof MissingPackageError ? `MissingPackageError: ${err.message}` : String(err);
  } finally {
    strategy.stop();
  }
}

/** The same module graph as two in-memory nodes of `nestjs-cluster/testing`: one asks the other. */
async function inMemory(): Promise<string> {
  const cluster = await ClusterTestingModule.create({ nodes: 2, imports: [AppModule], seed: 1 });
  try {
    await cluster.converged();
    const [a, b] = [cluster.service(0), cluster.service(1)];
    return await cluster.run(a.request<string>(b.self.name, 'whoami', a.self.name));
  } finally {
    await cluster.close();
  }
}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error', 'warn'] });
  app.enableShutdownHooks();
  const { cluster, health } = app.get(Probe);
  const want = Number(process.env.CONSUMER_MEMBERS ?? '1');
  const members = await cluster.waitForMembers(want, { timeoutMs: 20_000 });
  const replies: string[] = [];
  let timeouts = 0;
  for (const member of members) {
    if (member.name === cluster.self.name) continue;
    // A request sent the moment a member joins can go unanswered while the two nodes settle
    // on one link; ask again then (counted in the report).
    for (;;) {
      try {
        replies.push(
          await cluster.request<string>(member.name, 'whoami', cluster.self.name, {
            timeoutMs: 3_000,
          }),
        );
        break;
      } catch (err) {
        if (!(err instanceof RequestTimeoutError) || ++timeouts >= 3) throw err;
      }
    }
  }
  const loaded =
    typeof require === 'function'
      ? Object.keys(require.cache)
          .filter((file) => /nestjs-cluster[\\/]dist[\\/]/.test(file))
          .map((file) => file.replace(/.*nestjs-cluster[\\/]/, ''))
      : [];
  console.log(
    JSON.stringify({
      format: typeof require === 'function' ? 'commonjs' : 'esm',
      self: cluster.self.name,
      mode: cluster.mode,
      members: members.map((member) => member.name).sort(),
      health: health.isHealthy('cluster', { minMembers: want }),
      replies,
      timeouts,
      cjsFilesLoaded: loaded.length,
      esmFilesLoadedByRequire: loaded.filter((file) => !file.startsWith('dist/cjs/')).length,
      ec2: await ec2WithoutSdk(),
      inMemory: await inMemory(),
    }),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
