import { ClusterError } from './cluster.error.js';

/** One entry of a static host list that cannot be parsed, and why. */
export interface InvalidHostEntry {
  readonly entry: string;
  readonly reason: string;
}

/** A static host list (`LIBCLUSTER_HOSTS`) has entries that are not `host`, `host:port` or `name@host:port`. */
export class InvalidHostListError extends ClusterError {
  constructor(readonly entries: readonly InvalidHostEntry[]) {
    super(
      `invalid host list entr${entries.length === 1 ? 'y' : 'ies'}: ` +
        entries.map((e) => `"${e.entry}" (${e.reason})`).join(', ') +
        '; expected host, host:port, name@host:port or [ipv6]:port',
      { retryable: false },
    );
  }
}
