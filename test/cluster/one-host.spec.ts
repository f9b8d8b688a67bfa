import { describe, expect, it } from 'vitest';
import {
  gossipEnv,
  pollUntil,
  randomCookie,
  startNode,
  useNodeCleanup,
} from '../support/node-process.js';

/**
 * Several instances on one host (README "Several instances on one host"): gossip shares its
 * UDP port, `CLUSTER_PORT=0` gives each its own link port. With one name for both, each side
 * logs an error naming NODE_NAME; with distinct names they cluster.
 */
useNodeCleanup();

const GOSSIP_PORT = 46_000 + Math.floor(Math.random() * 1000);

describe('several instances on one host', () => {
  it('the same node name: both processes log an error naming NODE_NAME', async () => {
    const cookie = randomCookie();
    const env = { ...gossipEnv(cookie, GOSSIP_PORT), NODE_NAME: 'app@one-host' };
    const older = await startNode({ name: 'older', env });
    const newer = await startNode({ name: 'newer', env });
    const clash = /ERROR .*NODE_NAME/;
    const both = await pollUntil(
      () => clash.test(older.output()) && clash.test(newer.output()),
      10_000,
    );
    expect(both, `older:\n${older.tail()}\nnewer:\n${newer.tail()}`).toBe(true);
    expect(older.output()).toMatch(/NODE_NAME app@one-host is taken by a newer process/);
    expect(newer.output()).toMatch(
      /another process runs under this node's name app@one-host: .*give every process its own NODE_NAME/,
    );
  });

  it('distinct names and CLUSTER_PORT=0: they cluster', async () => {
    const cookie = randomCookie();
    const a = await startNode({ name: 'app-1@127.0.0.1', env: gossipEnv(cookie, GOSSIP_PORT + 1) });
    await startNode({ name: 'app-2@127.0.0.1', env: gossipEnv(cookie, GOSSIP_PORT + 1) });
    const view = await a.waitForMembers(['app-1@127.0.0.1', 'app-2@127.0.0.1']);
    expect(view.members.map((m) => m.name).sort()).toEqual(['app-1@127.0.0.1', 'app-2@127.0.0.1']);
  });
});
