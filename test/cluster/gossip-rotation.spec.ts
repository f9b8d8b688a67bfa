import { describe, expect, it } from 'vitest';
import {
  gossipEnv,
  pollUntil,
  randomCookie,
  startNode,
  useNodeCleanup,
  type NodeProcess,
} from '../support/node-process.js';

/**
 * A rolling rotation of the gossip secret between real processes discovering each other by
 * gossip only (README "Rotating the gossip secret"): A → B with A still read → B alone, one
 * process restarted at a time; the two nodes are one cluster after every step, and a node
 * left on A once the rotation is over is no longer read.
 */
useNodeCleanup();

const GOSSIP_PORT = 47_000 + Math.floor(Math.random() * 1000);
const NAMES = ['app-1@127.0.0.1', 'app-2@127.0.0.1'];

describe('gossip secret rotation with real processes', () => {
  it('a rolling rotation A → B+A → B keeps one cluster at every step', async () => {
    const cookie = randomCookie();
    const env = (keys: Record<string, string>) => ({ ...gossipEnv(cookie, GOSSIP_PORT), ...keys });
    const onA = { LIBCLUSTER_GOSSIP_SECRET: 'gossip-secret-a' };
    const onBandA = {
      LIBCLUSTER_GOSSIP_SECRET: 'gossip-secret-b',
      LIBCLUSTER_GOSSIP_SECRET_PREVIOUS: 'gossip-secret-a',
    };
    const onB = { LIBCLUSTER_GOSSIP_SECRET: 'gossip-secret-b' };

    const nodes: NodeProcess[] = [];
    for (const [i, name] of NAMES.entries()) nodes[i] = await startNode({ name, env: env(onA) });
    const oneCluster = async (step: string) => {
      for (const n of nodes) {
        await n.waitForMembers(NAMES, 30_000).catch((error: Error) => {
          throw new Error(`${step}: ${error.message}`);
        });
      }
    };
    await oneCluster('all on A');
    for (const keys of [onBandA, onB]) {
      for (let i = 0; i < nodes.length; i++) {
        await nodes[i].shutdown();
        nodes[i] = await startNode({ name: NAMES[i], env: env(keys) });
        await oneCluster(`${NAMES[i]} restarted with ${JSON.stringify(Object.keys(keys))}`);
      }
    }

    // a straggler still on A: nobody reads it any more, and it reads no one
    const straggler = await startNode({ name: 'app-3@127.0.0.1', env: env(onA) });
    const warned = await pollUntil(
      () =>
        nodes.some((n) =>
          /gossip: packet from 127\.0\.0\.1:\d+ failed authentication: it was sealed with another key \(its key id [0-9a-f]{8}; this node seals with [0-9a-f]{8}\)/.test(
            n.output(),
          ),
        ),
      15_000,
    );
    expect(warned, nodes.map((n) => n.tail(20)).join('\n')).toBe(true);
    expect(await straggler.memberNames()).toEqual(['app-3@127.0.0.1']);
    for (const n of nodes) expect(await n.memberNames()).toEqual(NAMES);
  }, 240_000);
});
