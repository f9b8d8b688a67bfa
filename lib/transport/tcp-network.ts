import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import type { Network, NetworkServer, Wire } from './wire.js';
import { ignore } from './wire.js';

/**
 * The production `Network`: TCP sockets with Nagle off. Every socket gets an `'error'`
 * listener before anything else can happen to it, so a reset from a peer can never end
 * the process.
 */
export class TcpNetwork implements Network {
  listen(host: string, port: number, onConnection: (wire: Wire) => void): Promise<NetworkServer> {
    const server = createServer({ noDelay: true }, (socket: Socket) => {
      socket.on('error', ignore);
      onConnection(socket);
    });
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      server.once('error', onError);
      server.listen({ host, port }, () => {
        server.off('error', onError);
        server.on('error', ignore);
        const address = server.address() as AddressInfo;
        resolve({
          address: { host: address.address, port: address.port },
          close: () => new Promise<void>((done) => server.close(() => done())),
        });
      });
    });
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
