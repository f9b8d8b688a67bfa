import { Logger } from '@nestjs/common';
import {
  ConnectedSocket,
  MessageBody,
  type OnGatewayConnection,
  type OnGatewayInit,
  SubscribeMessage,
  WebSocketGateway,
  WebSocketServer,
} from '@nestjs/websockets';
import type { Server, Socket } from 'socket.io';
import { ClusterService } from '../../lib/index.js';
import { RateLimitedLogger } from '../../lib/logging/rate-limited-logger.js';
import { roomProblem } from './room-name.js';

/** Ack of `join` / `leave`. */
export type RoomAck = { ok: true; room: string; node: string } | { ok: false; error: string };

/** Data every socket carries (`socket.data`, visible in `fetchSockets()` on any node). */
export interface RoomSocketData {
  /** Node the socket is connected to. */
  node: string;
}

/**
 * Socket.IO on the app's HTTP port (default path), with the cluster adapter installed by
 * `main.ts` (`ClusterIoAdapter`): a client emits `join` with a room name, and
 * `POST /rooms/:room/messages` on any node reaches every socket of that room on every node.
 *
 * Server-side event `whoami` (`serverSideEmit`, with acknowledgement) answers this node's name.
 */
@WebSocketGateway()
export class RoomsGateway implements OnGatewayInit, OnGatewayConnection {
  private readonly logger = new Logger(RoomsGateway.name);
  private readonly rateLimited = new RateLimitedLogger(this.logger, 10_000);

  @WebSocketServer()
  server!: Server;

  constructor(private readonly cluster: ClusterService) {}

  afterInit(server: Server): void {
    server.on('whoami', (ack: unknown) => {
      if (typeof ack === 'function') (ack as (name: string) => void)(this.cluster.self.name);
    });
  }

  handleConnection(socket: Socket): void {
    (socket.data as RoomSocketData).node = this.cluster.self.name;
  }

  /** Joins the socket to `room`; acks `{ok, room, node}` or `{ok: false, error}`. */
  @SubscribeMessage('join')
  async join(@ConnectedSocket() socket: Socket, @MessageBody() room: unknown): Promise<RoomAck> {
    const problem = roomProblem(room);
    if (problem) {
      this.rateLimited.warn(`join:${socket.id}`, `socket ${socket.id}: join refused: ${problem}`);
      return { ok: false, error: problem };
    }
    await socket.join(room as string);
    return { ok: true, room: room as string, node: this.cluster.self.name };
  }

  /** Removes the socket from `room`. */
  @SubscribeMessage('leave')
  async leave(@ConnectedSocket() socket: Socket, @MessageBody() room: unknown): Promise<RoomAck> {
    const problem = roomProblem(room);
    if (problem) return { ok: false, error: problem };
    await socket.leave(room as string);
    return { ok: true, room: room as string, node: this.cluster.self.name };
  }
}
