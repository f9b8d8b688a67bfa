import { type INestApplication } from '@nestjs/common';
import {
  ConnectedSocket,
  MessageBody,
  SubscribeMessage,
  WebSocketGateway,
  WebSocketServer,
} from '@nestjs/websockets';
import { Test } from '@nestjs/testing';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Namespace, Server, Socket as ServerSocket } from 'socket.io';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterModule, ClusterService, PayloadError } from '../../lib/index.js';
import { ClusterIoAdapter } from '../../lib/socket-io/index.js';
import { freePorts, pollUntil } from '../support/node-process.js';

/**
 * `ClusterIoAdapter` in two Nest apps of this process, linked over real cluster links on
 * 127.0.0.1, with real `socket.io-client` connections to app B while app A emits: binary
 * data arrives as binary; a packet too large or not serialisable throws `PayloadError` at the
 * `emit()` and reaches nobody; acknowledged broadcasts collect the acks of remote clients.
 */
/** `join`: the socket joins the room it names, acknowledged with the room. */
abstract class RoomJoining {
  @SubscribeMessage('join')
  async join(
    @ConnectedSocket() socket: ServerSocket,
    @MessageBody() room: string,
  ): Promise<string> {
    await socket.join(room);
    return room;
  }
}

@WebSocketGateway()
class Gateway extends RoomJoining {
  @WebSocketServer()
  server!: Server;
}

/** A second namespace: its packets carry the namespace in their text (`2/chat,[…]`). */
@WebSocketGateway({ namespace: 'chat' })
class ChatGateway extends RoomJoining {
  @WebSocketServer()
  server!: Namespace;
}

async function connect(url: string, room: string, got: unknown[][]): Promise<Socket> {
  const socket = io(url, { transports: ['websocket'], reconnection: false, forceNew: true });
  socket.onAny((event: string, ...args: unknown[]) => got.push([event, ...args]));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  expect(await socket.emitWithAck('join', room)).toBe(room);
  return socket;
}

async function startApp(
  name: string,
  linkPorts: number[],
  index: number,
  maxPayloadBytes?: number,
): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      ClusterModule.forRoot({
        nodeName: `${name}@127.0.0.1`,
        cookie: 'socket-io-e2e-cookie',
        bindAddress: '127.0.0.1',
        advertiseAddress: '127.0.0.1',
        port: linkPorts[index],
        heartbeatIntervalMs: 200,
        failureTimeoutMs: 1500,
        strategy: 'static',
        strategyConfig: { hosts: linkPorts.map((p) => `127.0.0.1:${p}`), pollingIntervalMs: 300 },
        ...(maxPayloadBytes === undefined ? {} : { messaging: { maxPayloadBytes } }),
      }),
    ],
    providers: [Gateway, ChatGateway],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: ['error'] });
  app.useWebSocketAdapter(new ClusterIoAdapter(app));
  await app.listen(0, '127.0.0.1');
  return app;
}

describe('ClusterIoAdapter between two apps in one process', () => {
  let a: INestApplication;
  let b: INestApplication;
  const clients: Socket[] = [];
  const received: unknown[][] = [];

  beforeAll(async () => {
    const [p1, p2] = await freePorts(2);
    a = await startApp('a', [p1, p2], 0);
    b = await startApp('b', [p1, p2], 1);
    await a.get(ClusterService).waitForMembers(2, { timeoutMs: 10_000 });
    await b.get(ClusterService).waitForMembers(2, { timeoutMs: 10_000 });
    const { port } = (b.getHttpServer() as HttpServer).address() as AddressInfo;
    for (let k = 0; k < 2; k++) {
      const socket = io(`http://127.0.0.1:${port}`, {
        transports: ['websocket'],
        reconnection: false,
        forceNew: true,
      });
      const got: unknown[] = [];
      socket.on('data', (value: unknown) => got.push(value));
      socket.on('ask', (question: string, ack: (answer: string) => void) =>
        ack(`${question}? client ${k}`),
      );
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('connect_error', reject);
      });
      expect(await socket.emitWithAck('join', 'room')).toBe('room');
      clients.push(socket);
      received.push(got);
    }
    // A's adapter knows B's (fetchSockets sees B's sockets).
    const server = a.get(Gateway).server;
    expect(
      await pollUntil(async () => (await server.in('room').fetchSockets()).length === 2, 10_000),
    ).toBe(true);
  }, 60_000);

  afterAll(async () => {
    for (const socket of clients) socket.disconnect();
    await Promise.all([a?.close(), b?.close()]);
  });

  it('binary data sent from A reaches the clients of B as binary, with the JSON around it intact', async () => {
    const server = a.get(Gateway).server;
    const bytes = Buffer.from([0, 1, 2, 250, 255]);
    server
      .to('room')
      .emit('data', { label: 'bin', bytes, nested: [{ more: Uint8Array.from([7, 8]) }] });
    expect(await pollUntil(() => received.every((got) => got.length >= 1), 5_000)).toBe(true);
    for (const got of received) {
      const value = got[0] as {
        label: string;
        bytes: ArrayBuffer;
        nested: { more: ArrayBuffer }[];
      };
      expect(value.label).toBe('bin');
      expect([...new Uint8Array(value.bytes)]).toEqual([0, 1, 2, 250, 255]);
      expect([...new Uint8Array(value.nested[0].more)]).toEqual([7, 8]);
    }
  });

  it('a 2 MB packet and a BigInt: emit() throws PayloadError and nobody receives anything; the next emit is delivered', async () => {
    const server = a.get(Gateway).server;
    const before = received.map((got) => got.length);
    expect(() => server.to('room').emit('data', 'x'.repeat(2 * 1024 * 1024))).toThrow(PayloadError);
    expect(() => server.to('room').emit('data', { n: 10n })).toThrow(PayloadError);
    expect(() => server.serverSideEmit('data', 'y'.repeat(2 * 1024 * 1024))).toThrow(PayloadError);
    server.to('room').emit('data', 'after');
    expect(
      await pollUntil(() => received.every((got, i) => got.length === before[i] + 1), 5_000),
    ).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    for (const [i, got] of received.entries()) {
      expect(got.length).toBe(before[i] + 1);
      expect(got.at(-1)).toBe('after');
    }
  });

  it('500 broadcasts and a socketsJoin in one turn: B delivers them in order, once each, and the join before what follows it', async () => {
    const server = a.get(Gateway).server;
    const before = received.map((got) => got.length);
    const tail: unknown[][] = clients.map(() => []);
    const onLater = clients.map((socket, i) => {
      const fn = (value: unknown) => tail[i].push(value);
      socket.on('later', fn);
      return fn;
    });
    // One synchronous turn: the adapter sends all of it as one cluster message, in order.
    for (let k = 0; k < 500; k++) server.to('room').emit('data', { k, pad: 'p'.repeat(k % 7) });
    server.in('room').socketsJoin('room-2');
    server.to('room-2').emit('later', 'after the join');
    expect(
      await pollUntil(
        () =>
          received.every((got, i) => got.length >= before[i] + 500) &&
          tail.every((t) => t.length >= 1),
        5_000,
      ),
    ).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    for (const [i, got] of received.entries()) {
      expect(got.slice(before[i]).map((v) => (v as { k: number }).k)).toEqual(
        Array.from({ length: 500 }, (_, k) => k),
      );
      expect(tail[i]).toEqual(['after the join']);
    }
    clients.forEach((socket, i) => socket.off('later', onLater[i]));
    server.in('room-2').socketsLeave('room-2');
  });

  it('a broadcast in another namespace reaches that namespace on B, and B sockets with onAnyOutgoing listeners see its arguments', async () => {
    const { port } = (b.getHttpServer() as HttpServer).address() as AddressInfo;
    const got: unknown[][] = [];
    const chat = await connect(`http://127.0.0.1:${port}/chat`, 'lobby', got);
    const outgoing: unknown[][] = [];
    const bChat = b.get(ChatGateway).server;
    for (const socket of bChat.sockets.values())
      socket.onAnyOutgoing((...args: unknown[]) => outgoing.push(args));
    const aChat = a.get(ChatGateway).server;
    expect(
      await pollUntil(async () => (await aChat.in('lobby').fetchSockets()).length === 1, 5_000),
    ).toBe(true);
    const before = received.map((r) => r.length);
    aChat.to('lobby').emit('said', { text: 'hi "there"', n: 1 });
    expect(await pollUntil(() => got.length >= 1, 5_000)).toBe(true);
    expect(got).toEqual([['said', { text: 'hi "there"', n: 1 }]]);
    expect(outgoing).toEqual([['said', { text: 'hi "there"', n: 1 }]]);
    // The default namespace's room saw none of it.
    expect(received.map((r) => r.length)).toEqual(before);
    chat.disconnect();
  });

  it('a malformed broadcast on the adapter topic is dropped; the next real one is delivered', async () => {
    const before = received.map((got) => got.length);
    const cluster = a.get(ClusterService);
    for (const data of [
      { e: '0not-an-event', opts: { rooms: ['room'] } },
      { e: '2["data","x"]', opts: { rooms: 'room' } },
      { e: '2["data","x"]', opts: { rooms: ['room'], except: 'nope' } },
    ]) {
      cluster.publish(
        'socket.io:/',
        { m: { uid: 'forged', nsp: '/', type: 3, data } },
        { includeSelf: false },
      );
    }
    a.get(Gateway).server.to('room').emit('data', 'real');
    expect(
      await pollUntil(() => received.every((got, i) => got.length === before[i] + 1), 5_000),
    ).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    for (const [i, got] of received.entries()) expect(got.slice(before[i])).toEqual(['real']);
  });

  it('a broadcast with acknowledgements from A collects the acks of the clients on B', async () => {
    const server = a.get(Gateway).server;
    const answers = (await server
      .to('room')
      .timeout(3_000)
      .emitWithAck('ask', 'ready')) as string[];
    expect([...answers].sort()).toEqual(['ready? client 0', 'ready? client 1']);
  });
});

describe('ClusterIoAdapter on a cluster whose maxPayloadBytes is below one batch', () => {
  it('a turn of broadcasts larger than maxPayloadBytes in all still reaches every client, one by one, in order', async () => {
    const [p1, p2] = await freePorts(2);
    const a = await startApp('small-a', [p1, p2], 0, 4096);
    const b = await startApp('small-b', [p1, p2], 1, 4096);
    try {
      await a.get(ClusterService).waitForMembers(2, { timeoutMs: 10_000 });
      await b.get(ClusterService).waitForMembers(2, { timeoutMs: 10_000 });
      const { port } = (b.getHttpServer() as HttpServer).address() as AddressInfo;
      const got: unknown[][] = [];
      const socket = await connect(`http://127.0.0.1:${port}`, 'room', got);
      const server = a.get(Gateway).server;
      expect(
        await pollUntil(async () => (await server.in('room').fetchSockets()).length === 1, 10_000),
      ).toBe(true);
      // 100 × ~330 bytes: one batch would be ~33 kB, over the cluster's 4 kB limit.
      for (let k = 0; k < 100; k++) server.to('room').emit('data', { k, pad: 'q'.repeat(300) });
      expect(await pollUntil(() => got.length >= 100, 5_000)).toBe(true);
      expect(got.map(([, value]) => (value as { k: number }).k)).toEqual(
        Array.from({ length: 100 }, (_, k) => k),
      );
      socket.disconnect();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }, 30_000);
});
