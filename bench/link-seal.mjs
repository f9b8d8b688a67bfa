// What sealing costs at the link layer alone: two transports (build/esm/: tsc's output, not
// the bundle) in one process over loopback TCP, one link, frames of 120 bytes sent in batches
// of 500 with a yield to I/O between batches — sealed (the default) and unsealed (bench-only
// seam), alternately. CPU time per frame (both ends, one process) is what a busy machine
// disturbs least.
//   npm run build && bash scripts/in-netns.sh node bench/link-seal.mjs
import { setImmediate as yieldToIo } from 'node:timers/promises';
import { Logger } from '@nestjs/common';

Logger.overrideLogger(['warn', 'error']);

const { Transport } = await import(
  new URL('../build/esm/transport/index.js', import.meta.url).href
);

const FRAMES = Number(process.env.LINK_SEAL_FRAMES ?? 200000);
const ROUNDS = Number(process.env.LINK_SEAL_ROUNDS ?? 5);
const TYPE = 32;
const payload = Buffer.alloc(120, 'x');
const quiet = { log() {}, warn() {}, error() {}, debug() {}, verbose() {} };

function identity(name) {
  return { name, incarnation: `${name}-1`, startedAt: 1, endpoint: '' };
}

async function round(sealLinks) {
  const make = (name) =>
    new Transport({
      identity: () => identity(name),
      cookie: 'link-seal-bench-cookie',
      bindAddress: '127.0.0.1',
      port: 0,
      acceptedTypes: new Set([TYPE]),
      logger: quiet,
      sealLinks,
    });
  const a = make('a@127.0.0.1');
  const b = make('b@127.0.0.1');
  const { port } = await b.listen();
  let got = 0;
  let done;
  const all = new Promise((resolve) => (done = resolve));
  b.on('link', (link) =>
    link.on('frame', () => {
      if (++got === FRAMES) done();
    }),
  );
  const link = await a.dial('127.0.0.1', port);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let sent = 0;
  while (sent < FRAMES) {
    const end = Math.min(FRAMES, sent + 500);
    while (sent < end && link.send(TYPE, payload)) sent++;
    await yieldToIo();
  }
  await all;
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await a.close();
  await b.close();
  return { framesPerSec: FRAMES / (ms / 1000), cpuUsPerFrame: (cpu.user + cpu.system) / FRAMES };
}

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const results = { sealed: [], unsealed: [] };
for (let r = 0; r < ROUNDS; r++) {
  results.sealed.push(await round(true));
  results.unsealed.push(await round(false));
}
for (const [mode, rs] of Object.entries(results)) {
  console.log(
    JSON.stringify({
      mode,
      frames: FRAMES,
      rounds: ROUNDS,
      medianFramesPerSec: Math.round(median(rs.map((r) => r.framesPerSec))),
      medianCpuUsPerFrame: +median(rs.map((r) => r.cpuUsPerFrame)).toFixed(3),
      framesPerSec: rs.map((r) => Math.round(r.framesPerSec)),
    }),
  );
}
