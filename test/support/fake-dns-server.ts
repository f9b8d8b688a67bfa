import { createSocket, type Socket } from 'node:dgram';

/** One SRV record: target host and port (priority / weight as in RFC 2782). */
export interface FakeSrvRecord {
  target: string;
  port: number;
  priority?: number;
  weight?: number;
}

const TYPE_A = 1;
const TYPE_SRV = 33;

/**
 * A tiny authoritative DNS responder over UDP on 127.0.0.1 for tests: A and SRV records
 * from maps the test changes at will; unknown names answer NXDOMAIN, known names without
 * records of the asked type answer NOERROR with no answers (ENODATA). Every query is
 * recorded. Point a `dns.Resolver` at it with `setServers(['127.0.0.1:<port>'])`.
 */
export class FakeDnsServer {
  readonly a = new Map<string, string[]>();
  readonly srv = new Map<string, FakeSrvRecord[]>();
  readonly queries: { name: string; type: number }[] = [];
  port = 0;

  private constructor(private readonly socket: Socket) {}

  static async start(): Promise<FakeDnsServer> {
    const socket = createSocket('udp4');
    const server = new FakeDnsServer(socket);
    socket.on('message', (msg, rinfo) => {
      const answer = server.answer(msg);
      if (answer) socket.send(answer, rinfo.port, rinfo.address);
    });
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    server.port = socket.address().port;
    return server;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private answer(msg: Buffer): Buffer | undefined {
    if (msg.length < 12) return undefined;
    const id = msg.readUInt16BE(0);
    let offset = 12;
    const labels: string[] = [];
    while (offset < msg.length && msg[offset] !== 0) {
      const len = msg[offset];
      labels.push(msg.subarray(offset + 1, offset + 1 + len).toString('ascii'));
      offset += len + 1;
    }
    offset += 1;
    if (offset + 4 > msg.length) return undefined;
    const type = msg.readUInt16BE(offset);
    const question = msg.subarray(12, offset + 4);
    const name = labels.join('.').toLowerCase();
    this.queries.push({ name, type });

    const known = this.a.has(name) || this.srv.has(name);
    const records: Buffer[] = [];
    if (type === TYPE_A) {
      for (const ip of this.a.get(name) ?? [])
        records.push(rr(name, TYPE_A, Buffer.from(ip.split('.').map(Number))));
    } else if (type === TYPE_SRV) {
      for (const r of this.srv.get(name) ?? []) {
        const head = Buffer.alloc(6);
        head.writeUInt16BE(r.priority ?? 0, 0);
        head.writeUInt16BE(r.weight ?? 0, 2);
        head.writeUInt16BE(r.port, 4);
        records.push(rr(name, TYPE_SRV, Buffer.concat([head, encodeName(r.target)])));
      }
    }
    const header = Buffer.alloc(12);
    header.writeUInt16BE(id, 0);
    header.writeUInt16BE(0x8580 | (known ? 0 : 3), 2); // response, authoritative, RD, RA; NXDOMAIN when unknown
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(records.length, 6);
    return Buffer.concat([header, question, ...records]);
  }
}

function encodeName(name: string): Buffer {
  const parts = name
    .replace(/\.$/, '')
    .split('.')
    .filter((p) => p !== '');
  return Buffer.concat([
    ...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'ascii')])),
    Buffer.from([0]),
  ]);
}

function rr(name: string, type: number, data: Buffer): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(1, 2); // IN
  fixed.writeUInt32BE(5, 4); // TTL
  fixed.writeUInt16BE(data.length, 8);
  return Buffer.concat([encodeName(name), fixed, data]);
}
