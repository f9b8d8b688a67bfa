// Import and start-up cost of the library: a bare Nest application context vs the same with
// ClusterModule (gossip on loopback), each in a fresh process, alternated, timed from process
// start to an initialised context; then whether any @aws-sdk module is loaded by a gossip app
// (and, as a control, that the check sees one when it is imported).
//
//   npm run build && bash scripts/in-netns.sh node bench/startup.mjs [--runs N]
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '15' } } });
const runs = Number(values.runs);
if (process.env.CLUSTER_TEST_NETNS !== '1' && process.env.BENCH_ALLOW_HOST !== '1') {
  console.error(
    'run inside the private network namespace: bash scripts/in-netns.sh node bench/startup.mjs',
  );
  process.exit(2);
}
const worker = fileURLToPath(new URL('./workers/startup.mjs', import.meta.url));
const hooks = fileURLToPath(new URL('./workers/aws-module-hooks.mjs', import.meta.url));

function start(mode, { withHooks = false, control = false, gossipPort = 47892 } = {}) {
  const args = [...(withHooks ? ['--import', hooks] : []), worker, mode];
  if (control) args.push('--control');
  const out = execFileSync(process.execPath, args, {
    env: { ...process.env, STARTUP_GOSSIP_PORT: String(gossipPort) },
    timeout: 60_000,
  });
  return JSON.parse(out.toString().trim().split('\n').pop());
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

start('bare'); // warm the file cache once, not counted
start('cluster');
const times = { bare: [], cluster: [] };
for (let i = 0; i < runs; i++) {
  // Alternate the order so drift on a shared machine hits both alike.
  const order = i % 2 === 0 ? ['bare', 'cluster'] : ['cluster', 'bare'];
  for (const mode of order) times[mode].push(start(mode, { gossipPort: 47892 + i }).readyMs);
}
const aws = start('cluster', { withHooks: true }).aws;
const control = start('bare', { withHooks: true, control: true }).aws;

const r = (x) => Math.round(x * 10) / 10;
const summary = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: os.cpus().length,
  runs,
  bareMedianMs: r(median(times.bare)),
  clusterMedianMs: r(median(times.cluster)),
  addedMedianMs: r(median(times.cluster) - median(times.bare)),
  bareMinMs: r(Math.min(...times.bare)),
  clusterMinMs: r(Math.min(...times.cluster)),
  addedMinMs: r(Math.min(...times.cluster) - Math.min(...times.bare)),
  awsModulesLoadedByGossipApp: aws.length,
  awsModulesSeenInControl: control.length,
};
console.log(JSON.stringify(summary, null, 2));
if (aws.length > 0) {
  console.error(`AWS modules loaded by a gossip app: ${aws.join(', ')}`);
  process.exitCode = 1;
}
if (control.length === 0) {
  console.error('control failed: the check did not see @aws-sdk/ec2-metadata-service');
  process.exitCode = 1;
}
