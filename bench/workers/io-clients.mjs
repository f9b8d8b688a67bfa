// The Socket.IO clients of the room-broadcast scenario, all in this one process:
// BENCH_IO_PER_NODE socket.io-client connections (WebSocket) to each URL of BENCH_IO_URLS,
// every one joined to BENCH_IO_ROOM before `ready`. Each `m` event any client receives is one
// delivery for the `sink` command (common.mjs): with C clients, a broadcast counts C times,
// and its latency is measured at each client.
import { io } from 'socket.io-client';
import { env, runWorker } from './common.mjs';

const urls = env('BENCH_IO_URLS', '').split(',').filter(Boolean);
const perNode = Number(env('BENCH_IO_PER_NODE', '2'));
const room = env('BENCH_IO_ROOM', 'bench-room');
const sockets = [];

await runWorker({
  async start(ctx) {
    for (const url of urls) {
      for (let i = 0; i < perNode; i++) {
        const socket = io(url, {
          transports: ['websocket'],
          reconnection: false,
          forceNew: true,
          timeout: 10000,
        });
        sockets.push(socket);
        socket.on('m', (text) => ctx.message(text));
      }
    }
    await Promise.all(
      sockets.map(
        (socket) =>
          new Promise((resolve, reject) => {
            socket.once('connect', resolve);
            socket.once('connect_error', reject);
          }),
      ),
    );
    await Promise.all(sockets.map((socket) => socket.timeout(10000).emitWithAck('join', room)));
  },
  async stop() {
    for (const socket of sockets) socket.disconnect();
  },
});
