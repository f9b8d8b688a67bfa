import { EventEmitter } from 'node:events';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo, Socket as NetSocket } from 'node:net';
import { Server, type Socket } from 'socket.io';
import { io as connect, type Socket as ClientSocket } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import { batchWebSocketWrites } from '../../../lib/socket-io/websocket-batching.js';

interface Running {
  http: HttpServer;
  io: Server;
  client: ClientSocket;
  /** The server side of the client's connection, once connected. */
  server: Socket;
}

const running: Running[] = [];

afterEach(async () => {
  for (const { client, io, http } of running.splice(0)) {
    client.disconnect();
    await io.close();
    http.close();
  }
});

async function start(batched: boolean): Promise<Running> {
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'] });
  if (batched) batchWebSocketWrites(io.engine);
  const connected = new Promise<Socket>((resolve) => io.once('connection', resolve));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  const client = connect(`http://127.0.0.1:${port}`, {
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
  });
  const server = await connected;
  await new Promise<void>((resolve) =>
    client.connected ? resolve() : client.once('connect', () => resolve()),
  );
  const run = { http, io, client, server };
  running.push(run);
  return run;
}

/** The TCP socket under a server-side socket.io connection, with its writes counted. */
function countWrites(socket: Socket): { readonly count: number } {
  const conn = socket.conn as unknown as { transport: { socket: { _socket: NetSocket } } };
  const raw = conn.transport.socket._socket as NetSocket & {
    _write: (...args: unknown[]) => void;
    _writev: (...args: unknown[]) => void;
  };
  const counter = { count: 0 };
  for (const method of ['_write', '_writev'] as const) {
    const original = raw[method].bind(raw);
    raw[method] = (...args: unknown[]) => {
      counter.count++;
      original(...args);
    };
  }
  return counter;
}

/** Emits `n` messages in one turn of the event loop; resolves with what the client got. */
async function burst(run: Running, n: number): Promise<number[]> {
  const got: number[] = [];
  const all = new Promise<void>((resolve) =>
    run.client.on('m', (i: number) => {
      got.push(i);
      if (got.length === n) resolve();
    }),
  );
  for (let i = 0; i < n; i++) run.server.emit('m', i);
  await all;
  return got;
}

describe('batchWebSocketWrites', () => {
  it('sends a burst of 200 packets in a handful of writes, in order (one write per packet without it)', async () => {
    const n = 200;
    const expected = Array.from({ length: n }, (_, i) => i);

    const plain = await start(false);
    const plainWrites = countWrites(plain.server);
    expect(await burst(plain, n)).toEqual(expected);

    const batched = await start(true);
    const batchedWrites = countWrites(batched.server);
    expect(await burst(batched, n)).toEqual(expected);

    // engine.io sends the first packet at once and flushes the other 199 together.
    expect(plainWrites.count).toBeGreaterThanOrEqual(n);
    expect(batchedWrites.count).toBeLessThanOrEqual(4);
  });

  it('uncorks on the next tick when a transport throws before drain, and leaves polling alone', async () => {
    const engine = new EventEmitter();
    batchWebSocketWrites(engine);
    batchWebSocketWrites(engine); // idempotent: one pair of listeners
    expect(engine.listenerCount('flush')).toBe(1);

    const calls: string[] = [];
    const raw = { cork: () => calls.push('cork'), uncork: () => calls.push('uncork') };
    const ws = { transport: { name: 'websocket', socket: { _socket: raw } } };
    const polling = { transport: { name: 'polling', socket: { _socket: raw } } };

    engine.emit('flush', ws);
    engine.emit('drain', ws);
    expect(calls).toEqual(['cork', 'uncork']);

    engine.emit('flush', ws); // no drain: the transport threw
    expect(calls).toEqual(['cork', 'uncork', 'cork']);
    await new Promise((resolve) => process.nextTick(resolve));
    expect(calls).toEqual(['cork', 'uncork', 'cork', 'uncork']);

    engine.emit('flush', polling);
    engine.emit('drain', polling);
    await new Promise((resolve) => process.nextTick(resolve));
    expect(calls).toHaveLength(4);
  });
});
