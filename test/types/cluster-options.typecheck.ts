/**
 * Compile-time checks of `ClusterModuleOptions`, run by `npm run typecheck` (never executed):
 * every `@ts-expect-error` line must fail to compile, or tsc reports the directive as unused.
 */
import {
  ClusterModule,
  clusterOptionsFromEnv,
  type ClusterModuleOptions,
  type ClusterStrategy,
} from '../../lib/index.js';

// Each strategy's config is checked against that strategy's options.
export const ok: ClusterModuleOptions[] = [
  {},
  { cookie: 'c', strategy: 'gossip', strategyConfig: { port: 45892, multicastTtl: 1 } },
  { strategy: 'static', strategyConfig: { hosts: ['10.0.0.1:45893'] } },
  { strategy: 'ec2', strategyConfig: { tagName: 'cluster', ipType: 'public' } },
  { strategy: 'dns', strategyConfig: { query: 'app.internal', recordType: 'srv' } },
  { strategy: 'kubernetes', strategyConfig: { selector: 'app=myapp' } },
  { strategy: 'none' },
  { strategyConfig: { multicastAddr: '233.252.1.32' } }, // the default strategy is gossip
  { topologies: { a: { strategy: 'static', config: { hosts: [] } } } },
  { messaging: { maxPayloadBytes: 64 * 1024, defaultRequestTimeoutMs: 2_000 } },
];

export const misspelt: ClusterModuleOptions = {
  strategy: 'static',
  // @ts-expect-error a misspelt key of the static strategy's config
  strategyConfig: { hostz: ['10.0.0.1'] },
};

// @ts-expect-error the EC2 strategy needs its config (tagName)
export const ec2WithoutConfig: ClusterModuleOptions = { strategy: 'ec2' };

export const wrongStrategy: ClusterModuleOptions = {
  strategy: 'gossip',
  // @ts-expect-error another strategy's key
  strategyConfig: { query: 'x' },
};

// @ts-expect-error not a strategy name
export const unknownStrategy: ClusterModuleOptions = { strategy: 'multicast' };

// @ts-expect-error messaging options are numbers
export const badMessaging: ClusterModuleOptions = { messaging: { maxPayloadBytes: '1mb' } };

// A custom strategy instance takes no strategyConfig; a class takes any.
declare const custom: ClusterStrategy;
export const customInstance: ClusterModuleOptions = { strategy: custom };

// forRoot takes the same union.
export const module = ClusterModule.forRoot({
  strategy: 'static',
  strategyConfig: { hosts: ['a:1'] },
});
export const badModule = ClusterModule.forRoot({
  strategy: 'static',
  // @ts-expect-error forRoot rejects the misspelt key too
  strategyConfig: { hostz: ['a:1'] },
});

// clusterOptionsFromEnv overrides: any option, and part of the env strategy's config.
export const overridden = [
  clusterOptionsFromEnv(process.env, { debug: true, messaging: { maxPayloadBytes: 256 * 1024 } }),
  clusterOptionsFromEnv(process.env, { strategyConfig: { hosts: ['10.0.1.5'] } }),
  clusterOptionsFromEnv(process.env, { strategy: 'ec2', strategyConfig: { tagName: 'cluster' } }),
  // @ts-expect-error a misspelt option
  clusterOptionsFromEnv(process.env, { debgu: true }),
  // @ts-expect-error a misspelt key of every strategy's config
  clusterOptionsFromEnv(process.env, { strategyConfig: { hostz: ['10.0.1.5'] } }),
];
