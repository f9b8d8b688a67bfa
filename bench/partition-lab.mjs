// Partition figures of the quorum guard, measured on real processes: five network namespaces
// on one bridge (198.18.0.1–5, the bridge itself in a namespace this script creates), one
// sample-app process per host, static strategy, heartbeat 500 ms / failure timeout 2 s,
// CLUSTER_QUORUM=3. Partitions are iptables rules inside the hosts' namespaces. Needs root and
// the private namespace of scripts/in-netns.sh:
//
//   npx tsc -p tsconfig.sample.json && bash scripts/in-netns.sh node bench/partition-lab.mjs [--rounds N]
//
// Each round: a 3|2 split with the leader in the minority, held 4 s, healed; then a 2|2|1
// split, held 4 s, healed; then a one-way loss (the host after the leader stops hearing it),
// watched 6 s, healed. Measured (GET /cluster on every host, every 50 ms):
// - cut → every node of the side(s) without quorum shows `leader: null`;
// - cut → the majority agrees on its new leader and term (3|2 only);
// - one-way loss → when "exactly one node leads and every node with a leader names it" last
//   failed (oneWaySettled; 0 = never), how long two nodes led at once (oneWayTwoLeadersMs),
//   and when a node first showed a member unreachable (oneWayUnreachableSeen: the loss bit);
// - heal → all five see five members and agree on one leader and term.
// Every wait has a deadline; every process is stopped by PID at the end.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { machineInfo, packageVersions } from './lib/report.mjs';

const ROOT = new URL('../', import.meta.url);
const MAIN = new URL('dist-sample/sample-app/main.js', ROOT).pathname;
const { values: flags } = parseArgs({ options: { rounds: { type: 'string', default: '5' } } });
const ROUNDS = Math.max(1, Math.min(20, Number(flags.rounds) || 5));
const HEARTBEAT_MS = 500;
const FAILURE_TIMEOUT_MS = 2000;
const HOLD_MS = 4000;
/** How long a one-way loss is held and watched: failure timeout + 1 s is the bound, and more. */
const ONE_WAY_HOLD_MS = 6000;
const POLL_MS = 50;
const HTTP_PORT = 3000;
const LINK_PORT = 45893;
const OBSERVER = '198.18.0.254';

if (process.getuid?.() !== 0 || process.env.CLUSTER_TEST_NETNS !== '1') {
  console.error('partition-lab: run as root inside scripts/in-netns.sh (private namespace)');
  process.exit(2);
}

const prefix = `pl${process.pid % 100000}`;
const bridge = `${prefix}-br`;
const hosts = [0, 1, 2, 3, 4].map((i) => ({
  ns: `${prefix}-h${i + 1}`,
  address: `198.18.0.${i + 1}`,
  name: `app@host${i + 1}`,
}));
const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const tryIp = (...args) => {
  try {
    ip(...args);
  } catch {
    /* already gone */
  }
};

function createLab() {
  ip('netns', 'add', bridge);
  ip('-n', bridge, 'link', 'add', 'br0', 'type', 'bridge');
  ip('-n', bridge, 'link', 'set', 'br0', 'up');
  for (const [i, h] of hosts.entries()) {
    ip('netns', 'add', h.ns);
    ip('-n', bridge, 'link', 'add', `vh${i + 1}`, 'type', 'veth', 'peer', 'name', `tmp${i + 1}`);
    ip('-n', bridge, 'link', 'set', `tmp${i + 1}`, 'netns', h.ns);
    ip('-n', h.ns, 'link', 'set', `tmp${i + 1}`, 'name', 'eth0');
    ip('-n', bridge, 'link', 'set', `vh${i + 1}`, 'master', 'br0');
    ip('-n', bridge, 'link', 'set', `vh${i + 1}`, 'up');
    ip('-n', h.ns, 'addr', 'add', `${h.address}/24`, 'dev', 'eth0');
    ip('-n', h.ns, 'link', 'set', 'eth0', 'up');
    ip('-n', h.ns, 'link', 'set', 'lo', 'up');
  }
  ip('-n', bridge, 'link', 'add', 'vobs', 'type', 'veth', 'peer', 'name', `${prefix}o`);
  ip('-n', bridge, 'link', 'set', `${prefix}o`, 'netns', String(process.pid));
  ip('-n', bridge, 'link', 'set', 'vobs', 'master', 'br0');
  ip('-n', bridge, 'link', 'set', 'vobs', 'up');
  ip('addr', 'add', `${OBSERVER}/24`, 'dev', `${prefix}o`);
  ip('link', 'set', `${prefix}o`, 'up');
}

function destroyLab() {
  tryIp('link', 'del', `${prefix}o`);
  for (const h of hosts) tryIp('netns', 'del', h.ns);
  tryIp('netns', 'del', bridge);
}

const iptables = (i, ...args) =>
  execFileSync('ip', ['netns', 'exec', hosts[i].ns, 'iptables', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
function split(...groups) {
  for (const [g, group] of groups.entries())
    for (const other of groups.slice(g + 1))
      for (const a of group)
        for (const b of other) {
          iptables(a, '-A', 'INPUT', '-s', hosts[b].address, '-j', 'DROP');
          iptables(b, '-A', 'INPUT', '-s', hosts[a].address, '-j', 'DROP');
        }
}
const heal = () => hosts.forEach((_, i) => iptables(i, '-F', 'INPUT'));
/** One-way loss: host `to` drops everything from host `from` (`from` still hears `to`). */
const dropFrom = (to, from) => iptables(to, '-A', 'INPUT', '-s', hosts[from].address, '-j', 'DROP');

const children = [];
function startNode(i) {
  const h = hosts[i];
  const cwd = mkdtempSync(join(tmpdir(), 'partition-lab-'));
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    NO_COLOR: '1',
    PORT: String(HTTP_PORT),
    HOST: h.address,
    NODE_NAME: h.name,
    NODE_COOKIE: `partition-lab-${process.pid}-cookie-0123456789`,
    LIBCLUSTER_STRATEGY: 'static',
    LIBCLUSTER_HOSTS: hosts.map((x) => `${x.address}:${LINK_PORT}`).join(','),
    LIBCLUSTER_POLLING_INTERVAL: '500',
    CLUSTER_PORT: String(LINK_PORT),
    CLUSTER_BIND_ADDRESS: h.address,
    CLUSTER_ADVERTISE_ADDRESS: h.address,
    CLUSTER_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
    CLUSTER_FAILURE_TIMEOUT_MS: String(FAILURE_TIMEOUT_MS),
    CLUSTER_QUORUM: '3',
  };
  const child = spawn('ip', ['netns', 'exec', h.ns, process.execPath, MAIN], {
    cwd,
    env,
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  children.push({ child, cwd });
}

async function view(i) {
  const response = await fetch(`http://${hosts[i].address}:${HTTP_PORT}/cluster`, {
    signal: AbortSignal.timeout(1000),
  });
  return response.json();
}
const views = (list) => Promise.all(list.map(view));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls until `check(views)` holds; returns ms since `since`, or null after `deadlineMs`. */
async function waitFor(list, check, since, deadlineMs) {
  for (;;) {
    try {
      if (check(await views(list))) return Date.now() - since;
    } catch {
      /* a node still starting */
    }
    if (Date.now() - since > deadlineMs) return null;
    await sleep(POLL_MS);
  }
}
const agreed = (size) => (all) =>
  all.every((v) => v.members.length === size) &&
  all[0].leader !== null &&
  all.every((v) => v.leader === all[0].leader && v.term === all[0].term);
const leaderless = (all) => all.every((v) => v.leader === null);
/** Nodes that consider themselves the leader. */
const selfLeaders = (all) => all.filter((v) => v.leader !== null && v.leader === v.self.name);
/** Exactly one node leads, and every node that has a leader names it. */
const oneLeader = (all) => {
  const self = selfLeaders(all);
  return self.length === 1 && all.every((v) => v.leader === null || v.leader === self[0].leader);
};

/**
 * Polls for `holdMs` from `since`: when `oneLeader` last failed (ms after `since`, 0 if it
 * never did) and how long two or more nodes led at once (poll intervals summed).
 */
async function watchLeaders(list, since, holdMs) {
  let lastBad = 0;
  let twoLeadersMs = 0;
  let unreachableSeenAt = null;
  let previous = since;
  while (Date.now() - since < holdMs) {
    let all = null;
    try {
      all = await views(list);
    } catch {
      /* a poll that timed out counts as not settled */
    }
    const now = Date.now();
    if (all === null || !oneLeader(all)) lastBad = now - since;
    if (all !== null && selfLeaders(all).length > 1) twoLeadersMs += now - previous;
    // Shows the loss took effect: some node marks a member unreachable.
    if (
      unreachableSeenAt === null &&
      all?.some((v) => v.members.some((m) => m.state === 'unreachable'))
    )
      unreachableSeenAt = now - since;
    previous = now;
    await sleep(POLL_MS);
  }
  return { settled: lastBad, twoLeadersMs, unreachableSeenAt };
}
const ALL = [0, 1, 2, 3, 4];

const rounds = [];
try {
  createLab();
  startNode(0);
  await waitFor([0], () => true, Date.now(), 30_000);
  for (const i of [1, 2, 3, 4]) startNode(i);
  const formed = await waitFor(ALL, agreed(5), Date.now(), 60_000);
  if (formed === null) throw new Error('the five nodes did not form a cluster within 60 s');

  for (let r = 0; r < ROUNDS; r++) {
    const [{ leader }] = await views([0]);
    const leaderIndex = hosts.findIndex((h) => h.name === leader);
    const minority = [leaderIndex, (leaderIndex + 1) % 5];
    const majority = ALL.filter((i) => !minority.includes(i));
    let since = Date.now();
    split(minority, majority);
    const minorityLeaderless = await waitFor(minority, leaderless, since, 10_000);
    const majorityElected = await waitFor(majority, agreed(3), since, 10_000);
    await sleep(Math.max(0, since + HOLD_MS - Date.now()));
    since = Date.now();
    heal();
    const healed32 = await waitFor(ALL, agreed(5), since, 30_000);

    since = Date.now();
    split([0, 1], [2, 3], [4]);
    const allLeaderless = await waitFor(ALL, leaderless, since, 10_000);
    await sleep(Math.max(0, since + HOLD_MS - Date.now()));
    since = Date.now();
    heal();
    const healed221 = await waitFor(ALL, agreed(5), since, 30_000);

    // One-way loss: the host after the leader (in the lab order) stops hearing it.
    const [{ leader: current }] = await views([0]);
    const from = hosts.findIndex((h) => h.name === current);
    const to = (from + 1) % 5;
    since = Date.now();
    dropFrom(to, from);
    const oneWay = await watchLeaders(ALL, since, ONE_WAY_HOLD_MS);
    since = Date.now();
    heal();
    const healedOneWay = await waitFor(ALL, agreed(5), since, 30_000);
    const round = {
      minorityLeaderless,
      majorityElected,
      healed32,
      allLeaderless,
      healed221,
      oneWaySettled: oneWay.settled,
      oneWayTwoLeadersMs: oneWay.twoLeadersMs,
      oneWayUnreachableSeen: oneWay.unreachableSeenAt,
      healedOneWay,
    };
    rounds.push(round);
    console.log(`round ${r + 1}: ${JSON.stringify(round)}`);
  }
} finally {
  for (const { child } of children) if (child.pid) child.kill('SIGTERM');
  await sleep(1500);
  for (const { child, cwd } of children) {
    if (child.exitCode === null && child.pid) child.kill('SIGKILL');
    rmSync(cwd, { recursive: true, force: true });
  }
  destroyLab();
}

const keys = [
  'minorityLeaderless',
  'majorityElected',
  'healed32',
  'allLeaderless',
  'healed221',
  'oneWaySettled',
  'oneWayTwoLeadersMs',
  'oneWayUnreachableSeen',
  'healedOneWay',
];
const summary = Object.fromEntries(
  keys.map((k) => {
    const values = rounds.map((r) => r[k]).filter((v) => v !== null);
    const sorted = [...values].sort((a, b) => a - b);
    return [
      k,
      {
        median: sorted[Math.floor(sorted.length / 2)] ?? null,
        min: sorted[0] ?? null,
        max: sorted.at(-1) ?? null,
        missed: rounds.length - values.length,
      },
    ];
  }),
);
console.log(JSON.stringify(summary, null, 2));
const out = new URL('results/', import.meta.url);
mkdirSync(out, { recursive: true });
const file = new URL(`partition-lab-${new Date().toISOString().replace(/[:.]/g, '-')}.json`, out);
writeFileSync(
  file,
  JSON.stringify(
    {
      machine: machineInfo(),
      versions: packageVersions(ROOT),
      settings: { HEARTBEAT_MS, FAILURE_TIMEOUT_MS, HOLD_MS, ONE_WAY_HOLD_MS, POLL_MS, quorum: 3 },
      rounds,
      summary,
    },
    null,
    2,
  ),
);
console.log(`written ${file.pathname}`);
