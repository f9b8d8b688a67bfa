/**
 * Runs sample-app nodes as real processes for cluster, e2e and browser tests.
 *
 * ```ts
 * useNodeCleanup(); // kills what the file started, prints node output when a test fails
 * const cookie = randomCookie();
 * const a = await startNode({ name: 'a@127.0.0.1', env: staticEnv(cookie, ports, 0) });
 * await a.waitForMembers(['a@127.0.0.1', 'b@127.0.0.1']);
 * ```
 *
 * Nodes run `dist-sample/sample-app/main.js`; it is compiled here (once, shared by parallel
 * test files) when missing or older than `lib/` or `sample-app/`. Each node starts with a
 * clean environment (only `PATH`, `HOME` and what the test passes), in an empty working
 * directory (no stray `.env`), its HTTP server on 127.0.0.1 and the sample app's test-only
 * routes on (`SAMPLE_DEBUG_ROUTES=true`: `POST /debug/stall {"ms"}` blocks its event loop).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach } from 'vitest';
import { SseCollector } from './sse.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const SAMPLE_MAIN = join(ROOT, 'dist-sample/sample-app/main.js');

/** Body of `GET /cluster` (see sample-app/cluster/cluster-view.ts). */
export interface ClusterView {
  self: MemberView;
  members: MemberView[];
  leader: string | null;
  quorum: { required: number | null; reachable: number; ok: boolean };
  term: number;
  strategy: string;
  mode: 'cluster' | 'single-node';
  topologies: { name: string; strategy: string; ok: boolean; error?: string }[];
}

export interface MemberView {
  name: string;
  address: string;
  incarnation: string;
  startedAt: string;
  joinedAt: string;
  self: boolean;
  leader: boolean;
  state: 'up' | 'unreachable';
}

export interface StartNodeOptions {
  /** Label in messages; also `NODE_NAME` unless `env` sets `NODE_NAME` (even to undefined). */
  name: string;
  /** Environment of the node on top of `PATH`/`HOME`; `undefined` leaves a variable unset. */
  env?: Record<string, string | undefined>;
  /** HTTP port. @default a free port */
  httpPort?: number;
  /** Time to wait until `GET /cluster` answers, ms. @default 30000 */
  readyTimeoutMs?: number;
  /** Command prefix, e.g. `['ip', 'netns', 'exec', 'host1']` to run the node on a lab host. */
  prefix?: string[];
  /** Address the HTTP API binds and the test connects to. @default '127.0.0.1' */
  httpHost?: string;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const live = new Set<NodeProcess>();
const HTTP_TIMEOUT_MS = 5_000;
const POLL_MS = 100;
const OUTPUT_TAIL_LINES = 80;
// Colours off, so that tests read plain log lines; test-only routes (POST /debug/stall) on.
const BASE_ENV = { NO_COLOR: '1', FORCE_COLOR: '0', SAMPLE_DEBUG_ROUTES: 'true' };

/** An error answer of the sample app's HTTP API (Nest's exception body, plus the app's fields). */
export interface HttpErrorBody {
  readonly statusCode?: number;
  readonly error?: string;
  readonly message?: string | string[];
  readonly remote?: unknown;
}

/** GET /health: Terminus' answer with the cluster indicator. */
export interface HealthAnswer extends HttpErrorBody {
  readonly status: string;
  readonly details: { cluster: { status: string; members?: number; self?: unknown } };
}

/** POST /messages: the members a message was delivered to, and those it was not. */
export interface PublishAnswer extends HttpErrorBody {
  readonly delivered: string[];
  readonly failed: { node: string; reason: string }[];
}

/** GET /messages: one message the node received. */
export interface ReceivedMessageView {
  readonly topic: string;
  readonly payload: unknown;
  readonly from: string;
  readonly at: string;
}

/** GET /jobs: one run of the leader-only job. */
export interface JobRunView {
  readonly node: string;
  readonly members: number;
}

/** GET /jobs/local: how often the leader-only job ran on this node. */
export interface LocalRunsView {
  readonly node: string;
  readonly runs: number;
  readonly lastRunAt: string | null;
  readonly lastTerm: number | null;
}

/** PUT /flags/:name answers `{ flag }`; GET /flags/:name answers the flag. */
export interface FlagView {
  readonly name: string;
  readonly enabled: boolean;
}

/** One sample-app process. */
export class NodeProcess {
  readonly url: string;
  readonly exited: Promise<ExitStatus>;
  private readonly chunks: string[] = [];
  private readonly streams = new Set<SseCollector>();
  private exitStatus: ExitStatus | undefined;

  constructor(
    readonly name: string,
    readonly httpPort: number,
    readonly child: ChildProcess,
    private readonly workDir: string,
    httpHost = '127.0.0.1',
  ) {
    this.url = `http://${httpHost}:${httpPort}`;
    const collect = (chunk: Buffer) => this.chunks.push(chunk.toString('utf8'));
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.exited = new Promise((resolveExit) => {
      child.once('exit', (code, signal) => {
        this.exitStatus = { code, signal };
        live.delete(this);
        for (const stream of this.streams) stream.close();
        rmSync(this.workDir, { recursive: true, force: true });
        resolveExit(this.exitStatus);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.exitStatus === undefined;
  }

  /** Everything the node printed so far (stdout and stderr, in arrival order). */
  output(): string {
    return stripAnsi(this.chunks.join(''));
  }

  /** Log lines that match. */
  lines(pattern: RegExp): string[] {
    return this.output()
      .split('\n')
      .filter((line) => pattern.test(line));
  }

  /** The last lines of output, for failure messages. */
  tail(lines = OUTPUT_TAIL_LINES): string {
    const all = this.output().trimEnd().split('\n');
    const shown = all.slice(-lines).map((line) => `  [${this.name}] ${line}`);
    return (all.length > lines ? `  [${this.name}] …\n` : '') + shown.join('\n');
  }

  /** GET/POST/PUT on this node's HTTP API; `T` is the shape of the (JSON) answer the caller expects. */
  async http<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }> {
    const response = await fetch(this.url + path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: response.status, body: parsed as T };
  }

  /** `GET path` answering 200, as JSON. */
  async json<T = unknown>(path: string): Promise<T> {
    const { status, body } = await this.http<T>('GET', path);
    if (status !== 200)
      throw new Error(`${this.name}: GET ${path} answered ${status}: ${JSON.stringify(body)}`);
    return body;
  }

  cluster(): Promise<ClusterView> {
    return this.json<ClusterView>('/cluster');
  }

  /** Names of the members `GET /cluster` shows, sorted. */
  async memberNames(): Promise<string[]> {
    return (await this.cluster()).members.map((m) => m.name).sort();
  }

  /**
   * Waits until `GET /cluster` shows exactly these members (names, any order) or this many.
   * Fails with the last view and the node's output.
   */
  async waitForMembers(expected: string[] | number, timeoutMs = 20_000): Promise<ClusterView> {
    const want =
      typeof expected === 'number'
        ? `${expected} members`
        : `members [${[...expected].sort().join(', ')}]`;
    return this.waitForCluster(
      (view) =>
        typeof expected === 'number'
          ? view.members.length === expected
          : sameNames(
              view.members.map((m) => m.name),
              expected,
            ),
      want,
      timeoutMs,
    );
  }

  /** Waits until `GET /cluster` satisfies `predicate`. */
  async waitForCluster(
    predicate: (view: ClusterView) => boolean,
    description: string,
    timeoutMs = 20_000,
  ): Promise<ClusterView> {
    let last: ClusterView | undefined;
    let lastError: unknown;
    const ok = await pollUntil(async () => {
      this.assertRunning(description);
      try {
        last = await this.cluster();
        lastError = undefined;
        return predicate(last);
      } catch (error) {
        lastError = error;
        return false;
      }
    }, timeoutMs);
    if (ok && last) return last;
    const seen = last
      ? `it shows [${last.members.map((m) => m.name).join(', ')}], leader ${last.leader}`
      : `GET /cluster failed: ${String(lastError)}`;
    throw new Error(
      `${this.name}: no ${description} within ${timeoutMs} ms; ${seen}\n${this.tail()}`,
    );
  }

  /** Waits for a line of output matching `pattern`; resolves with it. */
  async waitForOutput(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
    let found: string | undefined;
    const ok = await pollUntil(() => {
      found = this.lines(pattern)[0];
      if (found === undefined) this.assertRunning(`output ${pattern}`);
      return found !== undefined;
    }, timeoutMs);
    if (ok && found !== undefined) return found;
    throw new Error(
      `${this.name}: no output matching ${pattern} within ${timeoutMs} ms\n${this.tail()}`,
    );
  }

  /** Follows `GET /cluster/events` (or another SSE path); closed when the node exits. */
  async events(path = '/cluster/events'): Promise<SseCollector> {
    const collector = new SseCollector(this.url + path);
    this.streams.add(collector);
    await collector.connected;
    return collector;
  }

  /** Sends a signal (SIGTERM: graceful leave; SIGKILL: crash). */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.running) process.kill(this.pid, signal);
  }

  /** Freezes the process (SIGSTOP): its peers stop hearing from it. */
  stop(): void {
    this.kill('SIGSTOP');
  }

  /** Resumes a frozen process (SIGCONT). */
  cont(): void {
    this.kill('SIGCONT');
  }

  /** SIGTERM, then waits for the exit; SIGKILL after `timeoutMs`. */
  async shutdown(timeoutMs = 10_000): Promise<ExitStatus> {
    if (!this.running) return this.exited;
    this.cont();
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  private assertRunning(waitingFor: string): void {
    if (this.exitStatus) {
      const { code, signal } = this.exitStatus;
      throw new Error(
        `${this.name} exited (code ${code}, signal ${signal}) while waiting for ${waitingFor}\n${this.tail()}`,
      );
    }
  }
}

/** Starts a sample-app node and waits until its HTTP API answers. */
export async function startNode(options: StartNodeOptions): Promise<NodeProcess> {
  await ensureSampleBuilt();
  const httpPort = options.httpPort ?? (await freePort());
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? tmpdir(),
    ...BASE_ENV,
    PORT: String(httpPort),
    HOST: options.httpHost ?? '127.0.0.1',
  };
  const extra = {
    ...(options.env && 'NODE_NAME' in options.env ? {} : { NODE_NAME: options.name }),
    ...options.env,
  };
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  const workDir = mkdtempSync(join(tmpdir(), 'cluster-node-'));
  const [command, ...args] = [
    ...(options.prefix ?? []),
    process.execPath,
    '--enable-source-maps',
    SAMPLE_MAIN,
  ];
  const child = spawn(command, args, {
    cwd: workDir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const node = new NodeProcess(options.name, httpPort, child, workDir, options.httpHost);
  live.add(node);
  const timeoutMs = options.readyTimeoutMs ?? 30_000;
  const ready = await pollUntil(async () => {
    if (!node.running) return true;
    try {
      return (await fetch(`${node.url}/cluster`, { signal: AbortSignal.timeout(1_000) })).ok;
    } catch {
      return false;
    }
  }, timeoutMs);
  if (!node.running || !ready) {
    const status = node.running
      ? `not answering GET /cluster after ${timeoutMs} ms`
      : 'exited during start';
    node.kill('SIGKILL');
    throw new Error(
      `${options.name} (pid ${node.pid}, http ${httpPort}): ${status}\n${node.tail()}`,
    );
  }
  return node;
}

/** Kills every node this test file started (by PID) and waits for them to exit. */
export async function cleanupNodes(): Promise<void> {
  const nodes = [...live];
  for (const node of nodes) {
    node.cont();
    node.kill('SIGKILL');
  }
  await Promise.all(nodes.map((node) => node.exited));
}

/** Nodes started by this file so far and still running. */
export function runningNodes(): NodeProcess[] {
  return [...live];
}

/**
 * Registers the hooks every file that starts nodes needs: on a failed test, print the
 * output of the running nodes; after the file, kill them all.
 */
export function useNodeCleanup(): void {
  afterEach((context) => {
    if (context.task.result?.state !== 'fail') return;
    for (const node of live) {
      console.error(`--- output of ${node.name} (pid ${node.pid}) ---\n${node.tail()}`);
    }
  });
  afterAll(cleanupNodes);
}

// Last resort if the test process exits without cleanup: never leave nodes behind.
process.once('exit', () => {
  for (const node of live) {
    try {
      process.kill(node.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** A random cookie, so that no two test runs (or files) can ever join each other. */
export function randomCookie(): string {
  return randomBytes(24).toString('base64url');
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

/** `count` distinct free ports. */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/**
 * Environment of node `index` of a static-strategy cluster on 127.0.0.1: every node lists
 * all link ports (the core skips its own). No UDP at all.
 */
export function staticEnv(
  cookie: string,
  linkPorts: number[],
  index: number,
): Record<string, string> {
  return {
    NODE_COOKIE: cookie,
    LIBCLUSTER_STRATEGY: 'static',
    LIBCLUSTER_HOSTS: linkPorts.map((port) => `127.0.0.1:${port}`).join(','),
    LIBCLUSTER_POLLING_INTERVAL: '500',
    CLUSTER_PORT: String(linkPorts[index]),
    CLUSTER_BIND_ADDRESS: '127.0.0.1',
    CLUSTER_ADVERTISE_ADDRESS: '127.0.0.1',
    CLUSTER_HEARTBEAT_INTERVAL_MS: '250',
    CLUSTER_FAILURE_TIMEOUT_MS: '2000',
  };
}

/**
 * Environment of a gossip-strategy node on 127.0.0.1 with multicast pinned to loopback
 * (`multicast_if 127.0.0.1`, TTL 1 inside the test network namespace, 0 outside it: host
 * only). `gossipPort` should be unique per test file.
 */
export function gossipEnv(
  cookie: string,
  gossipPort: number,
  linkPort = 0,
): Record<string, string> {
  return {
    NODE_COOKIE: cookie,
    LIBCLUSTER_STRATEGY: 'gossip',
    LIBCLUSTER_GOSSIP_PORT: String(gossipPort),
    LIBCLUSTER_GOSSIP_MULTICAST_IF: '127.0.0.1',
    LIBCLUSTER_GOSSIP_MULTICAST_TTL: process.env.CLUSTER_TEST_NETNS === '1' ? '1' : '0',
    CLUSTER_PORT: String(linkPort),
    CLUSTER_BIND_ADDRESS: '127.0.0.1',
    CLUSTER_ADVERTISE_ADDRESS: '127.0.0.1',
    CLUSTER_HEARTBEAT_INTERVAL_MS: '250',
    CLUSTER_FAILURE_TIMEOUT_MS: '2000',
  };
}

/** Polls `check` every 100 ms until it returns true (→ true) or `timeoutMs` passes (→ false). */
export async function pollUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function sameNames(actual: string[], expected: string[]): boolean {
  const a = [...actual].sort();
  const b = [...expected].sort();
  return a.length === b.length && a.every((name, i) => name === b[i]);
}

function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\[[0-9;]*m/g, '');
}

// ---- building the sample app -------------------------------------------------------

const SOURCE_DIRS = ['lib', 'sample-app'].map((dir) => join(ROOT, dir));
const BUILD_LOCK = join(ROOT, 'dist-sample.lock');
const BUILD_TIMEOUT_MS = 180_000;
let built: Promise<void> | undefined;

/**
 * Compiles the sample app (`tsc -p tsconfig.sample.json`) unless `dist-sample` is newer than
 * every source. A lock directory keeps parallel test files from compiling at once.
 */
export function ensureSampleBuilt(): Promise<void> {
  built ??= build();
  return built;
}

async function build(): Promise<void> {
  if (isFresh()) return;
  const deadline = Date.now() + BUILD_TIMEOUT_MS;
  while (!tryLock()) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${BUILD_LOCK} (remove it if stale)`);
    await new Promise((r) => setTimeout(r, 250));
  }
  try {
    if (isFresh()) return;
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    const result = await new Promise<{ code: number; output: string }>((resolveRun) => {
      execFile(
        process.execPath,
        [tsc, '-p', 'tsconfig.sample.json'],
        { cwd: ROOT, timeout: BUILD_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 },
        (error, stdout, stderr) => resolveRun({ code: error ? 1 : 0, output: stdout + stderr }),
      );
    });
    if (result.code !== 0 && !existsSync(SAMPLE_MAIN)) {
      throw new Error(
        `compiling the sample app failed (tsc -p tsconfig.sample.json):\n${result.output}`,
      );
    }
    if (result.code !== 0) {
      console.warn(
        `tsc -p tsconfig.sample.json reported errors; running the emitted code anyway:\n${result.output}`,
      );
    }
  } finally {
    rmSync(BUILD_LOCK, { recursive: true, force: true });
  }
}

function tryLock(): boolean {
  try {
    mkdirSync(BUILD_LOCK);
    return true;
  } catch {
    try {
      if (Date.now() - statSync(BUILD_LOCK).mtimeMs > BUILD_TIMEOUT_MS) {
        rmSync(BUILD_LOCK, { recursive: true, force: true });
      }
    } catch {
      // released meanwhile
    }
    return false;
  }
}

function isFresh(): boolean {
  if (!existsSync(SAMPLE_MAIN)) return false;
  const builtAt = statSync(SAMPLE_MAIN).mtimeMs;
  return SOURCE_DIRS.every((dir) => newestSource(dir) <= builtAt);
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}
