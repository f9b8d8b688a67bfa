import type { NodeIdentity } from '../interfaces/member.interface.js';

/**
 * Shared reachability: what each member reports about the members it cannot reach.
 *
 * A report (one `REACHABILITY` frame, JSON) is one observer's row, versioned per incarnation:
 *
 * ```
 * { "v": 1, "o": observer, "i": incarnation, "n": version,
 *   "u": [[name, incarnation, startedAt, endpoint], …],   members it lost and shows unreachable
 *   "a": [[name, incarnation, 1|0], …] }                   answers: does it have a live link to
 *                                                          the members others mark unreachable?
 * ```
 *
 * A healthy cluster sends none: a row is sent only when it changes, and it is empty (and never
 * sent) until a link fails. Rules:
 * - an observer sends its row to every member it has a link to, when it changes (once per turn
 *   of the event loop) and to a new link when its version is above 0;
 * - a member that receives a newer row relays it to the members the row marks (or marked in
 *   the version it replaces) that it has a link to: they cannot get it from the observer;
 * - the row with the higher version of the same incarnation wins; older ones are ignored.
 */
export const REACHABILITY_FORMAT = 1;

/** Entries (`u` and `a` together) a report may carry at most; more is treated as garbage. */
export const MAX_REACHABILITY_ENTRIES = 4096;

/** What an observer answers about a member another observer marks unreachable. */
export interface ReachabilityAnswer {
  readonly name: string;
  readonly incarnation: string;
  /** True when the observer has a live link to that member. */
  readonly linked: boolean;
}

/** One observer's report. */
export interface ReachabilityRow {
  readonly observer: string;
  readonly incarnation: string;
  /** Starts at 1 and grows with every change of the row, per incarnation. */
  readonly version: number;
  /** Members the observer lost its link to while others still reach them. */
  readonly unreachable: readonly NodeIdentity[];
  /** Its answers about the members other observers mark unreachable. */
  readonly answers: readonly ReachabilityAnswer[];
}

export function encodeReachability(row: ReachabilityRow): Buffer {
  return Buffer.from(
    JSON.stringify({
      v: REACHABILITY_FORMAT,
      o: row.observer,
      i: row.incarnation,
      n: row.version,
      u: row.unreachable.map((m) => [m.name, m.incarnation, m.startedAt, m.endpoint]),
      a: row.answers.map((a) => [a.name, a.incarnation, a.linked ? 1 : 0]),
    }),
  );
}

const MAX_TEXT = 512;

function text(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_TEXT;
}

/** Decodes a report; a string saying what is wrong when it is malformed or too large. */
export function decodeReachability(payload: Buffer): ReachabilityRow | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload.toString('utf8'));
  } catch {
    return 'not JSON';
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    return 'not an object';
  const f = parsed as {
    v?: unknown;
    o?: unknown;
    i?: unknown;
    n?: unknown;
    u?: unknown;
    a?: unknown;
  };
  if (f.v !== REACHABILITY_FORMAT) return `unknown format ${String(f.v)}`;
  if (!text(f.o) || !text(f.i)) return 'no observer';
  if (typeof f.n !== 'number' || !Number.isSafeInteger(f.n) || f.n < 1) return 'bad version';
  if (!Array.isArray(f.u) || !Array.isArray(f.a)) return 'no entries';
  const entries = f.u.length + f.a.length;
  if (entries > MAX_REACHABILITY_ENTRIES)
    return `${entries} entries (at most ${MAX_REACHABILITY_ENTRIES})`;
  const unreachable: NodeIdentity[] = [];
  const seen = new Set<string>();
  for (const item of f.u as unknown[]) {
    if (!Array.isArray(item) || item.length !== 4) return 'malformed member';
    const [name, incarnation, startedAt, endpoint] = item as unknown[];
    if (!text(name) || !text(incarnation) || typeof endpoint !== 'string')
      return 'malformed member';
    if (typeof startedAt !== 'number' || !Number.isFinite(startedAt)) return 'malformed member';
    if (seen.has(name) || name === f.o) return `member ${name} listed twice or as its own observer`;
    seen.add(name);
    unreachable.push({ name, incarnation, startedAt, endpoint: endpoint.slice(0, MAX_TEXT) });
  }
  const answers: ReachabilityAnswer[] = [];
  for (const item of f.a as unknown[]) {
    if (!Array.isArray(item) || item.length !== 3) return 'malformed answer';
    const [name, incarnation, linked] = item as unknown[];
    if (!text(name) || !text(incarnation) || (linked !== 0 && linked !== 1))
      return 'malformed answer';
    answers.push({ name, incarnation, linked: linked === 1 });
  }
  return { observer: f.o, incarnation: f.i, version: f.n, unreachable, answers };
}

/** Outcome of `ReachabilityTable.merge`. */
export type MergeOutcome = 'newer' | 'stale' | 'foreign';

function key(name: string, incarnation: string): string {
  return `${name}\u0000${incarnation}`;
}

/**
 * The rows this node holds, one per observer (its own included), merged by version. Which
 * rows count is the caller's choice (`marks`, `answer`): only those of current members.
 */
export class ReachabilityTable {
  private readonly rows = new Map<string, ReachabilityRow>();
  /** A row's answers by `name\0incarnation`, built on first use (`answerOf` runs per lost member per member). */
  private readonly answerIndex = new WeakMap<ReachabilityRow, Map<string, boolean>>();

  get size(): number {
    return this.rows.size;
  }

  get(observer: string): ReachabilityRow | undefined {
    return this.rows.get(observer);
  }

  /**
   * Takes `row` when it is newer than the one held for its observer: a higher version of the
   * same incarnation, or any version of `current` (the observer's incarnation as this node
   * knows it) when the held row is of another. A row of an incarnation other than `current` is
   * `foreign` and ignored.
   */
  merge(row: ReachabilityRow, current?: string): MergeOutcome {
    if (current !== undefined && row.incarnation !== current) return 'foreign';
    const held = this.rows.get(row.observer);
    if (held && held.incarnation === row.incarnation && held.version >= row.version) return 'stale';
    this.rows.set(row.observer, row);
    return 'newer';
  }

  delete(observer: string): void {
    this.rows.delete(observer);
  }

  clear(): void {
    this.rows.clear();
  }

  observers(): IterableIterator<string> {
    return this.rows.keys();
  }

  /**
   * How many of `observers` mark each member unreachable, by `name\0incarnation`. Only the
   * row of the observer's current incarnation counts.
   */
  marks(observers: Iterable<NodeIdentity>): Map<string, number> {
    const out = new Map<string, number>();
    for (const o of observers) {
      const row = this.rows.get(o.name);
      if (!row || row.incarnation !== o.incarnation) continue;
      for (const m of row.unreachable) {
        const k = key(m.name, m.incarnation);
        out.set(k, (out.get(k) ?? 0) + 1);
      }
    }
    return out;
  }

  /**
   * The members `observers` (self excluded) mark unreachable, as the answers `self` gives:
   * `linked` when `isLinked` says self has a live link to that incarnation. Sorted by name.
   */
  answers(
    observers: Iterable<NodeIdentity>,
    selfName: string,
    isLinked: (name: string, incarnation: string) => boolean,
  ): ReachabilityAnswer[] {
    const subjects = new Map<string, ReachabilityAnswer>();
    for (const o of observers) {
      if (o.name === selfName) continue;
      const row = this.rows.get(o.name);
      if (!row || row.incarnation !== o.incarnation) continue;
      for (const m of row.unreachable) {
        if (m.name === selfName) continue;
        const k = key(m.name, m.incarnation);
        if (!subjects.has(k))
          subjects.set(k, {
            name: m.name,
            incarnation: m.incarnation,
            linked: isLinked(m.name, m.incarnation),
          });
      }
    }
    return [...subjects.values()].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : a.incarnation < b.incarnation ? -1 : 1,
    );
  }

  /** What `observer`'s current row answers about `subject` (undefined: nothing). */
  answerOf(observer: NodeIdentity, subject: NodeIdentity): boolean | undefined {
    const row = this.rows.get(observer.name);
    if (!row || row.incarnation !== observer.incarnation) return undefined;
    let index = this.answerIndex.get(row);
    if (!index) {
      index = new Map(row.answers.map((a) => [key(a.name, a.incarnation), a.linked]));
      this.answerIndex.set(row, index);
    }
    return index.get(key(subject.name, subject.incarnation));
  }
}

/** The key `ReachabilityTable.marks` uses for a member. */
export function markKey(member: NodeIdentity): string {
  return key(member.name, member.incarnation);
}

/** True when two answer lists say the same. */
export function sameAnswers(
  a: readonly ReachabilityAnswer[],
  b: readonly ReachabilityAnswer[],
): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i].name !== b[i].name || a[i].incarnation !== b[i].incarnation) return false;
    if (a[i].linked !== b[i].linked) return false;
  }
  return true;
}
