import { ClusterError } from './cluster.error.js';

/** Messaging was used after the cluster closed, or a request was pending when it closed. */
export class MessagingClosedError extends ClusterError {
  constructor(
    /** Topic of the refused or abandoned message. */
    readonly topic: string,
  ) {
    super(`cluster messaging is closed; "${topic}" was not sent`);
  }
}
