import { ClusterError } from './cluster.error.js';

/** The link listener could not open its TCP port. */
export class ListenError extends ClusterError {
  constructor(
    /** Address the listener tried to bind (`CLUSTER_BIND_ADDRESS`). */
    readonly bindAddress: string,
    /** Port the listener tried to bind (`CLUSTER_PORT`). */
    readonly port: number,
    /** System error code (`EADDRINUSE`, `EADDRNOTAVAIL`, `EACCES`, ...). */
    readonly code: string,
    cause?: unknown,
  ) {
    super(ListenError.describe(bindAddress, port, code), {
      cause,
      retryable: code === 'EADDRINUSE',
    });
  }

  private static describe(bindAddress: string, port: number, code: string): string {
    const where = `${bindAddress.includes(':') ? `[${bindAddress}]` : bindAddress}:${port}`;
    switch (code) {
      case 'EADDRINUSE':
        return `cannot listen for links on ${where}: the port is already in use (EADDRINUSE) — set CLUSTER_PORT to a free port, or 0 for any free port`;
      case 'EADDRNOTAVAIL':
        return `cannot listen for links on ${where}: the address is not on this host (EADDRNOTAVAIL) — check CLUSTER_BIND_ADDRESS`;
      case 'EACCES':
        return `cannot listen for links on ${where}: permission denied (EACCES) — choose a CLUSTER_PORT above 1023`;
      default:
        return `cannot listen for links on ${where} (${code}) — check CLUSTER_PORT and CLUSTER_BIND_ADDRESS`;
    }
  }
}
