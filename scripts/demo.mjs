#!/usr/bin/env node
/**
 * A local 3-node cluster of the sample app, on this machine's loopback only.
 *
 *   npm run demo             # gossip (UDP multicast) pinned to the loopback interface
 *   npm run demo -- --static # static host list: no UDP at all
 *
 * Opens the dashboards on http://127.0.0.1:3001/, :3002/, :3003/ (DEMO_HTTP_PORT moves the
 * first one). Ctrl-C stops the nodes one after the other with SIGTERM, so the remaining
 * dashboards show each graceful leave; a second Ctrl-C kills them at once.
 *
 * Network safety: every socket binds 127.0.0.1; gossip packets leave through `lo`
 * (multicast_if 127.0.0.1) with TTL 0, which the kernel never forwards off the host. Before
 * starting, the demo checks that the system routes the gossip group through `lo` from
 * 127.0.0.1; when it cannot check (no `ip`, not Linux), it uses the static strategy instead.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = join(ROOT, 'dist-sample/sample-app/main.js');
const NODE_COUNT = 3;
const HTTP_BASE = Number(process.env.DEMO_HTTP_PORT ?? 3001);
const LINK_BASE = 45901;
const GOSSIP_GROUP = '233.252.1.32';
const GOSSIP_PORT = 45892;
const FORM_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
/** Pause between two stops, so each leave shows on the remaining dashboards. */
const STOP_PAUSE_MS = 1_500;

const tty = process.stdout.isTTY;
const paint = (code, text) => (tty ? `\x1b[${code}m${text}\x1b[0m` : text);
const COLORS = [36, 35, 33];
const say = (text) => console.log(paint('1', `[demo] ${text}`));

const nodes = [];
let stopping = false;

async function main() {
  const forceStatic = process.argv.includes('--static');
  say('compiling the sample app (tsc -p tsconfig.sample.json) …');
  await run(process.execPath, [
    join(ROOT, 'node_modules/typescript/bin/tsc'),
    '-p',
    'tsconfig.sample.json',
  ]);

  const strategy = forceStatic ? 'static' : (await gossipStaysOnLoopback()) ? 'gossip' : 'static';
  const httpPorts = Array.from({ length: NODE_COUNT }, (_, i) => HTTP_BASE + i);
  const linkPorts = Array.from({ length: NODE_COUNT }, (_, i) => LINK_BASE + i);
  for (const port of [...httpPorts, ...linkPorts]) {
    if (!(await portFree(port))) {
      throw new Error(
        `port ${port} on 127.0.0.1 is in use (another demo running? set DEMO_HTTP_PORT to move the dashboards)`,
      );
    }
  }

  const cookie = randomBytes(24).toString('base64url');
  say(
    `strategy ${strategy}${strategy === 'gossip' ? ` (group ${GOSSIP_GROUP}:${GOSSIP_PORT} on lo, TTL 0)` : ' (no UDP)'}, cookie generated for this run`,
  );

  for (let i = 0; i < NODE_COUNT; i++) {
    const name = `demo${i + 1}@127.0.0.1`;
    const env = {
      ...withoutClusterVariables(process.env),
      ...(tty ? {} : { NO_COLOR: '1' }),
      NODE_NAME: name,
      NODE_COOKIE: cookie,
      PORT: String(httpPorts[i]),
      HOST: '127.0.0.1',
      CLUSTER_PORT: String(linkPorts[i]),
      CLUSTER_BIND_ADDRESS: '127.0.0.1',
      CLUSTER_ADVERTISE_ADDRESS: '127.0.0.1',
      LIBCLUSTER_STRATEGY: strategy,
      ...(strategy === 'gossip'
        ? {
            LIBCLUSTER_GOSSIP_PORT: String(GOSSIP_PORT),
            LIBCLUSTER_GOSSIP_MULTICAST_ADDR: GOSSIP_GROUP,
            LIBCLUSTER_GOSSIP_MULTICAST_IF: '127.0.0.1',
            LIBCLUSTER_GOSSIP_IF_ADDR: '0.0.0.0',
            LIBCLUSTER_GOSSIP_MULTICAST_TTL: '0',
          }
        : {
            LIBCLUSTER_HOSTS: linkPorts.map((port) => `127.0.0.1:${port}`).join(','),
            LIBCLUSTER_POLLING_INTERVAL: '2000',
          }),
    };
    nodes.push(startNode(name, httpPorts[i], env, COLORS[i % COLORS.length]));
  }

  say('dashboards:');
  for (const node of nodes) say(`  ${node.name.padEnd(16)} http://127.0.0.1:${node.port}/`);
  say('Ctrl-C stops the nodes one after the other (graceful leave).');

  const formed = await waitForCluster();
  if (formed) {
    say(`cluster formed: every node sees ${NODE_COUNT} members (leader ${formed}).`);
    for (const node of nodes) say(`  ${node.name.padEnd(16)} http://127.0.0.1:${node.port}/`);
  }
}

function startNode(name, port, env, color) {
  const child = spawn(process.execPath, ['--enable-source-maps', MAIN], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Own process group: Ctrl-C reaches the demo only, which then stops the nodes in turn.
    detached: true,
  });
  const node = { name, port, child, exited: false };
  const prefix = paint(color, `[${name.split('@')[0]}]`);
  for (const stream of [child.stdout, child.stderr]) {
    let rest = '';
    stream.on('data', (chunk) => {
      const lines = (rest + chunk.toString('utf8')).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) console.log(`${prefix} ${line}`);
    });
    stream.on('end', () => rest && console.log(`${prefix} ${rest}`));
  }
  node.done = new Promise((resolveExit) => {
    child.on('exit', (code, signal) => {
      node.exited = true;
      if (!stopping) say(`${name} exited (code ${code}, signal ${signal})`);
      resolveExit();
      if (!stopping && nodes.every((n) => n.exited)) {
        say('every node has exited.');
        process.exit(1);
      }
    });
  });
  return node;
}

/** Resolves with the leader's name once every node reports all members; null on timeout. */
async function waitForCluster() {
  const deadline = Date.now() + FORM_TIMEOUT_MS;
  let views = [];
  while (Date.now() < deadline && !stopping) {
    views = await Promise.all(nodes.map((node) => clusterOf(node)));
    if (views.every((view) => view?.members.length === NODE_COUNT)) return views[0].leader;
    await sleep(250);
  }
  if (stopping) return null;
  say(`the cluster did not form within ${FORM_TIMEOUT_MS / 1000} s:`);
  nodes.forEach((node, i) => {
    const view = views[i];
    say(
      `  ${node.name} sees ${view ? `[${view.members.map((m) => m.name).join(', ')}]` : 'nothing (HTTP not answering)'}`,
    );
  });
  return null;
}

async function clusterOf(node) {
  try {
    const response = await fetch(`http://127.0.0.1:${node.port}/cluster`, {
      signal: AbortSignal.timeout(1_000),
    });
    return response.ok ? await response.json() : null;
  } catch {
    return null;
  }
}

async function stopAll(signal) {
  if (stopping) {
    say('second interrupt: killing the remaining nodes.');
    for (const node of nodes) if (!node.exited) kill(node, 'SIGKILL');
    return;
  }
  stopping = true;
  say(`${signal}: stopping the nodes one after the other (SIGTERM) …`);
  const running = nodes.filter((node) => !node.exited);
  for (const [i, node] of running.entries()) {
    say(`stopping ${node.name}`);
    kill(node, 'SIGTERM');
    const timer = setTimeout(() => {
      say(`${node.name} still running after ${STOP_TIMEOUT_MS / 1000} s: SIGKILL`);
      kill(node, 'SIGKILL');
    }, STOP_TIMEOUT_MS);
    await node.done;
    clearTimeout(timer);
    if (i < running.length - 1) await sleep(STOP_PAUSE_MS);
  }
  say('all nodes have exited.');
  process.exit(0);
}

function kill(node, signal) {
  try {
    process.kill(node.child.pid, signal);
  } catch {
    // already gone
  }
}

/**
 * True when the kernel routes the gossip group through `lo` for packets from 127.0.0.1
 * (what multicast_if 127.0.0.1 selects). Linux only; false when it cannot tell.
 */
async function gossipStaysOnLoopback() {
  if (process.platform !== 'linux') {
    say('not Linux: cannot check multicast routing, using the static strategy (no UDP).');
    return false;
  }
  try {
    const route = await run(
      'ip',
      ['route', 'get', GOSSIP_GROUP, 'from', '127.0.0.1', 'oif', 'lo'],
      { quiet: true },
    );
    if (/\bdev lo\b/.test(route)) return true;
    say(
      `unexpected route for ${GOSSIP_GROUP} from 127.0.0.1: ${route.trim()}; using the static strategy (no UDP).`,
    );
  } catch (error) {
    say(
      `cannot check multicast routing (${error.message.split('\n')[0]}); using the static strategy (no UDP).`,
    );
  }
  return false;
}

function withoutClusterVariables(env) {
  const clean = { ...env };
  for (const key of Object.keys(clean)) {
    if (
      /^(LIBCLUSTER_|CLUSTER_|NODE_COOKIE$|NODE_NAME$|RELEASE_NODE$|APP_NAME$|RELEASE_NAME$|PORT$|HOST$)/.test(
        key,
      )
    ) {
      delete clean[key];
    }
  }
  return clean;
}

function portFree(port) {
  return new Promise((resolveFree) => {
    const server = createServer();
    server.once('error', () => resolveFree(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolveFree(true)));
  });
}

function run(command, args, { quiet = false } = {}) {
  return new Promise((resolveRun, reject) => {
    execFile(command, args, { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')} failed:\n${stdout}${stderr}`));
      else {
        if (!quiet && (stdout || stderr)) process.stdout.write(stdout + stderr);
        resolveRun(stdout);
      }
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

process.on('SIGINT', () => void stopAll('SIGINT'));
process.on('SIGTERM', () => void stopAll('SIGTERM'));
// If the demo itself dies, never leave nodes behind.
process.on('exit', () => {
  for (const node of nodes) if (!node.exited) kill(node, 'SIGKILL');
});

main().catch((error) => {
  console.error(paint('31', `[demo] ${error.message}`));
  stopping = true;
  for (const node of nodes) if (!node.exited) kill(node, 'SIGKILL');
  process.exit(1);
});
