import { EventEmitter } from 'node:events';
import { formatEndpoint } from '../identity/endpoint.js';
import type { Random } from '../runtime/random.js';
import type { ProcessClock, VirtualTime } from '../runtime/virtual-time.js';
import type { Network, NetworkServer, Wire } from './wire.js';

/** Options of the in-memory network. */
export interface MemoryNetworkOptions {
  /** One-way delay of a chunk, ms: uniform in [min, max]. @default [1, 5] */
  readonly latencyMs?: readonly [number, number];
}

function errno(code: string, message: string): Error {
  return Object.assign(new Error(`${message} (${code})`), { code });
}

/**
 * An in-memory network of simulated hosts on virtual time: TCP-like wires (ordered, reliable,
 * delayed), listeners per `host:port`, and the faults the simulator scripts — a link cut in
 * one or both directions (bytes wait, as TCP retransmits, and arrive at the heal unless the
 * connection was closed meanwhile), a partition, a crash that resets every connection or
 * silently drops the host, and extra delay.
 *
 * Each host has a `ProcessClock`: deliveries to a frozen host wait for it to thaw.
 */
export class MemoryNetwork {
  private readonly listeners = new Map<string, (wire: Wire) => void>();
  private readonly clocks = new Map<string, ProcessClock>();
  private readonly wires = new Map<string, Set<MemoryWire>>();
  private readonly cut = new Set<string>();
  private readonly extraDelay = new Map<string, number>();
  private readonly latency: readonly [number, number];
  private nextPort = 40000;
  /** Connection attempts per destination `host:port` (for tests and the simulator). */
  readonly connects = new Map<string, number>();

  constructor(
    readonly time: VirtualTime,
    private readonly random: Random,
    options: MemoryNetworkOptions = {},
  ) {
    this.latency = options.latencyMs ?? [1, 5];
  }

  /** The clock of a host (created at first use). */
  clockOf(host: string): ProcessClock {
    let clock = this.clocks.get(host);
    if (!clock) {
      clock = this.time.process();
      this.clocks.set(host, clock);
    }
    return clock;
  }

  /** The `Network` seen by the process on `host`. */
  host(host: string): Network {
    return {
      listen: (bindHost, port, onConnection) => this.listen(host, bindHost, port, onConnection),
      connect: (toHost, port) => this.connect(host, toHost, port),
    };
  }

  /** Bytes from `from` to `to` stop arriving (they wait) until `heal`. */
  block(from: string, to: string): void {
    this.cut.add(`${from}>${to}`);
  }

  /** Cuts every pair across the two sides, both ways. */
  partition(a: readonly string[], b: readonly string[]): void {
    for (const x of a) {
      for (const y of b) {
        this.block(x, y);
        this.block(y, x);
      }
    }
  }

  /** Removes every cut; waiting bytes are delivered. */
  heal(): void {
    this.cut.clear();
    for (const set of this.wires.values()) for (const wire of set) wire.flushHeld();
  }

  isBlocked(from: string, to: string): boolean {
    return this.cut.size > 0 && this.cut.has(`${from}>${to}`);
  }

  /** Adds `ms` to every delivery towards `host`. */
  setExtraDelay(host: string, ms: number): void {
    if (ms > 0) this.extraDelay.set(host, ms);
    else this.extraDelay.delete(host);
  }

  /**
   * The process on `host` dies: its listeners vanish and its connections are reset (peers see
   * an error and a close), or with `silent` they simply go quiet (a powered-off machine).
   */
  crash(host: string, silent = false): void {
    for (const key of [...this.listeners.keys()])
      if (key.startsWith(`${host}|`)) this.listeners.delete(key);
    for (const wire of [...(this.wires.get(host) ?? [])]) wire.kill(silent);
    this.wires.delete(host);
    this.clockOf(host).kill();
    this.clocks.delete(host);
  }

  /** Wires open on `host` (for leak checks). */
  openWires(host: string): number {
    return this.wires.get(host)?.size ?? 0;
  }

  /** @internal */
  deliveryDelay(to: string): number {
    const [min, max] = this.latency;
    // Whole milliseconds: deliveries due together run as one batch on the virtual clock.
    return Math.round(min + this.random.next() * (max - min) + (this.extraDelay.get(to) ?? 0));
  }

  /** @internal */
  track(wire: MemoryWire): void {
    let set = this.wires.get(wire.localHost);
    if (!set) {
      set = new Set();
      this.wires.set(wire.localHost, set);
    }
    set.add(wire);
  }

  /** @internal */
  untrack(wire: MemoryWire): void {
    this.wires.get(wire.localHost)?.delete(wire);
  }

  private listen(
    host: string,
    bindHost: string,
    port: number,
    onConnection: (wire: Wire) => void,
  ): Promise<NetworkServer> {
    const actual = port === 0 ? this.nextPort++ : port;
    const key = `${host}|${actual}`;
    if (this.listeners.has(key))
      return Promise.reject(errno('EADDRINUSE', `${formatEndpoint(bindHost, actual)} is in use`));
    this.listeners.set(key, onConnection);
    return Promise.resolve({
      address: { host: bindHost, port: actual },
      close: () => {
        if (this.listeners.get(key) === onConnection) this.listeners.delete(key);
        return Promise.resolve();
      },
    });
  }

  private connect(from: string, to: string, port: number): Wire {
    const target = formatEndpoint(to, port);
    this.connects.set(target, (this.connects.get(target) ?? 0) + 1);
    const client = new MemoryWire(this, from, this.nextPort++, to, port);
    this.track(client);
    const clock = this.clockOf(from);
    clock.setTimeout(
      () => {
        if (client.destroyed) return;
        const accept = this.listeners.get(`${to}|${port}`);
        if (!accept) {
          // A cut route times out (the dialler's own deadline); a missing listener refuses.
          if (!this.isBlocked(from, to) && !this.isBlocked(to, from))
            client.fail(errno('ECONNREFUSED', `connect ${formatEndpoint(to, port)}`));
          return;
        }
        if (this.isBlocked(from, to) || this.isBlocked(to, from)) return;
        const server = new MemoryWire(this, to, port, from, client.localPort);
        this.track(server);
        client.pair(server);
        server.pair(client);
        this.clockOf(to).setTimeout(() => {
          if (server.destroyed) return;
          accept(server);
        }, 0);
        client.connected();
      },
      this.deliveryDelay(to) * 2,
    );
    return client;
  }
}

/** One end of an in-memory connection. */
export class MemoryWire extends EventEmitter implements Wire {
  private peer: MemoryWire | undefined;
  private paused = false;
  private inbox: Buffer[] = [];
  private held: Buffer[] = [];
  private corked = 0;
  private corkedChunks: Buffer[] = [];
  private lastDeliveryAt = 0;
  private ended = false;
  private peerEnded = false;
  destroyed = false;
  connecting = true;
  readonly writableLength = 0;

  constructor(
    private readonly net: MemoryNetwork,
    readonly localHost: string,
    readonly localPort: number,
    readonly remoteAddress: string,
    readonly remotePort: number,
  ) {
    super();
  }

  get writable(): boolean {
    return !this.destroyed && !this.ended && !this.connecting;
  }

  /** @internal */
  pair(peer: MemoryWire): void {
    this.peer = peer;
    this.connecting = false;
  }

  /** @internal */
  connected(): void {
    this.emit('connect');
  }

  /** @internal */
  fail(error: Error): void {
    if (this.destroyed) return;
    this.emit('error', error);
    this.destroy();
  }

  setNoDelay(): this {
    return this;
  }

  cork(): void {
    this.corked++;
  }

  uncork(): void {
    if (this.corked === 0) return;
    this.corked--;
    if (this.corked === 0 && this.corkedChunks.length > 0) {
      const chunks = this.corkedChunks;
      const chunk = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      this.corkedChunks = [];
      this.transmit(chunk);
    }
  }

  write(chunk: Buffer): boolean {
    if (!this.writable) return false;
    const copy = Buffer.from(chunk);
    if (this.corked > 0) this.corkedChunks.push(copy);
    else this.transmit(copy);
    return true;
  }

  end(): this {
    if (this.ended || this.destroyed) return this;
    this.uncorkAll();
    this.ended = true;
    this.transmit(undefined);
    this.maybeClose();
    return this;
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.connecting = false;
    this.net.untrack(this);
    const peer = this.peer;
    this.peer = undefined;
    if (peer) {
      this.schedule(peer, () => peer.reset());
    }
    this.net.clockOf(this.localHost).setTimeout(() => this.emit('close'), 0);
    return this;
  }

  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    if (!this.paused) return this;
    this.paused = false;
    this.net.clockOf(this.localHost).setTimeout(() => this.drainInbox(), 0);
    return this;
  }

  /** @internal the process on this host died */
  kill(silent: boolean): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.net.untrack(this);
    const peer = this.peer;
    this.peer = undefined;
    if (peer && !silent) this.schedule(peer, () => peer.reset());
  }

  /** @internal bytes held by a cut are sent now */
  flushHeld(): void {
    const held = this.held;
    this.held = [];
    for (const chunk of held) this.transmit(chunk);
  }

  private uncorkAll(): void {
    this.corked = 1;
    this.uncork();
  }

  /** Sends a chunk (or the end of stream, `undefined`) to the peer, in order. */
  private transmit(chunk: Buffer | undefined): void {
    const peer = this.peer;
    if (!peer) return;
    if (this.net.isBlocked(this.localHost, peer.localHost) || this.held.length > 0) {
      if (chunk === undefined) this.held.push(Buffer.alloc(0));
      else this.held.push(chunk);
      if (chunk === undefined) (this.held as (Buffer & { eos?: boolean })[]).at(-1)!.eos = true;
      return;
    }
    this.schedule(peer, () =>
      chunk === undefined || (chunk as { eos?: boolean }).eos
        ? peer.receiveEnd()
        : peer.receive(chunk),
    );
  }

  private schedule(peer: MemoryWire, deliver: () => void): void {
    const clock = this.net.clockOf(peer.localHost);
    const now = clock.now();
    const at = Math.max(now + this.net.deliveryDelay(peer.localHost), this.lastDeliveryAt);
    this.lastDeliveryAt = at;
    clock.setTimeout(deliver, at - now);
  }

  private receive(chunk: Buffer): void {
    if (this.destroyed) return;
    this.inbox.push(chunk);
    this.drainInbox();
  }

  private drainInbox(): void {
    while (!this.paused && !this.destroyed && this.inbox.length > 0) {
      this.emit('data', this.inbox.shift()!);
    }
    if (!this.paused && this.peerEnded && this.inbox.length === 0 && !this.destroyed) {
      this.emit('end');
      // allowHalfOpen is false: our side ends too.
      this.end();
      this.maybeClose();
    }
  }

  private receiveEnd(): void {
    if (this.destroyed) return;
    this.peerEnded = true;
    this.drainInbox();
  }

  private reset(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.net.untrack(this);
    this.peer = undefined;
    this.emit('error', errno('ECONNRESET', 'read'));
    this.emit('close');
  }

  private maybeClose(): void {
    if (this.ended && this.peerEnded && !this.destroyed) {
      this.destroyed = true;
      this.net.untrack(this);
      this.peer = undefined;
      this.net.clockOf(this.localHost).setTimeout(() => this.emit('close'), 0);
    }
  }
}
