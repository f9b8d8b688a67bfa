import { ClusterError } from './cluster.error.js';

/** An optional package a feature needs is not installed. */
export class MissingPackageError extends ClusterError {
  constructor(
    /** The npm package to install. */
    readonly packageName: string,
    /** What needs it, for the message (e.g. `the ec2 strategy`). */
    readonly feature: string,
    cause?: unknown,
  ) {
    super(`${feature} needs the package ${packageName}; install it with: npm i ${packageName}`, {
      cause,
      retryable: false,
    });
  }
}
