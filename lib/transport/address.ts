import type { Socket } from 'node:net';

/** `host:port`, with IPv6 hosts in brackets. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** `host:port` of the remote end of a socket (`unknown` parts when already closed). */
export function remoteAddressOf(socket: Socket): string {
  return formatAddress(socket.remoteAddress ?? 'unknown', socket.remotePort ?? 0);
}

/** Host of the remote end of a socket (the key of per-address log rate limits). */
export function remoteHostOf(socket: Socket): string {
  return socket.remoteAddress ?? 'unknown';
}

/**
 * Ends a socket after its queued writes are flushed, and destroys it if it is not closed
 * within `timeoutMs` (a peer that never reads must not keep it open).
 */
export function endSocket(socket: Socket, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) {
      resolve();
      return;
    }
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    timer.unref();
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.end();
    // Read and discard until the peer closes its side too, so 'close' can fire.
    socket.resume();
  });
}
