import type { Clock, TimerHandle } from './clock.js';

interface Scheduled extends TimerHandle {
  at: number;
  seq: number;
  readonly owner: ProcessClock;
  readonly callback: () => void;
  cancelled: boolean;
}

/**
 * Virtual time for the simulator and for unit tests of the core: one ordered queue of timers
 * for many simulated processes. Time moves only when `runUntil` / `runFor` pop the next
 * timer, so a run is a pure function of its inputs and seed.
 *
 * After each timer, `runUntil` lets promise jobs and `process.nextTick` callbacks settle
 * before the next one fires, so async code under test sees the same ordering every run.
 * The core must not use the real `setTimeout`/`setImmediate` (it takes a `Clock`).
 */
export class VirtualTime {
  private readonly heap: Scheduled[] = [];
  private seq = 0;
  private current = 0;
  /** Errors thrown by timer callbacks (a correct core throws none). */
  readonly uncaught: unknown[] = [];

  constructor(
    /** Epoch milliseconds at virtual time 0 (`wallNow`). */
    readonly epoch = Date.UTC(2026, 0, 1),
  ) {}

  get now(): number {
    return this.current;
  }

  /** Timers not yet fired. */
  get pending(): number {
    return this.heap.length;
  }

  /** A clock for one simulated process. */
  process(): ProcessClock {
    return new ProcessClock(this);
  }

  /** @internal */
  schedule(owner: ProcessClock, callback: () => void, ms: number): Scheduled {
    const entry: Scheduled = {
      at: this.current + Math.max(0, ms),
      seq: this.seq++,
      owner,
      callback,
      cancelled: false,
    };
    this.push(entry);
    return entry;
  }

  /** Runs every timer due up to `time` (inclusive), in order; ends with `now === time`. */
  async runUntil(time: number, shouldStop?: () => boolean): Promise<void> {
    for (;;) {
      const next = this.heap[0];
      if (next === undefined || next.at > time) break;
      this.pop();
      if (next.cancelled) continue;
      this.current = next.at;
      if (next.owner.isDead) continue;
      if (next.owner.isFrozen) {
        next.owner.hold(next);
        continue;
      }
      try {
        next.callback();
      } catch (error) {
        this.uncaught.push(error);
      }
      // Timers due at the same instant run back to back; promise jobs settle once after them.
      if (this.heap[0]?.at === this.current) continue;
      await settle();
      if (shouldStop?.()) return;
    }
    this.current = Math.max(this.current, time);
  }

  /** @internal puts a deferred timer back in the queue, due now */
  reschedule(entry: Scheduled): void {
    entry.at = this.current;
    entry.seq = this.seq++;
    this.push(entry);
  }

  runFor(ms: number, shouldStop?: () => boolean): Promise<void> {
    return this.runUntil(this.current + ms, shouldStop);
  }

  private push(entry: Scheduled): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop()!;
    if (heap.length === 0) return;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && before(heap[l], heap[m])) m = l;
      if (r < heap.length && before(heap[r], heap[m])) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m], heap[i]];
      i = m;
    }
  }
}

function before(a: Scheduled, b: Scheduled): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** Lets queued promise jobs and nextTick callbacks run (they all run before a macrotask). */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The clock of one simulated process. `freeze()` stops its timers (a stopped-the-world GC,
 * SIGSTOP, a VM pause): they fire late, in order, at `thaw()`. `kill()` drops them all.
 */
export class ProcessClock implements Clock {
  private frozen = false;
  private dead = false;
  private deferred: Scheduled[] = [];

  constructor(private readonly time: VirtualTime) {}

  get isFrozen(): boolean {
    return this.frozen;
  }

  get isDead(): boolean {
    return this.dead;
  }

  now(): number {
    return this.time.now;
  }

  wallNow(): number {
    return this.time.epoch + this.time.now;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    return this.time.schedule(this, callback, ms);
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle !== undefined) (handle as Scheduled).cancelled = true;
  }

  defer(callback: () => void): void {
    this.time.schedule(this, callback, 0);
  }

  freeze(): void {
    this.frozen = true;
  }

  thaw(): void {
    if (!this.frozen) return;
    this.frozen = false;
    const due = this.deferred;
    this.deferred = [];
    for (const entry of due) {
      if (!entry.cancelled) this.time.reschedule(entry);
    }
  }

  kill(): void {
    this.dead = true;
    this.deferred = [];
  }

  /** @internal */
  hold(entry: Scheduled): void {
    this.deferred.push(entry);
  }
}
