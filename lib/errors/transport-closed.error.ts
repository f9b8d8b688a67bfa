import { ClusterError } from './cluster.error.js';

/** The transport was closed (or not yet listening) when an operation needed it. */
export class TransportClosedError extends ClusterError {
  constructor(operation: string) {
    super(`cannot ${operation}: the link transport is closed`);
  }
}
