// Shared runtime of every bench worker: one node per process, observations as JSON lines on
// stdout, commands as JSON lines on stdin. A system plugs in through a small adapter:
//
//   {
//     start(ctx) → Promise      ctx: { name, profile, cluster, added(name), removed(name, reason),
//                                      message(text) }
//     publish?(text, to) → void|bool  send one message to node `to` (or to all nodes);
//                                 false: refused (back-pressure), resent later
//     stop() → Promise            graceful leave
//     commands?: { name(cmd) }    extra stdin commands
//   }
//
// Every stdout line is `{"ev": …, "t": <Date.now()>, …}`; all workers run on one machine, so
// the orchestrator compares their timestamps directly. Message latency uses
// process.hrtime (CLOCK_MONOTONIC, shared by all processes of the machine).
import { createInterface } from 'node:readline';

export function env(name, fallback) {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : v;
}

export function emit(ev, fields = {}) {
  process.stdout.write(JSON.stringify({ ev, t: Date.now(), ...fields }) + '\n');
}

const nowNs = () => process.hrtime.bigint();

/** Busy-waits `ms` milliseconds: the event loop is blocked as by a long synchronous task. */
function stall(ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    /* spin */
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** Message body of exactly `size` bytes: `<seq>:<hrtime ns>:` then padding. */
function stringBody(seq, size) {
  const head = `${seq}:${nowNs()}:`;
  return head + 'x'.repeat(Math.max(0, size - head.length));
}

/**
 * A fresh object per message, as an app's `publish(topic, obj)` passes one: its JSON is
 * `size` bytes, `{"seq":…,"sentNs":"<hrtime ns>","pad":"xx…"}`.
 */
function objectBody(seq, size) {
  const sentNs = String(nowNs());
  const fixed = `{"seq":${seq},"sentNs":"${sentNs}","pad":""}`.length;
  return { seq, sentNs, pad: 'x'.repeat(Math.max(0, size - fixed)) };
}

/** Send time (hrtime ns) carried by a message of either shape; null when unreadable. */
/**
 * The send time (hrtime ns) a message carries, 0 when it has none: `<seq>:<hrtime ns>:…` for
 * strings, `sentNs` for objects. Ns values of a machine's uptime are exact as Numbers.
 */
function sentAt(message, shape) {
  if (shape === 'object') {
    const ns = typeof message === 'object' && message !== null ? Number(message.sentNs) : 0;
    return Number.isFinite(ns) ? ns : 0;
  }
  if (typeof message !== 'string') return 0;
  const head = message.indexOf(':');
  const end = head < 0 ? -1 : message.indexOf(':', head + 1);
  const ns = end < 0 ? 0 : Number(message.slice(head + 1, end));
  return Number.isFinite(ns) ? ns : 0;
}

export async function runWorker(adapter) {
  const name = env('BENCH_NAME', `node-${process.pid}`);
  const profile = env('BENCH_PROFILE', 'defaults');
  const cluster = env('BENCH_CLUSTER', 'bench');
  const maxLifeMs = Number(env('BENCH_MAX_LIFE_MS', '900000'));

  const members = new Set();
  let receiver = null; // active message sink

  const ctx = {
    name,
    profile,
    cluster,
    added(peer) {
      if (peer === ctx.name || members.has(peer)) return;
      members.add(peer);
      emit('added', { node: peer, n: members.size + 1 });
      emit('members', { n: members.size + 1 });
    },
    removed(peer, reason) {
      if (!members.delete(peer)) return;
      emit('removed', { node: peer, reason: reason ?? 'unknown', n: members.size + 1 });
      emit('members', { n: members.size + 1 });
    },
    message(text) {
      if (receiver) receiver(text);
    },
  };

  let stopping = false;
  async function shutdown(code) {
    if (stopping) return;
    stopping = true;
    const t0 = Date.now();
    try {
      await Promise.race([adapter.stop(), new Promise((r) => setTimeout(r, 5000).unref())]);
    } catch (err) {
      emit('error', { where: 'stop', message: String(err?.message ?? err) });
    }
    emit('stopped', { ms: Date.now() - t0 });
    process.exit(code);
  }
  process.on('SIGTERM', () => void shutdown(0));
  process.on('SIGINT', () => void shutdown(0));
  // The orchestrator going away ends the worker too: no process outlives a bench run.
  process.stdin.on('end', () => void shutdown(0));
  setTimeout(() => void shutdown(0), maxLifeMs).unref();

  const commands = {
    stall({ ms }) {
      emit('stall-begin', { ms });
      stall(ms);
      emit('stall-end', { ms });
    },
    usage() {
      const u = process.resourceUsage();
      emit('usage', { rss: process.memoryUsage().rss, cpuUs: u.userCPUTime + u.systemCPUTime });
    },
    /**
     * Receive until `count` messages arrived or `idleMs` passed without one. `shape`:
     * `string` (one string per message) or `object` (a fresh object per message). `lats`: the
     * answer carries every latency (µs, 0.1 µs steps), for percentiles over several sinks.
     */
    sink({ count, idleMs = 3000, size = 100, shape = 'string', lats = false }) {
      let got = 0;
      let firstNs = 0n;
      let lastNs = 0n;
      let bad = 0;
      const lat = [];
      let idle = null;
      // Arrival times are taken on the monotonic clock only; converted to epoch ms at the end
      // (one clock read per message keeps the measuring out of the measured).
      const epochMs0 = performance.timeOrigin + performance.now();
      const mono0 = nowNs();
      const epochMs = (ns) => epochMs0 + Number(ns - mono0) / 1e6;
      const finish = () => {
        clearTimeout(idle);
        receiver = null;
        lat.sort((a, b) => a - b);
        emit('sink-done', {
          got,
          bad,
          firstT: got ? epochMs(firstNs) : 0,
          lastT: got ? epochMs(lastNs) : 0,
          p50us: percentile(lat, 50),
          p99us: percentile(lat, 99),
          maxus: lat.length ? lat[lat.length - 1] : null,
          ...(lats ? { lat: lat.map((us) => Math.round(us * 10) / 10) } : {}),
        });
      };
      const arm = () => {
        clearTimeout(idle);
        idle = setTimeout(finish, idleMs);
      };
      receiver = (text) => {
        const recvNs = nowNs();
        if (shape === 'object') {
          if (typeof text !== 'object' || text === null || typeof text.pad !== 'string') bad++;
        } else if (typeof text !== 'string' || text.length !== size) bad++;
        const sentNs = sentAt(text, shape);
        if (sentNs > 0) lat.push((Number(recvNs) - sentNs) / 1000);
        if (got === 0) firstNs = recvNs;
        got++;
        lastNs = recvNs;
        if (got >= count) finish();
        else if ((got & 1023) === 0) arm();
      };
      arm();
      emit('sink-ready', { count });
    },
    /**
     * Send `count` messages of `size` bytes. rate = 0: as fast as the system accepts them
     * (batches, yielding to I/O between batches); rate > 0: that many per second, paced in
     * 1 ms ticks. `shape`: `string` or `object` (a fresh object per message, see objectBody).
     */
    async send({ count, size = 100, rate = 0, batch = 500, to, shape = 'string' }) {
      const body = shape === 'object' ? objectBody : stringBody;
      const t0 = performance.timeOrigin + performance.now();
      let seq = 0;
      if (rate > 0) {
        const start = Date.now();
        await new Promise((resolve) => {
          const tick = () => {
            const due = Math.min(count, Math.floor(((Date.now() - start) * rate) / 1000));
            while (seq < due && adapter.publish(body(seq, size), to) !== false) seq++;
            if (seq >= count || Date.now() - start > (count / rate) * 1000 + 30000) resolve();
            else setTimeout(tick, 1);
          };
          tick();
        });
      } else {
        const deadline = Date.now() + 60000;
        while (seq < count && Date.now() < deadline) {
          const end = Math.min(count, seq + batch);
          let ok = true;
          while (seq < end && ok) {
            ok = adapter.publish(body(seq, size), to) !== false;
            if (ok) seq++;
          }
          // Yield so sockets drain; on back-pressure wait, then resend the refused message.
          await new Promise((r) => (ok ? setImmediate(r) : setTimeout(r, 1)));
        }
      }
      emit('send-done', {
        sent: seq,
        startT: t0,
        endT: performance.timeOrigin + performance.now(),
      });
    },
  };

  Object.assign(commands, adapter.commands ?? {});

  createInterface({ input: process.stdin }).on('line', (line) => {
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch {
      return;
    }
    const fn = commands[cmd.cmd];
    if (cmd.cmd === 'leave') return void shutdown(0);
    if (!fn) return emit('error', { where: 'command', message: `unknown command ${cmd.cmd}` });
    Promise.resolve()
      .then(() => fn(cmd))
      .catch((err) => emit('error', { where: cmd.cmd, message: String(err?.message ?? err) }));
  });

  try {
    await adapter.start(ctx);
  } catch (err) {
    emit('error', { where: 'start', message: String(err?.stack ?? err) });
    process.exit(1);
  }
  emit('ready', { name: ctx.name, pid: process.pid });
  emit('members', { n: members.size + 1 });
}
