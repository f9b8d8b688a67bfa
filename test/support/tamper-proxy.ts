import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';

/** What the proxy does to the next record it forwards toward the target. */
export type Fault = 'flip' | 'replay' | 'drop' | 'truncate';

/**
 * A TCP proxy in front of a node's link port that forwards both directions and, when armed,
 * damages one record of the stream toward the target. Handshake frames and sealed records are
 * both `u32be length | body` units; the first two units a dialer sends are HELLO and AUTH,
 * every later one is a record.
 */
export class TamperProxy {
  /** Connections accepted so far. */
  connections = 0;
  /** Faults applied, in order. */
  readonly applied: Fault[] = [];
  private armed: { fault: Fault; from: string } | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    private readonly host: string,
    private readonly target: { host: string; port: number },
  ) {}

  static async start(
    host: string,
    port: number,
    target: { host: string; port: number },
  ): Promise<TamperProxy> {
    const server = createServer();
    const proxy = new TamperProxy(server, host, target);
    server.on('connection', (socket) => proxy.accept(socket));
    server.listen(port, host);
    await once(server, 'listening');
    return proxy;
  }

  /** Damages the next record toward the target sent by the node named `from` (its HELLO). */
  arm(fault: Fault, from: string): void {
    this.armed = { fault, from };
  }

  get pending(): boolean {
    return this.armed !== undefined;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private accept(client: Socket): void {
    this.connections += 1;
    const upstream = connect({ ...this.target, localAddress: this.host });
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        this.sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    let buffered = Buffer.alloc(0);
    let units = 0;
    let dialer = '';
    client.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 4 && buffered.length >= 4 + buffered.readUInt32BE(0)) {
        const unit = buffered.subarray(0, 4 + buffered.readUInt32BE(0));
        buffered = buffered.subarray(unit.length);
        if (units === 0) dialer = helloName(unit);
        const isRecord = units >= 2;
        units += 1;
        const fault = isRecord && this.armed?.from === dialer ? this.armed.fault : undefined;
        if (fault === undefined) {
          upstream.write(unit);
          continue;
        }
        this.armed = undefined;
        this.applied.push(fault);
        if (fault === 'flip') {
          const damaged = Buffer.from(unit);
          damaged[4 + Math.floor((unit.length - 4) / 2)] ^= 0x01;
          upstream.write(damaged);
        } else if (fault === 'replay') {
          upstream.write(unit);
          upstream.write(unit);
        } else if (fault === 'truncate') {
          // Half a record, then the end of the stream.
          upstream.end(unit.subarray(0, Math.ceil(unit.length / 2)));
          client.pause();
          return;
        }
        // 'drop': the record is not forwarded.
      }
    });
  }
}

/** The `name` of a HELLO frame (`u32be L | version | type | JSON`), or '' when not one. */
function helloName(frame: Buffer): string {
  try {
    const hello = JSON.parse(frame.subarray(6).toString('utf8')) as { name?: unknown };
    return typeof hello.name === 'string' ? hello.name : '';
  } catch {
    return '';
  }
}
