import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Network, NetworkServer, Wire } from './wire.js';
import { ignore } from './wire.js';

/**
 * Starts `server` on `host:port`. Resolves with its address once it listens, or rejects with
 * the listen error (`EADDRINUSE`, …); from then on its errors are ignored (a listening
 * server's sockets carry their own error listeners).
 */
export function listenOn(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      server.on('error', ignore);
      resolve(server.address() as AddressInfo);
    });
  });
}

/**
 * The production `Network`: TCP sockets with Nagle off. Every socket gets an `'error'`
 * listener before anything else can happen to it, so a reset from a peer can never end
 * the process.
 */
export class TcpNetwork implements Network {
  async listen(
    host: string,
    port: number,
    onConnection: (wire: Wire) => void,
  ): Promise<NetworkServer> {
    const server = createServer({ noDelay: true }, (socket: Socket) => {
      socket.on('error', ignore);
      onConnection(socket);
    });
    const address = await listenOn(server, host, port);
    return {
      address: { host: address.address, port: address.port },
      close: () => new Promise<void>((done) => server.close(() => done())),
    };
  }

  connect(host: string, port: number, localAddress?: string): Wire {
    const socket = connect({
      host,
      port,
      noDelay: true,
      ...(localAddress ? { localAddress } : {}),
    });
    return socket;
  }
}
