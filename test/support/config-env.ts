import { expect } from 'vitest';
import { clusterOptionsFromEnv } from '../../lib/config/cluster-options.from-env.js';
import {
  resolveClusterOptions,
  type ResolvedClusterOptions,
} from '../../lib/config/resolve-options.js';
import { ClusterConfigError } from '../../lib/errors/cluster-config.error.js';

/**
 * `resolveClusterOptions(clusterOptionsFromEnv(vars, overrides))` as a process with `env`
 * (default: `HOSTNAME=box1`) and no network interfaces would resolve them.
 */
export function resolveFromEnv(
  vars: Record<string, string>,
  {
    env = { HOSTNAME: 'box1' },
    overrides,
  }: {
    env?: Record<string, string>;
    overrides?: Parameters<typeof clusterOptionsFromEnv>[1];
  } = {},
): ResolvedClusterOptions {
  return resolveClusterOptions(clusterOptionsFromEnv(vars, overrides), {
    env,
    interfaces: () => ({}),
  });
}

/** The problems of the `ClusterConfigError` that `fn` throws, as `name: message` lines. */
export function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ClusterConfigError);
    return (error as ClusterConfigError).problems.map((p) => `${p.name}: ${p.message}`);
  }
  throw new Error('expected a ClusterConfigError');
}
