import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeRoomClients, RoomClient } from '../support/room-client.js';
import {
  freePort,
  pollUntil,
  randomCookie,
  startNode,
  useNodeCleanup,
  type HttpErrorBody,
  type NodeProcess,
} from '../support/node-process.js';

/** Answer of GET /rooms/:room/sockets (socket.io's fetchSockets across the cluster). */
interface SocketsAnswer {
  sockets: { id: string }[];
}

/**
 * The Socket.IO cluster adapter across three sample-app processes (static strategy,
 * 127.0.0.2 … 127.0.0.4), with real `socket.io-client` connections spread over the nodes:
 * broadcasts from any node reach each socket of the room exactly once, `except`,
 * `socketsJoin` / `socketsLeave`, `fetchSockets` and `serverSideEmit` acknowledgements span
 * all nodes, bad input gets a clear answer, and a node killed while `fetchSockets` waits on it
 * does not hold the call up. The last test kills node 3.
 */
const INDEXES = [1, 2, 3] as const;
const hostOf = (i: number) => `127.0.0.${i + 1}`;
const nameOf = (i: number) => `app@${hostOf(i)}`;
const ROOM = 'lobby';
const PER_NODE = 2;

useNodeCleanup();
afterAll(closeRoomClients);

describe('Socket.IO rooms across three processes', () => {
  const cookie = randomCookie();
  const nodes = new Map<number, NodeProcess>();
  const node = (i: number) => nodes.get(i)!;
  /** Clients in ROOM, PER_NODE on each node. */
  const members: RoomClient[] = [];
  /** One client per node that joins no room. */
  const outsiders: RoomClient[] = [];
  let linkPort = 0;

  function envFor(i: number): Record<string, string> {
    return {
      NODE_COOKIE: cookie,
      NODE_NAME: nameOf(i),
      LIBCLUSTER_STRATEGY: 'static',
      LIBCLUSTER_HOSTS: INDEXES.map((n) => `${hostOf(n)}:${linkPort}`).join(','),
      LIBCLUSTER_POLLING_INTERVAL: '500',
      CLUSTER_PORT: String(linkPort),
      CLUSTER_BIND_ADDRESS: hostOf(i),
      CLUSTER_ADVERTISE_ADDRESS: hostOf(i),
      CLUSTER_HEARTBEAT_INTERVAL_MS: '300',
      CLUSTER_FAILURE_TIMEOUT_MS: '1500',
    };
  }

  const nodeOfClient = (client: RoomClient) => client.label.split('#')[0];

  beforeAll(async () => {
    linkPort = await freePort();
    await Promise.all(
      INDEXES.map(async (i) => nodes.set(i, await startNode({ name: nameOf(i), env: envFor(i) }))),
    );
    await Promise.all(INDEXES.map((i) => node(i).waitForMembers(INDEXES.map(nameOf), 15_000)));
    // Every node's socket.io server knows the two others (serverSideEmit acknowledgements).
    for (const i of INDEXES) {
      const ok = await pollUntil(
        async () => (await node(i).json<{ nodes: unknown[] }>('/rooms/nodes')).nodes.length === 3,
        10_000,
      );
      expect(ok, `${nameOf(i)}: GET /rooms/nodes should list 3 nodes`).toBe(true);
    }
    for (const i of INDEXES) {
      for (let k = 0; k < PER_NODE; k++) {
        const client = await RoomClient.connect(node(i), `${nameOf(i)}#${k}`);
        const ack = await client.join(ROOM);
        expect(ack).toEqual({ ok: true, room: ROOM, node: nameOf(i) });
        members.push(client);
      }
      outsiders.push(await RoomClient.connect(node(i), `${nameOf(i)}#outsider`));
    }
  }, 90_000);

  it('serverSideEmit with acknowledgements: every node answers GET /rooms/nodes with all three names', async () => {
    for (const i of INDEXES) {
      const { nodes: names } = await node(i).json<{ nodes: string[] }>('/rooms/nodes');
      expect(names[0]).toBe(nameOf(i));
      expect([...names].sort()).toEqual(INDEXES.map(nameOf).sort());
    }
  });

  it('fetchSockets from any node returns the sockets of all nodes, with their node', async () => {
    const expected = members
      .map((c) => ({ id: c.id, node: nodeOfClient(c) }))
      .sort((a, b) => a.id.localeCompare(b.id));
    for (const i of INDEXES) {
      const { sockets } = await node(i).json<{
        sockets: { id: string; node: string; rooms: string[] }[];
      }>(`/rooms/${ROOM}/sockets`);
      expect(sockets.map(({ id, node: n }) => ({ id, node: n }))).toEqual(expected);
      for (const s of sockets) expect(s.rooms).toEqual([s.id, ROOM].sort());
    }
  });

  it('50 broadcasts from each node, concurrently: each socket of the room gets every one exactly once, in order per sender; outsiders none', async () => {
    const COUNT = 50;
    const tag = `burst-${Date.now()}`;
    await Promise.all(
      INDEXES.map(async (i) => {
        for (let seq = 0; seq < COUNT; seq++) {
          const { status, body } = await node(i).http('POST', `/rooms/${ROOM}/messages`, {
            text: `${tag}:${i}:${seq}`,
          });
          expect(status, JSON.stringify(body)).toBe(201);
          expect(body).toMatchObject({ room: ROOM, from: nameOf(i) });
        }
      }),
    );
    const ofBurst = (c: RoomClient) => c.inRoom(ROOM).filter((m) => m.text.startsWith(`${tag}:`));
    const total = COUNT * INDEXES.length;
    const all = await pollUntil(() => members.every((c) => ofBurst(c).length >= total), 10_000);
    expect(all, `got ${members.map((c) => `${c.label}: ${ofBurst(c).length}`).join(', ')}`).toBe(
      true,
    );
    await new Promise((r) => setTimeout(r, 300)); // late duplicates would show up here
    for (const client of members) {
      const received = ofBurst(client);
      expect(received, client.label).toHaveLength(total);
      for (const i of INDEXES) {
        const fromNode = received.filter((m) => m.from === nameOf(i)).map((m) => m.text);
        expect(fromNode, `${client.label}: messages from ${nameOf(i)}`).toEqual(
          Array.from({ length: COUNT }, (_, seq) => `${tag}:${i}:${seq}`),
        );
      }
    }
    for (const outsider of outsiders) expect(outsider.messages, outsider.label).toEqual([]);
  });

  it('except: a broadcast skips the excluded socket (on another node) and the sockets of an excluded room', async () => {
    const excludedSocket = members.find((c) => nodeOfClient(c) === nameOf(2))!;
    const vip = members.filter((c) => nodeOfClient(c) === nameOf(3));
    for (const c of vip) expect(await c.join('vip')).toMatchObject({ ok: true });
    const text = `except-${Date.now()}`;
    const { status, body } = await node(1).http('POST', `/rooms/${ROOM}/messages`, {
      text,
      except: [excludedSocket.id, 'vip'],
    });
    expect(status, JSON.stringify(body)).toBe(201);
    const expected = members.filter((c) => c !== excludedSocket && !vip.includes(c));
    expect(expected).toHaveLength(3);
    const got = await pollUntil(
      () => expected.every((c) => c.inRoom(ROOM).some((m) => m.text === text)),
      5_000,
    );
    expect(got).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    for (const c of expected)
      expect(
        c.inRoom(ROOM).filter((m) => m.text === text),
        c.label,
      ).toHaveLength(1);
    for (const c of [excludedSocket, ...vip])
      expect(
        c.inRoom(ROOM).filter((m) => m.text === text),
        c.label,
      ).toEqual([]);
  });

  it('socketsJoin / socketsLeave from another node: the socket enters and leaves the room where it is connected', async () => {
    const target = members.find((c) => nodeOfClient(c) === nameOf(3))!;
    // Join "side" from node 1: node 3 puts its socket in the room.
    const joined = await node(1).http('POST', '/rooms/side/join', { sockets: [target.id] });
    expect(joined.status).toBe(200);
    const inSide = await pollUntil(async () => {
      const { sockets } = await node(2).json<{ sockets: { id: string }[] }>('/rooms/side/sockets');
      return sockets.length === 1 && sockets[0].id === target.id;
    }, 5_000);
    expect(inSide, 'fetchSockets on node 2 should show the socket in "side"').toBe(true);
    const hello = `side-${Date.now()}`;
    await node(2).http('POST', '/rooms/side/messages', { text: hello });
    expect(await target.waitFor((ms) => ms.some((m) => m.text === hello))).toBe(true);

    // Leave the main room from node 2.
    const left = await node(2).http('POST', `/rooms/${ROOM}/leave`, { sockets: [target.id] });
    expect(left.status).toBe(200);
    const gone = await pollUntil(async () => {
      const { sockets } = await node(1).json<{ sockets: { id: string }[] }>(
        `/rooms/${ROOM}/sockets`,
      );
      return !sockets.some((s) => s.id === target.id);
    }, 5_000);
    expect(gone, 'fetchSockets on node 1 should no longer list the socket').toBe(true);
    const after = `after-leave-${Date.now()}`;
    await node(1).http('POST', `/rooms/${ROOM}/messages`, { text: after });
    const others = members.filter((c) => c !== target);
    expect(
      await pollUntil(
        () => others.every((c) => c.inRoom(ROOM).some((m) => m.text === after)),
        5_000,
      ),
    ).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(target.messages.filter((m) => m.text === after)).toEqual([]);
    // Back in, for the tests below.
    await node(1).http('POST', `/rooms/${ROOM}/join`, { sockets: [target.id] });
    expect(
      await pollUntil(
        async () =>
          (await node(1).json<SocketsAnswer>(`/rooms/${ROOM}/sockets`)).sockets.length ===
          members.length,
        5_000,
      ),
    ).toBe(true);
  });

  describe('bad input', () => {
    it('join with a 100 kB room name: a clear refusal in the ack; the socket and the others keep working', async () => {
      const client = members[0];
      const ack = await client.join('r'.repeat(100_000));
      expect(ack).toEqual({ ok: false, error: 'room must be at most 200 characters (got 100000)' });
      expect(await client.join(42)).toEqual({
        ok: false,
        error: 'room must be a non-empty string',
      });
      const text = `still-fine-${Date.now()}`;
      await node(2).http('POST', `/rooms/${ROOM}/messages`, { text });
      expect(
        await pollUntil(
          () => members.every((c) => c.inRoom(ROOM).some((m) => m.text === text)),
          5_000,
        ),
      ).toBe(true);
    });

    it('a 10 MB message: refused with 413, nobody receives anything of it, the node keeps serving', async () => {
      const before = members.map((c) => c.messages.length);
      const { status } = await node(1).http('POST', `/rooms/${ROOM}/messages`, {
        text: 'x'.repeat(10 * 1024 * 1024),
      });
      expect(status).toBe(413);
      const tooLong = await node(1).http<HttpErrorBody>('POST', `/rooms/${ROOM}/messages`, {
        text: 'y'.repeat(20_000),
      });
      expect(tooLong.status).toBe(400);
      expect(JSON.stringify(tooLong.body.message)).toContain(
        'text must be at most 10000 characters',
      );
      const missing = await node(1).http('POST', `/rooms/${ROOM}/messages`, {});
      expect(missing.status).toBe(400);
      await new Promise((r) => setTimeout(r, 300));
      expect(members.map((c) => c.messages.length)).toEqual(before);
      const text = `after-bad-${Date.now()}`;
      await node(1).http('POST', `/rooms/${ROOM}/messages`, { text });
      expect(
        await pollUntil(
          () => members.every((c) => c.inRoom(ROOM).some((m) => m.text === text)),
          5_000,
        ),
      ).toBe(true);
    });
  });

  it('disconnectSockets from another node closes the sockets of a room wherever they are', async () => {
    const extra = await Promise.all(
      INDEXES.map((i) => RoomClient.connect(node(i), `${nameOf(i)}#doomed`)),
    );
    for (const c of extra) expect(await c.join('doomed')).toMatchObject({ ok: true });
    const { status } = await node(2).http('POST', '/rooms/doomed/disconnect');
    expect(status).toBe(200);
    const closed = await pollUntil(
      () => extra.every((c) => c.disconnectReason !== undefined),
      5_000,
    );
    expect(closed, extra.map((c) => `${c.label}: ${c.disconnectReason}`).join(', ')).toBe(true);
    for (const c of extra) expect(c.disconnectReason).toBe('io server disconnect');
    for (const c of members) expect(c.socket.connected, c.label).toBe(true);
  });

  it('a node killed while fetchSockets waits on it: the call resolves soon after, with the sockets of the nodes that answered', async () => {
    // Node 3 is frozen so it cannot answer, then killed while node 1 waits for it.
    node(3).stop();
    const timeoutMs = 8_000;
    const started = Date.now();
    const pending = node(1)
      .http<SocketsAnswer>('GET', `/rooms/${ROOM}/sockets?timeoutMs=${timeoutMs}`)
      .then((r) => ({ ...r, at: Date.now() }));
    await new Promise((r) => setTimeout(r, 400));
    const killedAt = Date.now();
    node(3).kill('SIGKILL');
    const { status, body, at } = await pending;
    expect(status, JSON.stringify(body)).toBe(200);
    expect(at - started).toBeLessThan(timeoutMs);
    expect(at - killedAt).toBeLessThan(3_000);
    const expected = members
      .filter((c) => nodeOfClient(c) !== nameOf(3))
      .map((c) => c.id)
      .sort();
    expect(body.sockets.map((s) => s.id).sort()).toEqual(expected);
  });
});
