import type { ClusterModuleOptions } from '../interfaces/cluster-options.interface.js';
import { readInstanceMetadata, type InstanceMetadata } from './instance-metadata.js';
import {
  resolveClusterOptions,
  usesEc2,
  type ResolvedClusterOptions,
  type ResolveEnvironment,
} from './resolve-options.js';

/** The options the runtime uses, and the instance metadata read for them (EC2 only). */
export interface StartupOptions {
  readonly options: ResolvedClusterOptions;
  /** `undefined` without an EC2 topology; `null` when the metadata service did not answer. */
  readonly metadata: InstanceMetadata | null | undefined;
}

/** Seams of {@link resolveStartupOptions}. */
export interface StartupEnvironment extends Omit<ResolveEnvironment, 'instanceMetadata'> {
  /** Reads the EC2 instance metadata. @default {@link readInstanceMetadata} */
  readonly readMetadata?: () => Promise<InstanceMetadata | null>;
}

/**
 * What `ClusterModule` runs at startup: validates the options first, and only when they are
 * valid does any I/O (the EC2 instance metadata request, EC2 topologies only), then derives
 * the node identity from the metadata. An invalid configuration fails with one
 * `ClusterConfigError` and no request at all.
 *
 * @throws ClusterConfigError listing every problem
 */
export async function resolveStartupOptions(
  options: ClusterModuleOptions,
  environment: StartupEnvironment = {},
): Promise<StartupOptions> {
  const { readMetadata = readInstanceMetadata, ...rest } = environment;
  // Validation does not depend on the metadata (it only names the node), so a first pass
  // without it rejects bad input before anything leaves the process.
  const validated = resolveClusterOptions(options, rest);
  if (!usesEc2(options)) return { options: validated, metadata: undefined };
  const metadata = await readMetadata();
  return {
    options: resolveClusterOptions(options, { ...rest, instanceMetadata: metadata }),
    metadata,
  };
}
