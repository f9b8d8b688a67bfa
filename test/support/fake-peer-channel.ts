import { NotAMemberError } from '../../lib/errors/not-a-member.error.js';
import type { PeerChannel } from '../../lib/messaging/peer-channel.interface.js';

type FrameHandler = (from: string, payload: Buffer) => void;

/** One frame that went through `sendFrame` (recorded for assertions). */
export interface SentFrame {
  readonly from: string;
  readonly to: string;
  readonly type: number;
  readonly payload: Buffer;
}

/**
 * An in-memory `PeerChannel` of one node in a `FakePeerNetwork`. Frames are copied (as on a
 * wire) and delivered asynchronously, in send order per sender→receiver pair.
 */
export class FakePeerChannel implements PeerChannel {
  private readonly frameHandlers = new Map<number, Set<FrameHandler>>();
  private readonly goneHandlers = new Set<(name: string) => void>();
  private readonly fullTo = new Set<string>();

  constructor(
    private readonly network: FakePeerNetwork,
    readonly selfName: string,
  ) {}

  memberNames(): string[] {
    return this.network.memberNamesOf(this.selfName);
  }

  sendFrame(node: string, type: number, payload: Buffer): boolean {
    if (!this.memberNames().includes(node)) throw new NotAMemberError(node);
    if (this.fullTo.has(node)) return false;
    this.network.transmit(this.selfName, node, type, Buffer.from(payload));
    return true;
  }

  onFrame(type: number, handler: FrameHandler): () => void {
    let set = this.frameHandlers.get(type);
    if (!set) {
      set = new Set();
      this.frameHandlers.set(type, set);
    }
    set.add(handler);
    return () => set.delete(handler);
  }

  onMemberGone(handler: (name: string) => void): () => void {
    this.goneHandlers.add(handler);
    return () => this.goneHandlers.delete(handler);
  }

  /** Makes the write buffer towards `node` full (`sendFrame` returns false) or not. */
  setBufferFull(node: string, full: boolean): void {
    if (full) this.fullTo.add(node);
    else this.fullTo.delete(node);
  }

  /** Number of handlers registered (frame types and member-gone), to check unregistering. */
  handlerCount(): number {
    let count = this.goneHandlers.size;
    for (const set of this.frameHandlers.values()) count += set.size;
    return count;
  }

  /** Delivers a frame to this node's handlers now, as the link would. */
  receive(from: string, type: number, payload: Buffer): void {
    for (const handler of [...(this.frameHandlers.get(type) ?? [])]) handler(from, payload);
  }

  /** Tells this node's handlers that `name` left. */
  memberGone(name: string): void {
    for (const handler of [...this.goneHandlers]) handler(name);
  }
}

/**
 * An in-memory full mesh of `FakePeerChannel`s: every node added is a member of every other,
 * until `remove()` takes it out (the others get `onMemberGone`, frames in flight to or from
 * it are lost, as on a closed socket).
 */
export class FakePeerNetwork {
  private readonly channels = new Map<string, FakePeerChannel>();
  /** Every frame accepted by `sendFrame`, in order. */
  readonly sent: SentFrame[] = [];

  /** Adds a node and returns its channel. */
  add(name: string): FakePeerChannel {
    const channel = new FakePeerChannel(this, name);
    this.channels.set(name, channel);
    return channel;
  }

  /** The channel of a node. */
  channel(name: string): FakePeerChannel {
    const channel = this.channels.get(name);
    if (!channel) throw new Error(`no fake node ${name}`);
    return channel;
  }

  /** Removes a node: every remaining node sees it gone, and it sees every other gone. */
  remove(name: string): void {
    const removed = this.channels.get(name);
    if (!removed) return;
    this.channels.delete(name);
    for (const channel of this.channels.values()) {
      channel.memberGone(name);
      removed.memberGone(channel.selfName);
    }
  }

  /** Names of the members other than `self`. */
  memberNamesOf(self: string): string[] {
    if (!this.channels.has(self)) return [];
    return [...this.channels.keys()].filter((name) => name !== self);
  }

  /** Queues one frame; delivered on a later macrotask, FIFO across the whole network. */
  transmit(from: string, to: string, type: number, payload: Buffer): void {
    this.sent.push({ from, to, type, payload });
    setImmediate(() => {
      if (!this.channels.has(from)) return;
      this.channels.get(to)?.receive(from, type, payload);
    });
  }
}
