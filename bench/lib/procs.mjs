// Worker processes as seen by the orchestrator: spawn, read their JSON lines, wait for
// observations with a deadline, read CPU and RSS from /proc, stop them by PID.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';

const WORKERS = new URL('../workers/', import.meta.url);
const live = new Set();
/**
 * BENCH_CPU_PROF=<dir>: every worker runs with `--cpu-prof` into <dir> and is stopped with
 * SIGTERM first (a profile is written on a graceful exit only). For finding where the time
 * goes; the figures of such a run are not comparable with a normal one.
 */
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF || '';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Worker extends EventEmitter {
  /**
   * @param {string} script   file under bench/workers/
   * @param {object} env      BENCH_* variables
   */
  constructor(script, env) {
    super();
    this.setMaxListeners(0);
    this.name = env.BENCH_NAME;
    this.events = [];
    this.exited = false;
    this.spawnT = Date.now();
    const profile = CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}`] : [];
    this.proc = spawn(process.execPath, [...profile, new URL(script, WORKERS).pathname], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.pid = this.proc.pid;
    live.add(this);
    this.stderr = '';
    this.proc.stderr.on('data', (d) => {
      if (this.stderr.length < 4000) this.stderr += d;
    });
    this.proc.stdin.on('error', () => {});
    createInterface({ input: this.proc.stdout }).on('line', (line) => {
      let ev;
      try {
        ev = JSON.parse(line);
      } catch {
        return;
      }
      this.events.push(ev);
      this.emit('ev', ev);
    });
    this.exitPromise = new Promise((resolve) =>
      this.proc.on('exit', (code, signal) => {
        this.exited = true;
        live.delete(this);
        this.emit('exit', { code, signal });
        resolve({ code, signal });
      }),
    );
  }

  send(cmd) {
    if (!this.exited) this.proc.stdin.write(JSON.stringify(cmd) + '\n');
  }

  /** First event (already seen or future) matching `pred`, or null after `timeoutMs`. */
  waitFor(pred, timeoutMs, { since = 0 } = {}) {
    const seen = this.events.find((e) => e.t >= since && pred(e));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const onEv = (e) => {
        if (e.t >= since && pred(e)) done(e);
      };
      const onExit = () => done(null);
      const timer = setTimeout(() => done(null), timeoutMs);
      const done = (v) => {
        clearTimeout(timer);
        this.off('ev', onEv);
        this.off('exit', onExit);
        resolve(v);
      };
      this.on('ev', onEv);
      this.on('exit', onExit);
    });
  }

  signal(sig) {
    if (!this.exited) {
      try {
        process.kill(this.pid, sig);
      } catch {
        /* already gone */
      }
    }
  }

  async kill() {
    if (this.exited) return;
    this.signal('SIGCONT');
    if (CPU_PROF_DIR) {
      this.signal('SIGTERM');
      await Promise.race([this.exitPromise, sleep(8000)]);
      if (this.exited) return;
    }
    this.signal('SIGKILL');
    await Promise.race([this.exitPromise, sleep(3000)]);
  }
}

/** Kills every worker still running (by PID). */
export async function killAll(workers = [...live]) {
  await Promise.all(workers.map((w) => w.kill()));
}

process.on('exit', () => {
  for (const w of live) {
    try {
      process.kill(w.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
});

const CLK_TCK = 100; // USER_HZ on Linux

/** utime + stime of a process, seconds. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

/** VmRSS of a process, bytes. */
export function rssBytes(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Bytes received on `lo` (inside the bench's private netns only the bench's traffic). */
export function loBytes() {
  const line = readFileSync('/proc/net/dev', 'utf8')
    .split('\n')
    .find((l) => l.trim().startsWith('lo:'));
  const f = line.split(':')[1].trim().split(/\s+/);
  return { rxBytes: Number(f[0]), rxPackets: Number(f[1]) };
}
