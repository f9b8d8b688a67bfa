/**
 * One write per client for a burst of packets.
 *
 * engine.io sends a connection's queued packets in one `flush` (its write buffer fills while
 * the previous frame is on its way, which is what a burst of broadcasts does), but `ws` writes
 * each WebSocket frame to the TCP socket on its own: a flush of 100 packets costs 100 system
 * calls. Corking the connection's TCP socket for the length of the flush makes it one `writev`;
 * the frames, their order and their callbacks are unchanged.
 *
 * engine.io emits `flush` right before and `drain` right after it hands the buffer to the
 * transport, synchronously; both are public events of its server. Only WebSocket transports
 * are corked (a polling response is one write already). Should a transport throw before
 * `drain`, the socket is uncorked on the next tick all the same.
 */

/** What this module uses of engine.io's `Server` (kept structural: socket.io is optional). */
interface EngineServer {
  on(event: 'flush' | 'drain', listener: (conn: EngineConnection) => void): unknown;
}

interface EngineConnection {
  readonly transport?: {
    readonly name?: string;
    /** The `ws` WebSocket of a WebSocket transport; `_socket` is its TCP socket. */
    readonly socket?: { readonly _socket?: CorkableSocket };
  };
}

interface CorkableSocket {
  cork(): void;
  uncork(): void;
  readonly destroyed?: boolean;
}

const batched = new WeakSet<object>();
const corked = new WeakMap<object, CorkableSocket>();

function release(conn: EngineConnection): void {
  const socket = corked.get(conn);
  if (!socket) return;
  corked.delete(conn);
  socket.uncork();
}

function rawSocketOf(conn: EngineConnection): CorkableSocket | undefined {
  const transport = conn.transport;
  if (transport?.name !== 'websocket') return undefined;
  const socket = transport.socket?._socket;
  return socket && typeof socket.cork === 'function' && typeof socket.uncork === 'function'
    ? socket
    : undefined;
}

/**
 * Makes every flush of the engine.io server `engine` leave in one write per connection.
 * Idempotent; a value that is not an engine.io server is left alone.
 */
export function batchWebSocketWrites(engine: unknown): void {
  if (engine === null || typeof engine !== 'object') return;
  if (typeof (engine as { on?: unknown }).on !== 'function' || batched.has(engine)) return;
  batched.add(engine);
  const server = engine as EngineServer;
  server.on('flush', (conn) => {
    const socket = rawSocketOf(conn);
    if (!socket || socket.destroyed || corked.has(conn)) return;
    socket.cork();
    corked.set(conn, socket);
    process.nextTick(release, conn);
  });
  server.on('drain', release);
}
