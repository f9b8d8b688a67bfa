import { performance } from 'node:perf_hooks';

/** A timer handle returned by a `Clock`; pass it back to `clearTimeout`. */
export interface TimerHandle {
  /** Lets the process exit while the timer is pending (no-op on a virtual clock). */
  unref?(): unknown;
}

/**
 * The time seam of the core. Everything in the membership core that waits or measures goes
 * through one of these, so the simulator can run the real code on virtual time.
 */
export interface Clock {
  /** Monotonic milliseconds (heartbeats, deadlines, backoff). */
  now(): number;
  /** Wall-clock epoch milliseconds (event timestamps, `startedAt`). */
  wallNow(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  /** Runs `callback` after the current turn (and its promise jobs) — `setImmediate`. */
  defer(callback: () => void): void;
}

/** The process's real clock; timers are unref'd so they never keep a process alive. */
export const systemClock: Clock = Object.freeze({
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout: (callback: () => void, ms: number): TimerHandle => {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return timer;
  },
  clearTimeout: (handle: TimerHandle | undefined): void => {
    if (handle !== undefined) clearTimeout(handle as NodeJS.Timeout);
  },
  defer: (callback: () => void): void => {
    setImmediate(callback);
  },
});
