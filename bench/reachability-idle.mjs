// Idle cost of shared reachability, counted exactly on the simulator's in-memory network:
// N real ClusterNodes (virtual time, no sockets), converged, then an idle window. Counts every
// byte written to a wire and the bytes of REACHABILITY frames (payload + 5-byte frame header,
// before sealing), per node per second — in a healthy cluster, and with a one-way loss
// between the first two nodes that lasts the whole window (reports are refreshed every 30 s).
//
//   npx tsc -p tsconfig.sample.json && node bench/reachability-idle.mjs [--nodes 20] [--seconds 120]
import { parseArgs } from 'node:util';
import { Logger } from '@nestjs/common';

const dist = new URL('../dist-sample/lib/', import.meta.url);
const load = (p) => import(new URL(p, dist).href);
const { ClusterNode } = await load('node/cluster-node.js');
const { MemoryNetwork, MemoryWire } = await load('transport/memory-network.js');
const { Link } = await load('transport/link.js');
const { FrameType } = await load('transport/frame-types.js');
const { VirtualTime } = await load('runtime/virtual-time.js');
const { seededRandom } = await load('runtime/random.js');
const { CLUSTER_DEFAULTS } = await load('config/cluster.defaults.js');
const { MESSAGING_DEFAULTS } = await load('messaging/cluster-messaging.js');

const { values } = parseArgs({
  options: { nodes: { type: 'string' }, seconds: { type: 'string' }, seed: { type: 'string' } },
});
const N = Number(values.nodes ?? 20);
const SECONDS = Number(values.seconds ?? 120);
const SEED = Number(values.seed ?? 1);

let wireBytes = 0;
let reachBytes = 0;
let reachFrames = 0;
const write = MemoryWire.prototype.write;
MemoryWire.prototype.write = function (chunk) {
  wireBytes += chunk.length;
  return write.call(this, chunk);
};
const send = Link.prototype.send;
Link.prototype.send = function (type, payload) {
  if (type === FrameType.REACHABILITY) {
    reachBytes += payload.length + 5;
    reachFrames++;
  }
  return send.call(this, type, payload);
};

Logger.overrideLogger(false);
const silent = { log() {}, warn() {}, error() {}, debug() {}, verbose() {} };

async function world(oneWay) {
  const time = new VirtualTime();
  const net = new MemoryNetwork(time, seededRandom(SEED), { latencyMs: [1, 3] });
  const nodes = [];
  for (let i = 0; i < N; i++) {
    const host = `10.0.0.${i + 1}`;
    const clock = net.clockOf(host);
    let ctx;
    const discovery = { start: (c) => (ctx = c), stop() {}, set: (e) => ctx?.connect(e) };
    const node = new ClusterNode(
      {
        ...CLUSTER_DEFAULTS,
        mode: 'cluster',
        cookie: 'bench-cookie',
        nodeName: `n${i}@${host}`,
        incarnation: `i${i}`,
        startedAt: clock.wallNow(),
        appName: 'n',
        port: 45893,
        bindAddress: host,
        advertiseAddress: host,
        debug: false,
        topologies: [],
        messaging: MESSAGING_DEFAULTS,
      },
      [{ name: 'sim', strategyName: 'sim', strategy: discovery }],
      {
        clock,
        random: seededRandom(SEED * 7919 + i),
        network: net.host(host),
        logger: () => silent,
      },
    );
    await node.start();
    nodes.push({ node, host, discovery });
    await time.runFor(5);
  }
  const endpoints = nodes.map((n, i) => ({ host: n.host, port: 45893, name: `n${i}@${n.host}` }));
  for (const n of nodes) n.discovery.set(endpoints);
  await time.runFor(30_000);
  if (!nodes.every((n) => n.node.membership.members().length === N))
    throw new Error('the cluster did not converge');
  if (oneWay) {
    net.block(nodes[0].host, nodes[1].host);
    await time.runFor(30_000); // detected, reported, settled
  }
  wireBytes = 0;
  reachBytes = 0;
  reachFrames = 0;
  await time.runFor(SECONDS * 1000);
  const result = {
    wire: wireBytes / N / SECONDS,
    reach: reachBytes / N / SECONDS,
    frames: reachFrames,
    unreachable: nodes[0].node.membership.members().filter((m) => m.state === 'unreachable').length,
  };
  for (const n of nodes) n.node.membership.close();
  return result;
}

for (const [label, oneWay] of [
  ['healthy cluster', false],
  ['one-way loss n0 → n1 throughout', true],
]) {
  const r = await world(oneWay);
  console.log(
    `${label}, N=${N}, ${SECONDS} s idle: ${r.wire.toFixed(1)} B/s per node on the wires, ` +
      `REACHABILITY ${r.reach.toFixed(2)} B/s per node (${r.frames} frames) = ` +
      `${((100 * r.reach) / (r.wire - r.reach)).toFixed(2)} % over the rest` +
      (oneWay ? `; n0 shows ${r.unreachable} unreachable` : ''),
  );
}
process.exit(0);
