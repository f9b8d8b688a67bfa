import { ClusterError } from './cluster.error.js';

/** One configuration problem: the variable (or option path), the bad value, what is accepted. */
export interface ConfigProblem {
  /** Environment variable name, or option path when the value did not come from the environment. */
  readonly name: string;
  readonly message: string;
}

/** Startup configuration is invalid. Lists every problem, one `NAME: message` line each. */
export class ClusterConfigError extends ClusterError {
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(
      `Invalid cluster configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  - ${p.name}: ${p.message}`).join('\n'),
    );
  }
}
