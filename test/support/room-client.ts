/**
 * A real `socket.io-client` connection to a sample-app node, recording the `room-message`
 * events it receives.
 *
 * ```ts
 * const client = await RoomClient.connect(node);
 * await client.join('lobby');
 * await client.waitFor((messages) => messages.length >= 3);
 * ```
 */
import { io, type Socket } from 'socket.io-client';
import { pollUntil } from './node-process.js';

/** `room-message` body (sample-app/rooms/rooms.controller.ts). */
export interface RoomMessage {
  room: string;
  text: string;
  from: string;
}

/** Ack of `join` / `leave` (sample-app/rooms/rooms.gateway.ts). */
export type RoomAck = { ok: true; room: string; node: string } | { ok: false; error: string };

const open = new Set<RoomClient>();

export class RoomClient {
  readonly messages: RoomMessage[] = [];
  disconnectReason: string | undefined;

  private constructor(
    readonly label: string,
    readonly socket: Socket,
  ) {
    socket.on('room-message', (message: RoomMessage) => this.messages.push(message));
    socket.on('disconnect', (reason) => {
      this.disconnectReason = reason;
    });
  }

  /** Connects over WebSocket (no reconnection: a node that dies stays gone). */
  static async connect(
    node: { url: string; name: string },
    label = node.name,
  ): Promise<RoomClient> {
    const socket = io(node.url, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      timeout: 5_000,
    });
    const client = new RoomClient(label, socket);
    open.add(client);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', (error) =>
        reject(new Error(`${label}: connect failed: ${error.message}`)),
      );
    });
    return client;
  }

  get id(): string {
    return this.socket.id ?? '';
  }

  /** Emits `join` and resolves with the ack. */
  join(room: unknown): Promise<RoomAck> {
    return this.socket.timeout(5_000).emitWithAck('join', room) as Promise<RoomAck>;
  }

  /** Emits `leave` and resolves with the ack. */
  leave(room: unknown): Promise<RoomAck> {
    return this.socket.timeout(5_000).emitWithAck('leave', room) as Promise<RoomAck>;
  }

  /** Messages of one room. */
  inRoom(room: string): RoomMessage[] {
    return this.messages.filter((m) => m.room === room);
  }

  /** Waits until `check(messages)` holds; false after `timeoutMs`. */
  waitFor(check: (messages: RoomMessage[]) => boolean, timeoutMs = 5_000): Promise<boolean> {
    return pollUntil(() => check(this.messages), timeoutMs);
  }

  close(): void {
    this.socket.disconnect();
    open.delete(this);
  }
}

/** Closes every client opened so far. */
export function closeRoomClients(): void {
  for (const client of [...open]) client.close();
}
