import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { ClusterExplorer } from './cluster.explorer.js';
import {
  CLUSTER_INSTANCE_METADATA,
  CLUSTER_NODE_SEAMS,
  CLUSTER_STARTUP_OPTIONS,
  CLUSTER_RESOLVED_OPTIONS,
  CLUSTER_TOPOLOGIES,
} from './cluster.constants.js';
import {
  CLUSTER_ASYNC_OPTIONS_TYPE,
  CLUSTER_MODULE_OPTIONS,
  CLUSTER_OPTIONS_TYPE,
  ConfigurableClusterModule,
  type ClusterModuleExtras,
} from './cluster.module-definition.js';
import { ClusterService } from './cluster.service.js';
import { clusterOptionsFromEnv, type EnvSource } from './config/cluster-options.from-env.js';
import { copyOptionSources } from './config/option-sources.js';
import type { InstanceMetadata } from './config/instance-metadata.js';
import type { ResolvedClusterOptions } from './config/resolve-options.js';
import { resolveStartupOptions, type StartupOptions } from './config/startup-options.js';
import type { ClusterModuleOptions } from './interfaces/cluster-options.interface.js';
import { prewarmCookieKeys } from './security/cookie-keyring.js';
import { createTopologies } from './strategies/strategy.factory.js';

const STARTUP_OPTIONS = CLUSTER_STARTUP_OPTIONS;

/** `ConfigService`, under a token of ours, for `forRootFromEnv`. */
const CLUSTER_ENVIRONMENT = Symbol('CLUSTER_ENVIRONMENT');

/** Holds `ConfigModule` and re-exports its `ConfigService` as {@link CLUSTER_ENVIRONMENT}. */
class ClusterEnvironmentModule {}

/**
 * `@nestjs/config` is loaded only by apps that call `forRootFromEnv` (an app configured in
 * code never pays for importing it), with the same `import()` the EC2 strategy uses for the
 * AWS SDK; Nest awaits a module given as a promise before it resolves the providers.
 */
async function environmentModule(): Promise<DynamicModule> {
  const { ConfigModule, ConfigService } = await import('@nestjs/config');
  return {
    module: ClusterEnvironmentModule,
    imports: [ConfigModule],
    providers: [{ provide: CLUSTER_ENVIRONMENT, useExisting: ConfigService }],
    exports: [CLUSTER_ENVIRONMENT],
  };
}
const INSTANCE_METADATA = CLUSTER_INSTANCE_METADATA;

/**
 * Resolution shared by `forRoot` and `forRootAsync`: validated options → metadata (EC2
 * only, and only once the options are valid) → node identity → one strategy per topology.
 * Validation fails startup with one `ClusterConfigError`, before any I/O.
 */
const providers: Provider[] = [
  {
    provide: STARTUP_OPTIONS,
    inject: [CLUSTER_MODULE_OPTIONS],
    useFactory: (options: ClusterModuleOptions): Promise<StartupOptions> =>
      resolveStartupOptions(options),
  },
  {
    provide: INSTANCE_METADATA,
    inject: [STARTUP_OPTIONS],
    useFactory: (startup: StartupOptions): InstanceMetadata | null | undefined => startup.metadata,
  },
  {
    provide: CLUSTER_RESOLVED_OPTIONS,
    inject: [STARTUP_OPTIONS],
    useFactory: (startup: StartupOptions): ResolvedClusterOptions => startup.options,
  },
  {
    provide: CLUSTER_TOPOLOGIES,
    inject: [CLUSTER_RESOLVED_OPTIONS, INSTANCE_METADATA],
    useFactory: (options: ResolvedClusterOptions, metadata: InstanceMetadata | null | undefined) =>
      createTopologies(options, metadata),
  },
  // The real clock, randomness and sockets; a provider so that tests can override it.
  { provide: CLUSTER_NODE_SEAMS, useValue: {} },
  ClusterService,
  ClusterExplorer,
];

/**
 * Forms a cluster of the app's instances: discovery strategies chosen by config, links
 * authenticated by a shared cookie, live membership and messaging through `ClusterService`.
 *
 * ```ts
 * @Module({
 *   imports: [ConfigModule.forRoot(), ClusterModule.forRootFromEnv()],
 * })
 * export class AppModule {}
 * ```
 */
@Module({
  imports: [DiscoveryModule],
  providers,
  exports: [ClusterService],
})
export class ClusterModule extends ConfigurableClusterModule {
  /** Options given in code. */
  static override forRoot(options: typeof CLUSTER_OPTIONS_TYPE): DynamicModule {
    // The cookie KDF (scrypt, tens of milliseconds) starts now, on the thread pool, while
    // the app initialises; the node's first handshakes and gossip packets need its key.
    const previous: unknown = options?.previousCookies;
    prewarmCookieKeys([
      options?.cookie,
      ...(Array.isArray(previous) ? (previous as unknown[]) : []),
    ]);
    const module = super.forRoot(options);
    // The builder copies the options by their string keys; keep the environment-variable
    // names `clusterOptionsFromEnv` recorded, so validation errors name the variables.
    for (const provider of module.providers ?? []) {
      if (
        typeof provider === 'object' &&
        'useValue' in provider &&
        provider.provide === CLUSTER_MODULE_OPTIONS
      ) {
        copyOptionSources(options, provider.useValue as object);
      }
    }
    return module;
  }

  /** Options from a factory, class or existing provider (e.g. `ConfigService`). */
  static override forRootAsync(options: typeof CLUSTER_ASYNC_OPTIONS_TYPE): DynamicModule {
    return super.forRootAsync(options);
  }

  /**
   * Options from the environment variables of the README, read through `@nestjs/config`'s
   * `ConfigService` (so `.env` files loaded by `ConfigModule.forRoot()` count).
   */
  static forRootFromEnv(extras: ClusterModuleExtras = {}): DynamicModule {
    // A head start for the cookie KDF, as in forRoot: the variables as the process has them
    // now (ConfigModule.forRoot() has loaded .env by the time this runs); what counts is
    // still what ConfigService gives the factory below.
    const env = process.env;
    prewarmCookieKeys([
      env.NODE_COOKIE,
      ...(env.NODE_COOKIE_PREVIOUS ?? '').split(','),
      env.LIBCLUSTER_GOSSIP_SECRET,
    ]);
    return super.forRootAsync({
      ...extras,
      imports: [environmentModule()],
      inject: [CLUSTER_ENVIRONMENT],
      useFactory: (config: EnvSource) => clusterOptionsFromEnv(config),
    });
  }
}
