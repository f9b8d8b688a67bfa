import { vi } from 'vitest';
import { FrameDecoder, type Frame } from '../../lib/transport/frame.js';
import { MemoryWire } from '../../lib/transport/memory-network.js';

/**
 * Calls `visit` with every frame any in-memory wire carries from now on (until
 * `vi.restoreAllMocks()`), and the wire that writes it. The links must be unsealed
 * (`sealLinks: false`) for their frames to be visible on the wire; sealing sits below
 * membership and changes no frame it sends.
 */
export function watchWireFrames(visit: (wire: MemoryWire, frame: Frame) => void): void {
  const decoders = new WeakMap<MemoryWire, FrameDecoder>();
  const write = Object.getOwnPropertyDescriptor(MemoryWire.prototype, 'write')!
    .value as MemoryWire['write'];
  vi.spyOn(MemoryWire.prototype, 'write').mockImplementation(function (
    this: MemoryWire,
    chunk: Buffer,
  ) {
    let decoder = decoders.get(this);
    if (!decoder) decoders.set(this, (decoder = new FrameDecoder(64 * 1024 * 1024)));
    for (const frame of decoder.push(Buffer.from(chunk))) visit(this, frame);
    return write.call(this, chunk);
  });
}

/** Counts, by frame type, every frame the in-memory wires carry from now on (see `watchWireFrames`). */
export function countWireFrames(): Map<number, number> {
  const counts = new Map<number, number>();
  watchWireFrames((_wire, frame) => counts.set(frame.type, (counts.get(frame.type) ?? 0) + 1));
  return counts;
}
