// Side-by-side measurements of nestjs-cluster and its peers (Moleculer TCP transporter with
// UDP discovery, node-discover, Redis pub/sub). Run inside the bench's private network
// namespace: `npm run bench`, or `bash scripts/in-netns.sh node bench/run.mjs [flags]`.
//
//   --quick                 1 repetition, smaller sizes, 10 s idle window (about 8 minutes)
//   --only a,b              scenarios: cold-start, late-join, failure, idle, messaging,
//                           scale, scale-many, socket-io, microservices, startup
//   --systems a,b           nestjs-cluster, nestjs-cluster-unsealed (messaging), moleculer,
//                           node-discover, redis
//   --profiles a,b          defaults, matched
//   --reps N                repetitions (default 3)
//   --scale 50,100,200      node counts of the scale scenarios
//   --idle-seconds S        idle measurement window (default 30)
//   --out DIR               where the JSON and a RESULTS.md go (default: bench/results and
//                           bench/RESULTS.md)
//   --report FILE[,FILE]    only re-render bench/RESULTS.md from saved results files (several:
//                           one report, each scenario from the last file that has it)
//
// Every worker runs one node and reports observations as JSON lines with Date.now()
// timestamps (see workers/common.mjs); this file only starts, signals and times them.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { createServer as createNetServer } from 'node:net';
import { parseArgs } from 'node:util';
import os from 'node:os';
import { Worker, killAll, sleep, cpuSeconds, rssBytes, loBytes } from './lib/procs.mjs';
import { aggregate, machineInfo, packageVersions, markdown, median } from './lib/report.mjs';

const ROOT = new URL('../', import.meta.url);

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    systems: { type: 'string' },
    profiles: { type: 'string' },
    reps: { type: 'string' },
    scale: { type: 'string' },
    'idle-seconds': { type: 'string' },
    'io-client-procs': { type: 'string' },
    out: { type: 'string' },
    report: { type: 'string' },
  },
});

const quick = flags.quick || process.env.BENCH_QUICK === '1';
const list = (s) =>
  s
    ? s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean)
    : null;
const ALL_SCENARIOS = [
  'cold-start',
  'late-join',
  'failure',
  'idle',
  'messaging',
  'scale',
  'scale-many',
  'socket-io',
  'microservices',
  'startup',
];
const opts = {
  quick,
  scenarios: list(flags.only ?? process.env.BENCH_ONLY) ?? ALL_SCENARIOS,
  systems: list(flags.systems ?? process.env.BENCH_SYSTEMS),
  profiles: list(flags.profiles ?? process.env.BENCH_PROFILES) ?? ['defaults', 'matched'],
  reps: Number(flags.reps ?? process.env.BENCH_REPS ?? (quick ? 1 : 3)),
  coldSizes: quick ? [5, 10] : [5, 10, 20],
  idleSizes: quick ? [10] : [10, 20],
  idleSeconds: Number(flags['idle-seconds'] ?? (quick ? 10 : 30)),
  scaleSizes: (
    list(flags.scale ?? process.env.BENCH_SCALE) ?? (quick ? ['50'] : ['50', '100', '200'])
  ).map(Number),
  scaleIdleSeconds: quick ? 6 : 10,
  msgCount: quick ? 30000 : 100000,
  latencySeconds: quick ? 2 : 3,
  latencyRate: 10000,
  convergeTimeoutMs: 30000,
  detectTimeoutMs: 12000,
  stallMs: 2000,
  stallWatchMs: 6000,
  // Socket.IO room broadcast: node 1 → ioPerNode clients on each of 3 nodes.
  ioNodes: 3,
  ioPerNode: 2,
  // Processes the clients live in (the clients of node i in process i mod N): the load
  // generator must not be the bottleneck, as browsers on other machines are not.
  ioClientProcs: Number(flags['io-client-procs'] ?? process.env.BENCH_IO_CLIENT_PROCS ?? 1),
  ioBroadcasts: quick ? 10000 : 20000,
  ioLatencyRate: 1000,
  ioLatencySeconds: quick ? 2 : 3,
  // @nestjs/microservices request/reply: one client process → one server process.
  msRequests: quick ? 10000 : 20000,
  msConcurrency: [1, 50],
};

// ---------------------------------------------------------------------------------------
// Systems under test. `profiles`: the settings each one runs at; `same` maps a profile to
// one already measured when the settings are identical (nestjs-cluster's defaults ARE
// heartbeat 1 s / failure timeout 5 s).

const ourBuild = new URL('dist/index.js', ROOT);
const SYSTEMS = {
  'nestjs-cluster': {
    script: 'nestjs-cluster.mjs',
    profiles: ['defaults'],
    same: { matched: 'defaults' },
    membership: true,
    messaging: true,
    failureTimeoutMs: { defaults: 5000 },
  },
  moleculer: {
    script: 'moleculer.mjs',
    profiles: ['defaults', 'matched'],
    membership: true,
    messaging: true,
    failureTimeoutMs: { defaults: null, matched: 5000 },
  },
  'node-discover': {
    script: 'node-discover.mjs',
    profiles: ['defaults', 'matched'],
    membership: true,
    messaging: false,
    failureTimeoutMs: { defaults: 2000, matched: 5000 },
  },
  // The same build with link records unsealed (a bench-only seam): what sealing costs.
  'nestjs-cluster-unsealed': {
    script: 'nestjs-cluster.mjs',
    env: { BENCH_SEAL_LINKS: 'off' },
    profiles: ['defaults'],
    membership: false,
    formsPair: true,
    messaging: true,
  },
  redis: { script: 'redis.mjs', profiles: ['defaults'], membership: false, messaging: true },
};

const samples = [];
const notes = [];
const log = (...a) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);
const record = (scenario, system, profile, param, rep, metric, value) =>
  samples.push({ scenario, system, profile, param, rep, metric, value });
const note = (scenario, text) => {
  if (!notes.some((n) => n.scenario === scenario && n.text === text))
    notes.push({ scenario, text });
};

function systemsWith(feature) {
  return Object.entries(SYSTEMS)
    .filter(([name, s]) => s[feature] && (!opts.systems || opts.systems.includes(name)))
    .filter(([name]) => !name.startsWith('nestjs-cluster') || ourAvailable());
}

function profilesOf(sys) {
  return sys.profiles.filter(
    (p) =>
      opts.profiles.includes(p) ||
      Object.entries(sys.same ?? {}).some(([a, b]) => b === p && opts.profiles.includes(a)),
  );
}

/** Label for a measured profile, including the profiles it stands for. */
function profileLabel(sys, p) {
  const alias = Object.entries(sys.same ?? {})
    .filter(([, b]) => b === p)
    .map(([a]) => a);
  return alias.length ? [p, ...alias].join(' = ') : p;
}

let ourChecked = null;
function ourAvailable() {
  if (ourChecked === null) {
    ourChecked = existsSync(ourBuild);
    if (!ourChecked)
      note(null, 'nestjs-cluster: dist/index.js missing (build failed?) — not measured.');
  }
  return ourChecked;
}

// ---------------------------------------------------------------------------------------
// Clusters

let clusterSeq = 0;

/** Starts `n` nodes of one system together; resolves once all are spawned. */
function startCluster(sysName, profile, n, { first = 1 } = {}) {
  const sys = SYSTEMS[sysName];
  clusterSeq++;
  const base = {
    ...(sys.env ?? {}),
    BENCH_PROFILE: profile,
    BENCH_CLUSTER: `c${clusterSeq}p${process.pid}`,
    BENCH_UDP_PORT: String(20000 + (clusterSeq % 20000)),
  };
  const cluster = { sysName, sys, profile, base, workers: [], t0: Date.now() };
  cluster.add = (i) => {
    const w = new Worker(sys.script, { ...base, BENCH_NAME: `n${i}@127.0.0.1` });
    cluster.workers.push(w);
    return w;
  };
  for (let i = first; i < first + n; i++) cluster.add(i);
  return cluster;
}

async function stopCluster(c) {
  await killAll(c.workers);
}

/** Time (max over `workers`) at which each saw at least `n` members; null on timeout. */
async function converged(workers, n, timeoutMs, since = 0) {
  const evs = await Promise.all(
    workers.map((w) => w.waitFor((e) => e.ev === 'members' && e.n >= n, timeoutMs, { since })),
  );
  if (evs.some((e) => !e)) return null;
  return Math.max(...evs.map((e) => e.t));
}

async function readyAll(workers, timeoutMs) {
  const evs = await Promise.all(workers.map((w) => w.waitFor((e) => e.ev === 'ready', timeoutMs)));
  if (evs.some((e) => !e)) {
    const bad = workers.find((w, i) => !evs[i]);
    log(`worker ${bad.name} not ready: ${bad.stderr.slice(0, 600)}`);
    return null;
  }
  return Math.max(...evs.map((e) => e.t));
}

function minMembers(workers) {
  return Math.min(
    ...workers.map((w) => w.events.filter((e) => e.ev === 'members').reduce((m, e) => e.n, 1)),
  );
}

// ---------------------------------------------------------------------------------------
// Scenarios

/** CPU, RSS and loopback bytes of `pids` over `windows` consecutive windows of `seconds`. */
async function measureIdle(pids, nodes, seconds, windows) {
  const out = [];
  for (let i = 0; i < windows; i++) {
    const cpu0 = pids.map(cpuSeconds);
    const lo0 = loBytes();
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const dt = (performance.now() - t0) / 1000;
    const cpu1 = pids.map(cpuSeconds);
    const lo1 = loBytes();
    const cpuTotal = cpu1.reduce(
      (s, c, j) => s + (c !== null && cpu0[j] !== null ? c - cpu0[j] : 0),
      0,
    );
    const rss = pids.map(rssBytes).filter((r) => r !== null);
    out.push({
      cpuPctPerNode: (cpuTotal / dt / nodes) * 100,
      // One process per node: mean over the processes; K nodes in one process: RSS / K.
      rssMBPerNode:
        rss.reduce((s, r) => s + r, 0) / (pids.length === nodes ? rss.length : nodes) / 2 ** 20,
      bytesPerSecPerNode: (lo1.rxBytes - lo0.rxBytes) / dt / nodes,
      packetsPerSecPerNode: (lo1.rxPackets - lo0.rxPackets) / dt / nodes,
    });
  }
  return out;
}

async function baselineRss(script) {
  const w = new Worker(script, { BENCH_NAME: 'baseline' });
  await w.waitFor((e) => e.ev === 'ready', 20000);
  await sleep(3000);
  const rss = rssBytes(w.pid);
  await w.kill();
  return rss / 2 ** 20;
}

// Membership scenarios share clusters to keep the run short on a small machine:
//   chain A  N=10 started together → cold start → (rep 0) idle cost → 2 s stall on node 1
//            (false downs) → cluster whole again → SIGKILL node 10 (crash, 9 survivors)
//   chain B  10 formed → node 11 spawned (late join) → SIGSTOP node 11 (freeze, 10 survivors)
//            → node 11 killed → SIGTERM node 10 (graceful leave, 9 survivors)
//   N=5 and N=20 cold starts stand alone; the N=20 cluster of rep 0 gives the 20-node idle cost.
const sel = (s) => opts.scenarios.includes(s);
let baselines = null;

/** Latest membership size each worker reported. */
function currentMembers(w) {
  for (let i = w.events.length - 1; i >= 0; i--)
    if (w.events[i].ev === 'members') return w.events[i].n;
  return 1;
}

async function whole(workers, n, timeoutMs) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (workers.every((w) => currentMembers(w) >= n)) return true;
    await sleep(100);
  }
  return false;
}

async function coldStartRun(name, p, label, n, rep) {
  const c = startCluster(name, p, n);
  const ready = await readyAll(c.workers, opts.convergeTimeoutMs);
  const t = ready && (await converged(c.workers, n, opts.convergeTimeoutMs));
  if (sel('cold-start')) {
    record('cold-start', name, label, n, rep, 'convergeFromSpawnMs', t ? t - c.t0 : null);
    record(
      'cold-start',
      name,
      label,
      n,
      rep,
      'convergeFromLastReadyMs',
      t ? Math.max(0, t - ready) : null,
    );
    record('cold-start', name, label, n, rep, 'spawnToAllReadyMs', ready ? ready - c.t0 : null);
  }
  log(
    `cold-start ${name}/${p} N=${n} rep ${rep}: ${t ? `${t - c.t0} ms from spawn, ${t - ready} ms after last ready` : `did not converge (min members ${minMembers(c.workers)})`}`,
  );
  if (!t) {
    await stopCluster(c);
    return null;
  }
  return c;
}

/** Time until every live survivor reported `victim` removed, or null; also how many did. */
async function detection(c, victim, t0, timeoutMs) {
  const survivors = c.workers.filter((w) => w !== victim && !w.exited);
  const evs = await Promise.all(
    survivors.map((w) =>
      w.waitFor((e) => e.ev === 'removed' && e.node === victim.name, timeoutMs, { since: t0 }),
    ),
  );
  const seen = evs.filter(Boolean);
  return {
    allMs: seen.length === survivors.length ? Math.max(...seen.map((e) => e.t)) - t0 : null,
    firstMs: seen.length ? Math.min(...seen.map((e) => e.t)) - t0 : null,
    detected: seen.length,
    survivors: survivors.length,
    reasons: [...new Set(seen.map((e) => e.reason))],
  };
}

async function failureCase(c, kind, sig, victim, name, label, rep, skip) {
  if (skip.has(kind)) {
    record('failure', name, label, kind, rep, 'allSurvivorsMs', null);
    return;
  }
  const t0 = Date.now();
  victim.signal(sig);
  const d = await detection(c, victim, t0, opts.detectTimeoutMs);
  record('failure', name, label, kind, rep, 'allSurvivorsMs', d.allMs);
  record('failure', name, label, kind, rep, 'firstSurvivorMs', d.firstMs);
  record('failure', name, label, kind, rep, 'survivors', d.survivors);
  if (d.reasons.length)
    note('failure', `${name} (${label}) ${kind}: reported as ${d.reasons.join(', ')}`);
  if (d.allMs === null) {
    note(
      'failure',
      `${name} (${label}) ${kind}: ${d.detected}/${d.survivors} survivors reported it within ${opts.detectTimeoutMs} ms${d.detected === 0 ? ' (not measured again in later repetitions)' : ''}`,
    );
    if (d.detected === 0) skip.add(kind);
  }
  log(
    `${kind} ${name}/${label} rep ${rep}: all ${d.allMs} ms, first ${d.firstMs} ms (${d.detected}/${d.survivors})`,
  );
}

async function idleOn(c, n, name, label) {
  const windows = 3;
  await sleep(3000);
  const before = c.workers.reduce(
    (k, w) => k + w.events.filter((e) => e.ev === 'removed').length,
    0,
  );
  const res = await measureIdle(
    c.workers.map((w) => w.pid),
    n,
    opts.idleSeconds / windows,
    windows,
  );
  const removed =
    c.workers.reduce((k, w) => k + w.events.filter((e) => e.ev === 'removed').length, 0) - before;
  if (removed) note('idle', `${name} (${label}) N=${n}: ${removed} removals while idle`);
  const baseline = name === 'nestjs-cluster' ? baselines.nest : baselines.node;
  res.forEach((r, i) => {
    for (const [m, v] of Object.entries(r)) record('idle', name, label, n, i, m, v);
    record('idle', name, label, n, i, 'rssOverBaselineMB', r.rssMBPerNode - baseline);
  });
  log(
    `idle ${name}/${label} N=${n}: ${res.map((r) => r.cpuPctPerNode.toFixed(3)).join(' ')} % cpu/node, ${res[0].rssMBPerNode.toFixed(1)} MiB`,
  );
}

async function clusterScenarios() {
  const wantIdle = sel('idle');
  if (wantIdle) {
    const node = [];
    const nest = [];
    for (let i = 0; i < 3; i++) {
      node.push(await baselineRss('bare-node.mjs'));
      nest.push(await baselineRss('bare-nest.mjs'));
    }
    baselines = { node: median(node), nest: median(nest) };
    node.forEach((v, i) =>
      record('idle', 'bare node process (baseline)', '—', 1, i, 'rssMBPerNode', v),
    );
    nest.forEach((v, i) =>
      record('idle', 'bare Nest app context (baseline)', '—', 1, i, 'rssMBPerNode', v),
    );
  }
  for (const [name, sys] of systemsWith('membership')) {
    for (const p of profilesOf(sys)) {
      const label = profileLabel(sys, p);
      const skip = new Set();
      for (let rep = 0; rep < opts.reps; rep++) {
        // Stand-alone cold starts (and the 20-node idle cost).
        for (const n of opts.coldSizes.filter((x) => x !== 10)) {
          const idleHere = wantIdle && rep === 0 && opts.idleSizes.includes(n);
          if (!sel('cold-start') && !idleHere) continue;
          const c = await coldStartRun(name, p, label, n, rep);
          if (c && idleHere) await idleOn(c, n, name, label);
          if (c) await stopCluster(c);
        }
        if (!sel('cold-start') && wantIdle && rep === 0) {
          for (const n of opts.idleSizes.filter((x) => x !== 10 && !opts.coldSizes.includes(x))) {
            const c = await coldStartRun(name, p, label, n, rep);
            if (c) await idleOn(c, n, name, label);
            if (c) await stopCluster(c);
          }
        }
        // The chain: cold start 10 → idle → stall → late join → freeze → crash → leave.
        const idle10 = wantIdle && rep === 0 && opts.idleSizes.includes(10);
        if (!(sel('cold-start') || sel('late-join') || sel('failure') || idle10)) continue;
        const c = await coldStartRun(name, p, label, 10, rep);
        if (!c) {
          if (sel('late-join')) record('late-join', name, label, 10, rep, 'joinFromSpawnMs', null);
          continue;
        }
        if (idle10) await idleOn(c, 10, name, label);
        if (sel('failure')) {
          await sleep(1000);
          const t0 = Date.now();
          c.workers[0].send({ cmd: 'stall', ms: opts.stallMs });
          await c.workers[0].waitFor((e) => e.ev === 'stall-end', opts.stallMs + 5000, {
            since: t0,
          });
          await sleep(opts.stallWatchMs);
          const falseDowns = c.workers.reduce(
            (k, w) => k + w.events.filter((e) => e.ev === 'removed' && e.t >= t0).length,
            0,
          );
          record('failure', name, label, 'stall', rep, 'falseDowns', falseDowns);
          log(`stall ${name}/${label} rep ${rep}: ${falseDowns} false downs`);
        }
        if (!(sel('late-join') || sel('failure'))) {
          await stopCluster(c);
          continue;
        }
        if (!(await whole(c.workers, 10, 10000))) {
          note(
            'failure',
            `${name} (${label}) rep ${rep}: cluster not whole 10 s after the stall; later steps not measured`,
          );
          await stopCluster(c);
          continue;
        }
        await sleep(500);
        const tj = Date.now();
        const w = c.add(11);
        const ready = await w.waitFor((e) => e.ev === 'ready', opts.convergeTimeoutMs);
        const t = ready && (await converged(c.workers, 11, opts.convergeTimeoutMs, tj));
        if (sel('late-join')) {
          record('late-join', name, label, 10, rep, 'joinFromSpawnMs', t ? t - tj : null);
          record(
            'late-join',
            name,
            label,
            10,
            rep,
            'joinFromReadyMs',
            t ? Math.max(0, t - ready.t) : null,
          );
        }
        log(
          `late-join ${name}/${label} rep ${rep}: ${t ? `${t - tj} ms from spawn, ${t - ready.t} ms after ready` : 'not seen by all'}`,
        );
        if (t && sel('failure')) {
          await sleep(1000);
          const tf = Date.now();
          await failureCase(c, 'freeze', 'SIGSTOP', w, name, label, rep, skip);
          await w.kill();
          // Node 11 gone for every survivor (after the freeze or the kill) before the crash.
          await detection(c, w, tf, opts.detectTimeoutMs);
          await sleep(500);
          await failureCase(c, 'crash', 'SIGKILL', c.workers[9], name, label, rep, skip);
          await sleep(500);
          await failureCase(c, 'leave', 'SIGTERM', c.workers[8], name, label, rep, skip);
        }
        await stopCluster(c);
      }
    }
  }
  note(
    'failure',
    'One chain per repetition: 10 nodes started together (cold start) → 2 s stall of node 1 → node 11 joins (late join) → SIGSTOP node 11 (freeze, 10 survivors) → node 11 killed and reported gone → SIGKILL node 10 (crash, cluster of 10, 9 survivors) → SIGTERM node 9 (leave, 8 survivors).',
  );
  note(
    'failure',
    `stall: node 1 busy-loops ${opts.stallMs} ms; false downs = removals reported by any node from the stall until ${opts.stallWatchMs} ms after it ended.`,
  );
  if (wantIdle) {
    note(
      'idle',
      `Idle cost: ${3} consecutive windows of ${opts.idleSeconds / 3} s on a converged cluster (the "repetitions" of this table); CPU = utime+stime from /proc/<pid>/stat summed over the nodes / N; bytes = /proc/net/dev lo rx bytes of the private netns / N.`,
    );
    note(
      'idle',
      'rssOverBaselineMB: RSS per node minus a bare Nest application context (nestjs-cluster) or a bare node process running the same worker runtime (peers).',
    );
  }
}

async function startRedis() {
  const port = 16379;
  const proc = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    const probe = new Worker('redis.mjs', { BENCH_NAME: 'probe', BENCH_REDIS_PORT: String(port) });
    const ok = await probe.waitFor((e) => e.ev === 'ready', 3000);
    await probe.kill();
    if (ok) return { proc, port };
  }
  proc.kill('SIGKILL');
  return null;
}

async function messaging() {
  const systems = systemsWith('messaging');
  let redis = null;
  if (systems.some(([name]) => name === 'redis')) {
    redis = await startRedis();
    if (!redis) note('messaging', 'redis-server did not start — Redis not measured.');
  }
  // Repetitions outer, systems inner: the systems are measured alternately, so a busy moment
  // of the machine falls on all of them alike.
  const shapes = [
    { shape: 'string', param: '100 B' },
    { shape: 'object', param: '100 B object' },
  ];
  for (let rep = 0; rep < opts.reps; rep++) {
    for (const [name, sys] of systems) {
      if (name === 'redis' && !redis) continue;
      const p = sys.profiles[0];
      const c = startCluster(name, p, 0);
      if (redis) c.base.BENCH_REDIS_PORT = String(redis.port);
      const a = c.add(1);
      const b = c.add(2);
      const ok =
        (await readyAll(c.workers, 30000)) &&
        (!(sys.membership || sys.formsPair) || (await converged(c.workers, 2, 30000)));
      if (!ok) {
        log(`messaging ${name}: pair did not form`);
        await stopCluster(c);
        continue;
      }
      /** CPU time (user + system, µs) each of the two processes used so far. */
      const usage = async () => {
        const since = Date.now();
        for (const w of [a, b]) w.send({ cmd: 'usage' });
        return Promise.all([a, b].map((w) => w.waitFor((e) => e.ev === 'usage', 5000, { since })));
      };
      for (const { shape, param } of shapes) {
        await sleep(500);
        // Throughput: as fast as the sender can push.
        const before = await usage();
        const t1 = Date.now();
        b.send({ cmd: 'sink', count: opts.msgCount, idleMs: 3000, shape });
        await b.waitFor((e) => e.ev === 'sink-ready', 5000, { since: t1 });
        a.send({ cmd: 'send', count: opts.msgCount, size: 100, rate: 0, to: b.name, shape });
        const sent = await a.waitFor((e) => e.ev === 'send-done', 90000, { since: t1 });
        const got = await b.waitFor((e) => e.ev === 'sink-done', 90000, { since: t1 });
        const tput =
          sent && got && got.got > 0 ? got.got / ((got.lastT - sent.startT) / 1000) : null;
        const after = await usage();
        record('messaging', name, 'defaults', param, rep, 'throughputMsgPerSec', tput);
        // CPU per message, which a busy machine disturbs less than wall-clock throughput
        // (the receiver's includes its 3 s idle wait, a few ms). Redis: its server's CPU is
        // not included.
        if (got?.got > 0 && before.every(Boolean) && after.every(Boolean)) {
          const perMsg = (i) => (after[i].cpuUs - before[i].cpuUs) / got.got;
          record('messaging', name, 'defaults', param, rep, 'senderCpuUsPerMsg', perMsg(0));
          record('messaging', name, 'defaults', param, rep, 'receiverCpuUsPerMsg', perMsg(1));
        }
        record(
          'messaging',
          name,
          'defaults',
          param,
          rep,
          'deliveredPct',
          got ? (got.got / opts.msgCount) * 100 : null,
        );
        // Latency at a fixed rate.
        await sleep(500);
        const t2 = Date.now();
        const count = opts.latencyRate * opts.latencySeconds;
        b.send({ cmd: 'sink', count, idleMs: 3000, shape });
        await b.waitFor((e) => e.ev === 'sink-ready', 5000, { since: t2 });
        a.send({ cmd: 'send', count, size: 100, rate: opts.latencyRate, to: b.name, shape });
        const lat = await b.waitFor((e) => e.ev === 'sink-done', 90000, { since: t2 });
        record('messaging', name, 'defaults', param, rep, 'p50LatencyUs', lat?.p50us ?? null);
        record('messaging', name, 'defaults', param, rep, 'p99LatencyUs', lat?.p99us ?? null);
        log(
          `messaging ${name} ${param} rep ${rep}: ${tput?.toFixed(0)} msg/s (${got?.got}/${opts.msgCount}), p50 ${lat?.p50us} us, p99 ${lat?.p99us} us`,
        );
      }
      await stopCluster(c);
    }
  }
  if (redis) redis.proc.kill('SIGKILL');
  note(
    'messaging',
    `Throughput: ${opts.msgCount} messages of 100 bytes from node 1 to node 2, sent in batches of 500 with a yield to I/O between batches; msg/s = received / (last receive − first send). Latency: ${opts.latencyRate} msg/s for ${opts.latencySeconds} s, one-way, CLOCK_MONOTONIC (process.hrtime) at send and at receive. "100 B": one 100-byte string per message; "100 B object": a fresh object per message ({seq, sentNs, pad}, 100 bytes of JSON), as an app's publish(topic, obj) passes one (Redis: JSON.stringify before PUBLISH, JSON.parse on receipt).`,
  );
  note(
    'messaging',
    "Redis: ioredis publisher and subscriber per node on one channel of a local redis-server (127.0.0.1). Moleculer: broker.emit to the receiving node's event group over the TCP transporter. nestjs-cluster: ClusterService.send(node, topic, payload) to the receiver, subscribe(topic) there, over the link between them (resent on BackpressureError); links sealed (AES-256-GCM records), the default. nestjs-cluster-unsealed: the same build with records unsealed through a bench-only seam, to show what sealing costs.",
  );
}

// ---------------------------------------------------------------------------------------
// Socket.IO adapter and @nestjs/microservices transport, each against its Redis counterpart
// on a redis-server of its own (127.0.0.1, random free port, stopped by PID).

/** The redis-server binary of the two Redis comparisons (BENCH_REDIS_SERVER). */
const REDIS_SERVER = process.env.BENCH_REDIS_SERVER || 'redis-server';

function redisServerInstalled() {
  try {
    execFileSync(REDIS_SERVER, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function freeTcpPort() {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A private redis-server on 127.0.0.1 (no persistence); null when it does not answer. */
async function startPrivateRedis() {
  const port = await freeTcpPort();
  const proc = spawn(
    REDIS_SERVER,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await Promise.race([exited, sleep(3000)]);
  };
  const { default: Redis } = await import('ioredis');
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    const probe = new Redis({
      host: '127.0.0.1',
      port,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    probe.on('error', () => {});
    const ok = await probe
      .connect()
      .then(
        () => probe.ping(),
        () => null,
      )
      .catch(() => null);
    probe.disconnect();
    if (ok === 'PONG') return { proc, port, stop };
  }
  await stop();
  return null;
}

/** Systems of the two Redis comparisons: ours always, Redis when redis-server is installed. */
function redisComparison(scenario, what) {
  const systems = ['nestjs-cluster', 'redis'].filter(
    (s) => !opts.systems || opts.systems.includes(s),
  );
  if (!ourAvailable()) systems.splice(systems.indexOf('nestjs-cluster'), 1);
  if (systems.includes('redis') && !redisServerInstalled()) {
    systems.splice(systems.indexOf('redis'), 1);
    // A general note: with Redis skipped the scenario may have no table to carry it.
    note(
      null,
      `${scenario}: ${REDIS_SERVER} is not installed, so ${what} was not measured (apt-get install redis-server).`,
    );
    log(`${scenario}: ${REDIS_SERVER} not installed, ${what} skipped`);
  }
  return systems;
}

/** Id of a worker command, echoed in its answer. */
let commandSeq = 0;

const IO_LABEL = { 'nestjs-cluster': 'ClusterIoAdapter', redis: '@socket.io/redis-adapter' };
const MS_LABEL = {
  'nestjs-cluster': 'ClusterTransport + ClusterClientProxy',
  redis: 'Transport.REDIS',
};

/** Percentile `p` of an ascending list (nearest rank), as the sinks compute it. */
function percentileOf(sorted, p) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/**
 * One broadcast run: `count` broadcasts from node 1 at `rate`/s (0: as fast as it goes),
 * received by every client process (`clients[i]` holds `perProc[i]` clients). The sinks'
 * answers are merged: deliveries summed, first/last delivery over all, latency percentiles
 * over every delivery (paced runs send their latencies along).
 */
async function broadcastRun(sender, clients, perProc, count, rate) {
  const t = Date.now();
  const lats = rate > 0;
  clients.forEach((c, i) => c.send({ cmd: 'sink', count: count * perProc[i], idleMs: 3000, lats }));
  const ready = await Promise.all(
    clients.map((c) => c.waitFor((e) => e.ev === 'sink-ready', 5000, { since: t })),
  );
  if (ready.some((r) => !r)) return null;
  sender.send({ cmd: 'send', count, size: 100, rate, batch: 100 });
  const sent = await sender.waitFor((e) => e.ev === 'send-done', 90000, { since: t });
  const done = await Promise.all(
    clients.map((c) => c.waitFor((e) => e.ev === 'sink-done', 90000, { since: t })),
  );
  if (!sent || done.some((d) => !d)) return null;
  const withAny = done.filter((d) => d.got > 0);
  const got = {
    got: done.reduce((sum, d) => sum + d.got, 0),
    firstT: withAny.length ? Math.min(...withAny.map((d) => d.firstT)) : 0,
    lastT: withAny.length ? Math.max(...withAny.map((d) => d.lastT)) : 0,
    p50us: null,
    p99us: null,
  };
  if (lats) {
    const all = done.flatMap((d) => d.lat ?? []).sort((a, b) => a - b);
    got.p50us = percentileOf(all, 50);
    got.p99us = percentileOf(all, 99);
  }
  return { sent, got };
}

async function socketIo() {
  const systems = redisComparison('socket-io', 'the @socket.io/redis-adapter comparison');
  const clientCount = opts.ioNodes * opts.ioPerNode;
  const clientProcs = Math.max(1, Math.min(opts.ioNodes, opts.ioClientProcs));
  const param = `${opts.ioNodes} nodes × ${opts.ioPerNode} clients, ${clientProcs} client process${clientProcs === 1 ? '' : 'es'}`;
  // Systems alternate within each repetition, so that other load on the machine falls on both.
  for (let rep = 0; rep < opts.reps; rep++) {
    for (const name of systems) {
      const label = IO_LABEL[name];
      const redis = name === 'redis' ? await startPrivateRedis() : null;
      if (name === 'redis' && !redis) {
        note(
          'socket-io',
          `redis-server did not answer — @socket.io/redis-adapter not measured in repetition ${rep}.`,
        );
        continue;
      }
      clusterSeq++;
      const base = {
        BENCH_IO_SYSTEM: name,
        BENCH_CLUSTER: `io${clusterSeq}p${process.pid}`,
        BENCH_UDP_PORT: String(20000 + (clusterSeq % 20000)),
        BENCH_IO_ROOM: 'bench-room',
        ...(redis ? { BENCH_REDIS_PORT: String(redis.port) } : {}),
      };
      const nodes = Array.from(
        { length: opts.ioNodes },
        (_, i) => new Worker('io-node.mjs', { ...base, BENCH_NAME: `io${i + 1}@127.0.0.1` }),
      );
      const stopAll = async (more = []) => {
        await killAll([...more, ...nodes]);
        await redis?.stop();
      };
      const ports = await Promise.all(
        nodes.map((w) => w.waitFor((e) => e.ev === 'io-listening', 30000)),
      );
      const ready =
        (await readyAll(nodes, 30000)) &&
        (name !== 'nestjs-cluster' || (await converged(nodes, opts.ioNodes, 30000)));
      if (!ready || ports.some((p) => !p)) {
        log(`socket-io ${name} rep ${rep}: nodes did not start or form`);
        note('socket-io', `${label} rep ${rep}: nodes did not start or form; not measured.`);
        await stopAll();
        continue;
      }
      // The clients of node i live in client process i mod clientProcs.
      const groups = Array.from({ length: clientProcs }, () => []);
      ports.forEach((p, i) => groups[i % clientProcs].push(`http://127.0.0.1:${p.port}`));
      const perProc = groups.map((urls) => urls.length * opts.ioPerNode);
      const clients = groups.map(
        (urls, i) =>
          new Worker('io-clients.mjs', {
            ...base,
            BENCH_NAME: `io-clients${i + 1}`,
            BENCH_IO_URLS: urls.join(','),
            BENCH_IO_PER_NODE: String(opts.ioPerNode),
          }),
      );
      if (!(await readyAll(clients, 30000))) {
        note('socket-io', `${label} rep ${rep}: clients did not connect; not measured.`);
        await stopAll(clients);
        continue;
      }
      await sleep(1000);
      const [sender] = nodes;
      await broadcastRun(sender, clients, perProc, 1000, 0); // warm-up
      await sleep(500);
      const pids = [...nodes, ...clients].map((w) => w.pid);
      const redisCpu0 = redis ? cpuSeconds(redis.proc.pid) : 0;
      const cpu0 = pids.map(cpuSeconds);
      const tput = await broadcastRun(sender, clients, perProc, opts.ioBroadcasts, 0);
      const cpu = pids.map((pid, i) => cpuSeconds(pid) - cpu0[i]);
      const redisCpu = redis ? cpuSeconds(redis.proc.pid) - redisCpu0 : null;
      if (tput) {
        // CPU per 1000 broadcasts: where the time goes (sender, each other node, the clients).
        const per1k = (sec) => (sec * 1e6) / opts.ioBroadcasts;
        record('socket-io', name, label, param, rep, 'senderCpuMsPer1k', per1k(cpu[0]));
        record(
          'socket-io',
          name,
          label,
          param,
          rep,
          'otherNodeCpuMsPer1k',
          per1k(median(cpu.slice(1, nodes.length))),
        );
        record(
          'socket-io',
          name,
          label,
          param,
          rep,
          'clientsCpuMsPer1k',
          per1k(cpu.slice(nodes.length).reduce((a, b) => a + b, 0)),
        );
        if (redis) record('socket-io', name, label, param, rep, 'redisCpuMsPer1k', per1k(redisCpu));
      }
      const perSec =
        tput && tput.got.got > 0
          ? tput.got.got / clientCount / ((tput.got.lastT - tput.sent.startT) / 1000)
          : null;
      record('socket-io', name, label, param, rep, 'broadcastsPerSec', perSec);
      record(
        'socket-io',
        name,
        label,
        param,
        rep,
        'deliveriesPerSec',
        perSec === null ? null : perSec * clientCount,
      );
      record(
        'socket-io',
        name,
        label,
        param,
        rep,
        'deliveredPct',
        tput ? (tput.got.got / (opts.ioBroadcasts * clientCount)) * 100 : null,
      );
      await sleep(500);
      const count = opts.ioLatencyRate * opts.ioLatencySeconds;
      const lat = await broadcastRun(sender, clients, perProc, count, opts.ioLatencyRate);
      record('socket-io', name, label, param, rep, 'ioP50LatencyUs', lat?.got.p50us ?? null);
      record('socket-io', name, label, param, rep, 'ioP99LatencyUs', lat?.got.p99us ?? null);
      record(
        'socket-io',
        name,
        label,
        param,
        rep,
        'pacedDeliveredPct',
        lat ? (lat.got.got / (count * clientCount)) * 100 : null,
      );
      log(
        `socket-io ${name} rep ${rep}: ${perSec?.toFixed(0)} broadcasts/s (${tput?.got.got}/${opts.ioBroadcasts * clientCount} deliveries; sender done after ${tput ? (tput.sent.endT - tput.sent.startT).toFixed(0) : '?'} ms, last delivery after ${tput ? (tput.got.lastT - tput.sent.startT).toFixed(0) : '?'} ms), paced p50 ${lat?.got.p50us?.toFixed(0)} us, p99 ${lat?.got.p99us?.toFixed(0)} us`,
      );
      await stopAll(clients);
    }
  }
  note(
    'socket-io',
    `${opts.ioNodes} socket.io servers (one process each, HTTP on 127.0.0.1), ${opts.ioPerNode} socket.io-client connections (WebSocket) to each, all in one room; the clients of node i in client process i mod ${clientProcs} (${clientProcs} process${clientProcs === 1 ? '' : 'es'}, CPU summed over them). Node 1 runs io.to(room).emit('m', <100 bytes>). Throughput: ${opts.ioBroadcasts} broadcasts in batches of 100 with a yield to I/O between batches; broadcasts/s = deliveries / clients / (last delivery − first send); deliveries/s = broadcasts/s × ${clientCount}. Latency: ${opts.ioLatencyRate} broadcasts/s for ${opts.ioLatencySeconds} s, measured at every client, one-way, CLOCK_MONOTONIC (process.hrtime). After a warm-up of 1000 broadcasts.`,
  );
  note(
    'socket-io',
    'ClusterIoAdapter: nestjs-cluster from dist/ (gossip on loopback), IoAdapter.createIOServer on a plain HTTP server, as Nest does for a gateway. @socket.io/redis-adapter: createAdapter(pub, sub) with two ioredis clients per node on a private redis-server.',
  );
}

async function microservices() {
  const systems = redisComparison('microservices', 'the Transport.REDIS comparison');
  // Systems alternate within each repetition, so that other load on the machine falls on both.
  for (let rep = 0; rep < opts.reps; rep++) {
    for (const name of systems) {
      const label = MS_LABEL[name];
      const redis = name === 'redis' ? await startPrivateRedis() : null;
      if (name === 'redis' && !redis) {
        note(
          'microservices',
          `redis-server did not answer — Transport.REDIS not measured in repetition ${rep}.`,
        );
        continue;
      }
      clusterSeq++;
      const base = {
        BENCH_MS_SYSTEM: name,
        BENCH_CLUSTER: `ms${clusterSeq}p${process.pid}`,
        BENCH_UDP_PORT: String(20000 + (clusterSeq % 20000)),
        ...(redis ? { BENCH_REDIS_PORT: String(redis.port) } : {}),
      };
      const server = new Worker('ms-node.mjs', {
        ...base,
        BENCH_NAME: 'ms-server@127.0.0.1',
        BENCH_MS_ROLE: 'server',
      });
      const client = new Worker('ms-node.mjs', {
        ...base,
        BENCH_NAME: 'ms-client@127.0.0.1',
        BENCH_MS_ROLE: 'client',
      });
      const stopAll = async () => {
        await killAll([client, server]);
        await redis?.stop();
      };
      const ready =
        (await readyAll([server, client], 30000)) &&
        (name !== 'nestjs-cluster' || (await converged([server, client], 2, 30000)));
      // The client knows the server's patterns (ours) / the server subscribed (Redis).
      let answered = false;
      for (let i = 0; ready && !answered && i < 50; i++) {
        const id = ++commandSeq;
        client.send({ cmd: 'probe', id });
        answered =
          (await client.waitFor((e) => e.ev === 'probe' && e.id === id, 10000))?.ok === true;
        if (!answered) await sleep(200);
      }
      if (!answered) {
        log(`microservices ${name} rep ${rep}: no answer to the probe`);
        note('microservices', `${label} rep ${rep}: the server did not answer; not measured.`);
        await stopAll();
        continue;
      }
      const load = async (count, concurrency) => {
        const id = ++commandSeq;
        client.send({ cmd: 'load', id, count, concurrency, maxMs: 60000 });
        return client.waitFor((e) => e.ev === 'load-done' && e.id === id, 90000);
      };
      await load(2000, 10); // warm-up
      for (const concurrency of opts.msConcurrency) {
        const count = concurrency === 1 ? Math.round(opts.msRequests / 4) : opts.msRequests;
        const pids = [client.pid, server.pid];
        const cpu0 = pids.map(cpuSeconds);
        const redisCpu0 = redis ? cpuSeconds(redis.proc.pid) : 0;
        const r = await load(count, concurrency);
        const cpu = pids.map((pid, i) => cpuSeconds(pid) - cpu0[i]);
        const redisCpu = redis ? cpuSeconds(redis.proc.pid) - redisCpu0 : null;
        const param = `${concurrency} in flight`;
        // CPU per request of each process: at one in flight the round trip is mostly this.
        const perRequest = (sec) => (r?.done ? (sec * 1e6) / r.done : null);
        const rec = (metric, value) =>
          record('microservices', name, label, param, rep, metric, value);
        rec('clientCpuUsPerReq', perRequest(cpu[0]));
        rec('serverCpuUsPerReq', perRequest(cpu[1]));
        if (redis) rec('redisCpuUsPerReq', perRequest(redisCpu));
        rec('requestsPerSec', r && r.errors === 0 ? r.rps : null);
        rec('rttP50Us', r?.p50us ?? null);
        rec('rttP99Us', r?.p99us ?? null);
        rec('errors', r ? r.errors : null);
        if (r?.errors)
          note(
            'microservices',
            `${label} ${param} rep ${rep}: ${r.errors} errors, first: ${r.firstError}`,
          );
        log(
          `microservices ${name} rep ${rep} ${param}: ${r?.rps?.toFixed(0)} req/s (${r?.done}/${count}, ${r?.errors} errors), p50 ${r?.p50us?.toFixed(0)} us, p99 ${r?.p99us?.toFixed(0)} us, CPU µs/request client ${perRequest(cpu[0])?.toFixed(0)} server ${perRequest(cpu[1])?.toFixed(0)}${redis ? ` redis ${perRequest(redisCpu)?.toFixed(0)}` : ''}`,
        );
      }
      await stopAll();
    }
  }
  note(
    'microservices',
    `One client process sends client.send('sum', {a, b}) to one server process with a @MessagePattern('sum') handler; N callers each await the reply before sending again; ${opts.msRequests} requests at ${opts.msConcurrency.filter((c) => c > 1).join(', ')} in flight, ${Math.round(opts.msRequests / 4)} at 1 in flight, after a warm-up of 2000. Round-trip time per request with performance.now().`,
  );
  note(
    'microservices',
    'nestjs-cluster: server = NestFactory.create + connectMicroservice({ strategy: new ClusterTransport(cluster) }), client = new ClusterClientProxy({ cluster }), both from dist/ over links (gossip on loopback). Redis: NestFactory.createMicroservice({ transport: Transport.REDIS }) and ClientProxyFactory.create({ transport: Transport.REDIS }) on a private redis-server.',
  );
}

async function scale() {
  for (const n of opts.scaleSizes) {
    for (const [name, sys] of systemsWith('membership')) {
      const p =
        sys.profiles.includes('matched') && opts.profiles.includes('matched')
          ? 'matched'
          : sys.profiles[0];
      const label = profileLabel(sys, p);
      const timeout = Math.max(60000, n * 400);
      // Memory guard: RSS seen per node so far (or 100 MiB), with a third of headroom.
      const perNode =
        median(
          samples
            .filter((x) => x.system === name && x.metric === 'rssMBPerNode')
            .map((x) => x.value),
        ) ?? 100;
      const needMB = n * perNode * 1.33;
      if (needMB > os.freemem() / 2 ** 20) {
        note(
          'scale',
          `${name} N=${n}: skipped, needs about ${needMB.toFixed(0)} MiB, ${(os.freemem() / 2 ** 20).toFixed(0)} MiB free.`,
        );
        continue;
      }
      const c = startCluster(name, p, n);
      // Starting N Node processes on a small machine takes about a second of CPU each: wait for
      // readiness on its own budget, so the convergence timeout measures only convergence.
      const ready = await readyAll(c.workers, Math.max(timeout, n * 1500));
      const t = ready && (await converged(c.workers, n, timeout));
      record('scale', name, label, n, 0, 'convergeFromSpawnMs', t ? t - c.t0 : null);
      record(
        'scale',
        name,
        label,
        n,
        0,
        'convergeFromLastReadyMs',
        t ? Math.max(0, t - ready) : null,
      );
      record('scale', name, label, n, 0, 'spawnToAllReadyMs', ready ? ready - c.t0 : null);
      if (!t) {
        const mm = minMembers(c.workers);
        note(
          'scale',
          `${name} (${label}) N=${n}: not converged within ${timeout} ms; smallest membership seen ${mm}/${n}`,
        );
        record('scale', name, label, n, 0, 'minMembersSeen', mm);
      }
      log(`scale ${name}/${p} N=${n}: ${t ? `${t - c.t0} ms` : 'no convergence'}`);
      if (t || ready) {
        await sleep(2000);
        const [r] = await measureIdle(
          c.workers.map((w) => w.pid),
          n,
          opts.scaleIdleSeconds,
          1,
        );
        for (const [m, v] of Object.entries(r)) record('scale', name, label, n, 0, m, v);
      }
      await stopCluster(c);
      await sleep(1000);
    }
  }
  for (const [name] of systemsWith('membership')) {
    const rows = samples.filter(
      (x) => x.scenario === 'scale' && x.system === name && x.metric === 'convergeFromLastReadyMs',
    );
    if (!rows.length) continue;
    const ok = rows.filter((r) => r.value !== null).map((r) => r.param);
    const bad = rows.filter((r) => r.value === null).map((r) => r.param);
    note(
      'scale',
      `${name}: converged at N = ${ok.join(', ') || 'none'}${bad.length ? `; not at N = ${bad.join(', ')}` : ''}.`,
    );
  }
  note(
    'scale',
    `One process per node, one repetition per size; idle measured over ${opts.scaleIdleSeconds} s once converged. This machine has ${machineInfo().cores} cores, so start-up of many Node.js processes is CPU-bound (see spawnToAllReadyMs).`,
  );
}

async function scaleMany() {
  if (!(opts.systems ?? ['nestjs-cluster']).includes('nestjs-cluster') || !ourAvailable()) return;
  const strategy = process.env.BENCH_MANY_STRATEGY ?? 'gossip';
  for (const k of opts.scaleSizes) {
    const timeout = Math.max(60000, k * 400);
    const t0 = Date.now();
    const w = new Worker('nestjs-cluster-many.mjs', {
      BENCH_NAME: 'many',
      BENCH_K: String(k),
      BENCH_CLUSTER: `many${k}p${process.pid}`,
      BENCH_UDP_PORT: String(41000 + k),
      BENCH_MANY_STRATEGY: strategy,
      BENCH_MANY_TIMEOUT_MS: String(timeout),
    });
    const ready = await w.waitFor((e) => e.ev === 'ready' || e.ev === 'error', timeout);
    const conv =
      ready?.ev === 'ready'
        ? await w.waitFor((e) => e.ev === 'many-converged' || e.ev === 'many-timeout', timeout)
        : null;
    const label = `${strategy}, ${k} contexts in one process`;
    const ok = conv?.ev === 'many-converged';
    record(
      'scale-many',
      'nestjs-cluster',
      label,
      k,
      0,
      'convergeFromSpawnMs',
      ok ? conv.t - t0 : null,
    );
    record(
      'scale-many',
      'nestjs-cluster',
      label,
      k,
      0,
      'convergeFromLastReadyMs',
      ok ? Math.max(0, conv.t - ready.t) : null,
    );
    record(
      'scale-many',
      'nestjs-cluster',
      label,
      k,
      0,
      'spawnToAllReadyMs',
      ready?.ev === 'ready' ? ready.t - t0 : null,
    );
    if (!ok) {
      const last = [...w.events]
        .reverse()
        .find((e) => e.ev === 'many-progress' || e.ev === 'many-timeout');
      note(
        'scale-many',
        `K=${k}: not converged within ${timeout} ms${last ? `; smallest membership seen ${last.minMembers}/${k}` : ''}${ready?.ev === 'error' ? `; error: ${ready.message.slice(0, 200)}` : ''}`,
      );
    }
    log(`scale-many K=${k}: ${ok ? `${conv.t - t0} ms` : 'no convergence'}`);
    if (ready?.ev === 'ready') {
      await sleep(2000);
      const [r] = await measureIdle([w.pid], k, opts.scaleIdleSeconds, 1);
      for (const [m, v] of Object.entries(r))
        record('scale-many', 'nestjs-cluster', label, k, 0, m, v);
      const since = Date.now();
      w.send({ cmd: 'loop-lag' });
      const lag = await w.waitFor((e) => e.ev === 'loop-lag', 5000, { since });
      if (lag) {
        record('scale-many', 'nestjs-cluster', label, k, 0, 'eventLoopP99Ms', lag.p99ms);
        record('scale-many', 'nestjs-cluster', label, k, 0, 'removalsAfterConverge', lag.removals);
      }
    }
    await w.kill();
    await sleep(1000);
  }
  {
    const rows = samples.filter(
      (x) => x.scenario === 'scale-many' && x.metric === 'convergeFromLastReadyMs',
    );
    const ok = rows.filter((r) => r.value !== null).map((r) => r.param);
    const bad = rows.filter((r) => r.value === null).map((r) => r.param);
    if (rows.length)
      note(
        'scale-many',
        `converged at K = ${ok.join(', ') || 'none'}${bad.length ? `; not at K = ${bad.join(', ')}` : ''}.`,
      );
  }
  note(
    'scale-many',
    `Each context binds its own 127.0.0.<i+1> (node name n<i>@127.0.0.<i+1>), strategy ${strategy}; every node links to every other (full mesh): K·(K−1)/2 links and K·(K−1) heartbeats per interval in one event loop.`,
  );
}

// ---------------------------------------------------------------------------------------

const METRIC_INFO = {
  scenarios: {
    'cold-start':
      '1. Cold start — N processes started together, until every one has seen all others',
    'late-join': '2. Late join into a formed cluster of 10',
    failure:
      '3–4. Crash (SIGKILL), freeze (SIGSTOP), graceful leave (SIGTERM) of one node of 10; event-loop stall of 2 s',
    idle: '5. Idle cost',
    messaging: '6. Messaging, node 1 → node 2',
    scale: '7a. Scale — one process per node',
    'scale-many': '7b. Scale — many nodes in one process',
    'socket-io': '8. Socket.IO room broadcast, node 1 → clients on 3 nodes',
    microservices: '9. @nestjs/microservices request/reply, client process → server process',
  },
  metrics: {
    convergeFromSpawnMs: { label: 'converged, from spawn', unit: ' ms' },
    convergeFromLastReadyMs: { label: 'converged, after last node ready', unit: ' ms' },
    spawnToAllReadyMs: { label: 'spawn → all ready', unit: ' ms' },
    joinFromSpawnMs: { label: 'all see newcomer, from its spawn', unit: ' ms' },
    joinFromReadyMs: { label: 'all see newcomer, after it is ready', unit: ' ms' },
    allSurvivorsMs: { label: 'every survivor reported it', unit: ' ms' },
    firstSurvivorMs: { label: 'first survivor reported it', unit: ' ms' },
    falseDowns: { label: 'false downs (stall)', unit: '' },
    cpuPctPerNode: { label: 'CPU % of a core / node', unit: ' %' },
    rssMBPerNode: { label: 'RSS / node', unit: ' MiB' },
    rssOverBaselineMB: { label: 'RSS over baseline', unit: ' MiB' },
    bytesPerSecPerNode: { label: 'wire B/s / node', unit: '' },
    packetsPerSecPerNode: { label: 'packets/s / node', unit: '' },
    throughputMsgPerSec: { label: 'throughput msg/s', unit: '' },
    deliveredPct: { label: 'delivered %', unit: ' %' },
    p50LatencyUs: { label: 'p50 latency @10k/s', unit: ' µs' },
    p99LatencyUs: { label: 'p99 latency @10k/s', unit: ' µs' },
    minMembersSeen: { label: 'smallest membership seen', unit: '' },
    eventLoopP99Ms: { label: 'event-loop delay p99', unit: ' ms' },
    removalsAfterConverge: { label: 'removals after converge', unit: '' },
    broadcastsPerSec: { label: 'broadcasts/s', unit: '' },
    senderCpuMsPer1k: { label: 'CPU ms / 1000 broadcasts, node 1', unit: ' ms' },
    otherNodeCpuMsPer1k: { label: 'CPU ms / 1000 broadcasts, other node', unit: ' ms' },
    clientsCpuMsPer1k: { label: 'CPU ms / 1000 broadcasts, clients', unit: ' ms' },
    redisCpuMsPer1k: { label: 'CPU ms / 1000 broadcasts, redis-server', unit: ' ms' },
    deliveriesPerSec: { label: 'deliveries/s', unit: '' },
    ioP50LatencyUs: { label: `p50 latency @${opts.ioLatencyRate}/s`, unit: ' µs' },
    ioP99LatencyUs: { label: `p99 latency @${opts.ioLatencyRate}/s`, unit: ' µs' },
    pacedDeliveredPct: { label: `delivered % @${opts.ioLatencyRate}/s`, unit: ' %' },
    requestsPerSec: { label: 'requests/s', unit: '' },
    rttP50Us: { label: 'p50 round trip', unit: ' µs' },
    rttP99Us: { label: 'p99 round trip', unit: ' µs' },
    clientCpuUsPerReq: { label: 'CPU µs / request, client', unit: ' µs' },
    serverCpuUsPerReq: { label: 'CPU µs / request, server', unit: ' µs' },
    redisCpuUsPerReq: { label: 'CPU µs / request, redis-server', unit: ' µs' },
    errors: { label: 'errors', unit: '' },
  },
};

// Import and start-up cost (bench/startup.mjs, also runnable alone): a bare Nest application
// context vs the same with ClusterModule, fresh processes, alternated; and the AWS modules a
// gossip app loads (none expected).
async function startup() {
  const runs = quick ? 7 : 15;
  const out = execFileSync(
    process.execPath,
    [new URL('bench/startup.mjs', ROOT).pathname, '--runs', String(runs)],
    { timeout: 10 * 60000 },
  );
  const summary = JSON.parse(out.toString());
  const ours = 'nestjs-cluster';
  record('startup', 'nest', 'defaults', 'bare', 0, 'readyMedianMs', summary.bareMedianMs);
  record('startup', ours, 'defaults', 'gossip', 0, 'readyMedianMs', summary.clusterMedianMs);
  record('startup', ours, 'defaults', 'gossip', 0, 'addedMedianMs', summary.addedMedianMs);
  record(
    'startup',
    ours,
    'defaults',
    'gossip',
    0,
    'awsModules',
    summary.awsModulesLoadedByGossipApp,
  );
  note(
    'startup',
    `${runs} starts of each, alternated: bare ${summary.bareMedianMs} ms, with ClusterModule ${summary.clusterMedianMs} ms (median, process start to initialised context); AWS modules loaded by the gossip app: ${summary.awsModulesLoadedByGossipApp} (control run saw ${summary.awsModulesSeenInControl}).`,
  );
}

const SCENARIOS = {
  clusters: clusterScenarios,
  startup,
  messaging,
  scale,
  'scale-many': scaleMany,
  'socket-io': socketIo,
  microservices,
};

const fmtRatio = (x) => `${x.toFixed(2)}×`;

function targets(groups) {
  const get = (sc, sys, param, metric, profile) =>
    groups.find(
      (g) =>
        g.scenario === sc &&
        g.system === sys &&
        String(g.param) === String(param) &&
        g.metric === metric &&
        (!profile || g.profile.split(' = ').includes(profile)),
    );
  const ours = 'nestjs-cluster';
  const lines = [];
  const c10 = get('cold-start', ours, 10, 'convergeFromLastReadyMs');
  if (c10) {
    lines.push(
      `convergence of 10 nodes < 300 ms (after last node ready): ${c10.median} ms — ${c10.median !== null && c10.median < 300 ? 'met' : 'NOT met'}`,
    );
    for (const peer of ['moleculer', 'node-discover']) {
      const pg = get('cold-start', peer, 10, 'convergeFromLastReadyMs', 'defaults');
      if (pg?.median != null && c10.median != null)
        lines.push(
          `≥10× faster than ${peer} at its defaults: ${(pg.median / Math.max(c10.median, 1)).toFixed(1)}× — ${pg.median >= 10 * c10.median ? 'met' : 'NOT met'}`,
        );
    }
  }
  const crash = get('failure', ours, 'crash', 'allSurvivorsMs');
  if (crash)
    lines.push(
      `crash detection < 1 s: ${crash.median} ms (max ${crash.max}) — ${crash.max !== null && crash.max < 1000 && !crash.missing ? 'met' : 'NOT met'}`,
    );
  const freeze = get('failure', ours, 'freeze', 'allSurvivorsMs');
  if (freeze)
    lines.push(
      `freeze detection ≤ failure timeout + 1 s (6000 ms): ${freeze.median} ms (max ${freeze.max}) — ${freeze.max !== null && freeze.max <= 6000 && !freeze.missing ? 'met' : 'NOT met'}`,
    );
  const stall = get('failure', ours, 'stall', 'falseDowns');
  if (stall)
    lines.push(
      `zero false downs in a 2 s stall: max ${stall.max} — ${stall.max === 0 ? 'met' : 'NOT met'}`,
    );
  const idle20 = get('idle', ours, 20, 'cpuPctPerNode');
  if (idle20)
    lines.push(
      `idle CPU < 0.5 % of a core per node at 20 nodes: ${idle20.median?.toFixed(3)} % — ${idle20.max !== null && idle20.max < 0.5 ? 'met' : 'NOT met'}`,
    );
  // Against Redis: medians over the repetitions, the two systems measured alternately.
  const pair = (sc, metric) => {
    const mine = groups.find((g) => g.scenario === sc && g.system === ours && g.metric === metric);
    const theirs = groups.find(
      (g) =>
        g.scenario === sc &&
        g.system === 'redis' &&
        String(g.param) === String(mine?.param) &&
        g.metric === metric,
    );
    return mine?.median != null && theirs?.median != null ? { mine, theirs } : null;
  };
  const msg = (sys, param, metric) =>
    groups.find(
      (g) =>
        g.scenario === 'messaging' &&
        g.system === sys &&
        String(g.param) === param &&
        g.metric === metric,
    );
  for (const param of ['100 B', '100 B object']) {
    const sealed = msg(ours, param, 'throughputMsgPerSec');
    const unsealed = msg('nestjs-cluster-unsealed', param, 'throughputMsgPerSec');
    const redis = msg('redis', param, 'throughputMsgPerSec');
    if (sealed?.median != null && unsealed?.median != null) {
      const ratio = sealed.median / unsealed.median;
      lines.push(
        `messaging ${param}: sealed ≥ 85 % of unsealed throughput: ${(ratio * 100).toFixed(0)} % (${sealed.median.toFixed(0)} vs ${unsealed.median.toFixed(0)} msg/s) — ${ratio >= 0.85 ? 'met' : 'NOT met'}`,
      );
    }
    for (const side of ['sender', 'receiver']) {
      const cs = msg(ours, param, `${side}CpuUsPerMsg`);
      const cu = msg('nestjs-cluster-unsealed', param, `${side}CpuUsPerMsg`);
      if (cs?.median != null && cu?.median != null)
        lines.push(
          `messaging ${param}: ${side} CPU per message, sealed vs unsealed: ${cs.median.toFixed(2)} vs ${cu.median.toFixed(2)} µs (unsealed/sealed = ${((cu.median / cs.median) * 100).toFixed(0)} %)`,
        );
    }
    if (sealed?.median != null && redis?.median != null) {
      const ratio = sealed.median / redis.median;
      lines.push(
        `messaging ${param}: sealed ≥ 2× Redis pub/sub throughput: ${fmtRatio(ratio)} (${sealed.median.toFixed(0)} vs ${redis.median.toFixed(0)} msg/s) — ${ratio >= 2 ? 'met' : 'NOT met'}`,
      );
    }
    const p99 = msg(ours, param, 'p99LatencyUs');
    const p99Redis = msg('redis', param, 'p99LatencyUs');
    if (p99?.median != null && p99Redis?.median != null) {
      lines.push(
        `messaging ${param}: sealed p99 at ${opts.latencyRate} msg/s not above Redis's: ${p99.median.toFixed(0)} µs vs ${p99Redis.median.toFixed(0)} µs — ${p99.median <= p99Redis.median ? 'met' : 'NOT met'}`,
      );
    }
  }
  const io = pair('socket-io', 'broadcastsPerSec');
  if (io) {
    const ratio = io.mine.median / io.theirs.median;
    lines.push(
      `Socket.IO room broadcast ≥ 2× @socket.io/redis-adapter in broadcasts/s: ${fmtRatio(ratio)} (${io.mine.median.toFixed(0)} vs ${io.theirs.median.toFixed(0)}) — ${ratio >= 2 ? 'met' : 'NOT met'}`,
    );
  }
  const ioP99 = pair('socket-io', 'ioP99LatencyUs');
  if (ioP99) {
    lines.push(
      `Socket.IO room broadcast p99 latency below @socket.io/redis-adapter's: ${ioP99.mine.median.toFixed(0)} µs vs ${ioP99.theirs.median.toFixed(0)} µs — ${ioP99.mine.median < ioP99.theirs.median ? 'met' : 'NOT met'}`,
    );
  }
  for (const g of groups.filter(
    (x) => x.scenario === 'microservices' && x.system === ours && x.metric === 'requestsPerSec',
  )) {
    const theirs = groups.find(
      (x) =>
        x.scenario === 'microservices' &&
        x.system === 'redis' &&
        x.param === g.param &&
        x.metric === 'requestsPerSec',
    );
    if (g.median == null || theirs?.median == null) continue;
    const ratio = g.median / theirs.median;
    lines.push(
      `@nestjs/microservices request/reply ≥ 2× Transport.REDIS in requests/s, ${g.param}: ${fmtRatio(ratio)} (${g.median.toFixed(0)} vs ${theirs.median.toFixed(0)}) — ${ratio >= 2 ? 'met' : 'NOT met'}`,
    );
  }
  const added = get('startup', ours, 'gossip', 'addedMedianMs');
  if (added?.median != null) {
    const aws = get('startup', ours, 'gossip', 'awsModules');
    lines.push(
      `ClusterModule adds ≤ 50 ms to a bare Nest application context's start (quiet machine): ${added.median} ms — ${added.median <= 50 ? 'met' : 'NOT met'}; AWS modules loaded by a gossip app: ${aws?.median ?? '?'}`,
    );
  }
  return lines;
}

async function main() {
  const startedAt = new Date().toISOString();
  const loadAtStart = os.loadavg()[0];
  if (process.env.CLUSTER_TEST_NETNS !== '1') {
    log(
      'not inside the private network namespace; run through scripts/in-netns.sh (npm run bench)',
    );
    if (process.env.BENCH_ALLOW_HOST !== '1') process.exit(2);
  }
  const machine = machineInfo();
  const versions = packageVersions(ROOT);
  log(`options ${JSON.stringify(opts)}`);
  const deadline = Date.now() + Number(process.env.BENCH_MAX_MINUTES ?? 40) * 60000;
  const CLUSTER_SCENARIOS = ['cold-start', 'late-join', 'failure', 'idle'];
  const runs = [];
  for (const sc of opts.scenarios) {
    const runner = CLUSTER_SCENARIOS.includes(sc) ? 'clusters' : sc;
    if (!SCENARIOS[runner]) log(`unknown scenario ${sc} (known: ${ALL_SCENARIOS.join(', ')})`);
    else if (!runs.includes(runner)) runs.push(runner);
  }
  for (const sc of runs) {
    if (Date.now() > deadline) {
      note(null, `Scenario ${sc} skipped: the run passed its time budget (BENCH_MAX_MINUTES).`);
      continue;
    }
    log(`--- ${sc}`);
    const t = Date.now();
    try {
      await SCENARIOS[sc]();
    } catch (err) {
      log(`scenario ${sc} failed: ${err?.stack ?? err}`);
      note(null, `scenario ${sc} aborted: ${String(err?.message ?? err)}`);
    }
    await killAll();
    log(`--- ${sc} done in ${((Date.now() - t) / 1000).toFixed(0)} s`);
  }
  const finishedAt = new Date().toISOString();
  note(
    null,
    `Load average (1 min) of the machine when the run started: ${loadAtStart.toFixed(2)}, when it ended: ${os.loadavg()[0].toFixed(2)} (${machine.cores} cores; anything above the bench's own processes is other work on the machine).`,
  );
  const groups = aggregate(samples);
  for (const line of targets(groups)) note('targets', line);
  const outDir = new URL(`${flags.out ?? 'bench/results'}/`, ROOT);
  mkdirSync(outDir, { recursive: true });
  const stamp = startedAt.replace(/[:.]/g, '-');
  const result = {
    startedAt,
    finishedAt,
    machine,
    versions,
    options: opts,
    groups,
    samples,
    notes,
  };
  writeFileSync(new URL(`${stamp}.json`, outDir), JSON.stringify(result, null, 2));
  // With --out the markdown goes beside the JSON, leaving bench/RESULTS.md to full runs.
  const mdFile = flags.out ? new URL('RESULTS.md', outDir) : new URL('bench/RESULTS.md', ROOT);
  writeReport(result, mdFile);
  log(`wrote ${new URL(`${stamp}.json`, outDir).pathname} and ${mdFile.pathname}`);
}

/** RESULTS.md from one result file's content. */
function writeReport(result, file = new URL('bench/RESULTS.md', ROOT)) {
  const md = markdown({
    ...result,
    notes: result.notes.map((n) =>
      n.scenario === 'targets' ? { ...n, scenario: null, text: `target: ${n.text}` } : n,
    ),
    metricInfo: METRIC_INFO,
  });
  writeFileSync(file, md);
}

/**
 * Several saved runs as one: each scenario's groups and notes from the last file that has
 * it, the targets worked out again over the whole, one "Run" line per file.
 */
function mergeResults(results) {
  const owner = new Map();
  results.forEach((r, i) => {
    for (const g of r.groups) owner.set(g.scenario, i);
  });
  const groups = results.flatMap((r, i) => r.groups.filter((g) => owner.get(g.scenario) === i));
  const scenariosOf = (i) => [
    ...new Set(groups.filter((g) => owner.get(g.scenario) === i).map((g) => g.scenario)),
  ];
  // A general note of one run says which run it is about.
  const notes = results.flatMap((r, i) =>
    r.notes
      .filter(
        (n) => n.scenario !== 'targets' && (n.scenario === null || owner.get(n.scenario) === i),
      )
      .map((n) =>
        n.scenario === null ? { ...n, text: `Run of ${scenariosOf(i).join(', ')}: ${n.text}` } : n,
      ),
  );
  for (const line of targets(groups)) notes.push({ scenario: 'targets', text: line });
  const versions = {};
  for (const r of results)
    for (const [k, v] of Object.entries(r.versions))
      if (v != null || !(k in versions)) versions[k] = v;
  return {
    ...results[results.length - 1],
    machine: results[results.length - 1].machine,
    versions,
    groups,
    notes,
    runs: results.map((r, i) => ({
      machine: r.machine,
      startedAt: r.startedAt,
      finishedAt: r.finishedAt,
      options: r.options,
      scenarios: scenariosOf(i),
    })),
  };
}

if (flags.report) {
  // Re-render RESULTS.md from saved runs: node bench/run.mjs --report bench/results/<a>.json[,<b>.json]
  const files = list(flags.report);
  const results = files.map((f) => JSON.parse(readFileSync(f, 'utf8')));
  writeReport(results.length === 1 ? results[0] : mergeResults(results));
  process.exit(0);
}
await main();
process.exit(0);
