import {
  BadRequestException,
  Body,
  Controller,
  Get,
  HttpCode,
  HttpException,
  HttpStatus,
  Param,
  Post,
  Query,
} from '@nestjs/common';
import { ClusterService, PayloadError } from '../../lib/index.js';
import { roomProblem } from './room-name.js';
import { type RoomSocketData, RoomsGateway } from './rooms.gateway.js';

/** Longest `text` of a room message, in characters. */
export const MAX_TEXT_LENGTH = 10_000;
/** Longest `timeoutMs` of `GET /rooms/:room/sockets`. */
const MAX_TIMEOUT_MS = 30_000;

/** Body of the `room-message` event every socket of the room receives. */
export interface RoomMessage {
  room: string;
  text: string;
  /** Node that took the `POST`. */
  from: string;
}

/** One socket in `GET /rooms/:room/sockets`. */
export interface RoomSocketView {
  id: string;
  node: string;
  rooms: string[];
}

/**
 * Room operations over the cluster adapter, from any node: broadcast to a room
 * (`POST /rooms/:room/messages`, with `except`), list a room's sockets on every node
 * (`fetchSockets`), make sockets join or leave a room wherever they are connected, and ask
 * every node's name (`serverSideEmit` with acknowledgements).
 */
@Controller('rooms')
export class RoomsController {
  constructor(
    private readonly gateway: RoomsGateway,
    private readonly cluster: ClusterService,
  ) {}

  /** Names of the nodes whose socket.io server answered `whoami`, this one first. */
  @Get('nodes')
  async nodes(): Promise<{ nodes: string[] }> {
    const others = (await this.gateway.server.serverSideEmitWithAck('whoami')) as string[];
    return { nodes: [this.cluster.self.name, ...others] };
  }

  /**
   * Emits `room-message` `{room, text, from}` to every socket in `room` on every node, except
   * the sockets in the rooms (or with the socket ids) listed in `except`.
   */
  @Post(':room/messages')
  @HttpCode(HttpStatus.CREATED)
  message(@Param('room') room: string, @Body() body: unknown): RoomMessage & { except: string[] } {
    const problems: string[] = [];
    const roomError = roomProblem(room);
    if (roomError) problems.push(roomError);
    const { text, except } = (typeof body === 'object' && body !== null ? body : {}) as Record<
      string,
      unknown
    >;
    if (typeof text !== 'string') problems.push('text is required (a string)');
    else if (text.length > MAX_TEXT_LENGTH)
      problems.push(`text must be at most ${MAX_TEXT_LENGTH} characters`);
    const exceptRooms = except === undefined ? [] : Array.isArray(except) ? except : [except];
    if (exceptRooms.some((r) => roomProblem(r) !== null))
      problems.push('except must be a room name or a list of them');
    if (problems.length) throw new BadRequestException(problems);

    const message: RoomMessage = { room, text: text as string, from: this.cluster.self.name };
    try {
      this.gateway.server
        .to(room)
        .except(exceptRooms as string[])
        .emit('room-message', message);
    } catch (error) {
      if (error instanceof PayloadError) {
        throw new HttpException(
          { error: error.name, message: error.message },
          HttpStatus.PAYLOAD_TOO_LARGE,
        );
      }
      throw error;
    }
    return { ...message, except: exceptRooms as string[] };
  }

  /** The sockets in `room` on every node (`fetchSockets`), sorted by id. */
  @Get(':room/sockets')
  async sockets(
    @Param('room') room: string,
    @Query('timeoutMs') timeoutText?: string,
  ): Promise<{ sockets: RoomSocketView[]; ms: number }> {
    const problem = roomProblem(room);
    if (problem) throw new BadRequestException([problem]);
    const timeoutMs = timeoutText === undefined ? 5_000 : Number(timeoutText);
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
      throw new BadRequestException([`timeoutMs must be an integer from 1 to ${MAX_TIMEOUT_MS}`]);
    }
    const started = performance.now();
    try {
      const found = await this.gateway.server.in(room).timeout(timeoutMs).fetchSockets();
      const sockets = found
        .map((s) => ({
          id: s.id,
          node: (s.data as RoomSocketData).node,
          rooms: [...s.rooms].sort(),
        }))
        .sort((a, b) => a.id.localeCompare(b.id));
      return { sockets, ms: Math.round(performance.now() - started) };
    } catch (error) {
      throw new HttpException(
        { error: 'FetchSocketsError', message: String((error as Error).message ?? error) },
        HttpStatus.GATEWAY_TIMEOUT,
      );
    }
  }

  /** Makes the sockets in `sockets` (ids or rooms) join `room`, on whatever node they are. */
  @Post(':room/join')
  @HttpCode(HttpStatus.OK)
  joinSockets(
    @Param('room') room: string,
    @Body() body: unknown,
  ): { room: string; sockets: string[] } {
    const sockets = this.targets(room, body);
    this.gateway.server.in(sockets).socketsJoin(room);
    return { room, sockets };
  }

  /** Makes the sockets in `sockets` (ids or rooms) leave `room`, on whatever node they are. */
  @Post(':room/leave')
  @HttpCode(HttpStatus.OK)
  leaveSockets(
    @Param('room') room: string,
    @Body() body: unknown,
  ): { room: string; sockets: string[] } {
    const sockets = this.targets(room, body);
    this.gateway.server.in(sockets).socketsLeave(room);
    return { room, sockets };
  }

  /** Disconnects every socket in `room`, on every node. */
  @Post(':room/disconnect')
  @HttpCode(HttpStatus.OK)
  disconnect(@Param('room') room: string): { room: string } {
    const problem = roomProblem(room);
    if (problem) throw new BadRequestException([problem]);
    this.gateway.server.in(room).disconnectSockets(true);
    return { room };
  }

  private targets(room: string, body: unknown): string[] {
    const problems: string[] = [];
    const roomError = roomProblem(room);
    if (roomError) problems.push(roomError);
    const { sockets } = (typeof body === 'object' && body !== null ? body : {}) as Record<
      string,
      unknown
    >;
    const list = Array.isArray(sockets) ? sockets : [sockets];
    if (list.length === 0 || list.some((s) => roomProblem(s) !== null)) {
      problems.push('sockets must be a socket id or room, or a non-empty list of them');
    }
    if (problems.length) throw new BadRequestException(problems);
    return list as string[];
  }
}
