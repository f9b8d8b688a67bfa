import { randomUUID } from 'node:crypto';
import type { LoggerService } from '@nestjs/common';
import type { Member, NodeIdentity } from '../../../lib/interfaces/member.interface.js';
import type {
  DiscoveredEndpoint,
  StrategyContext,
} from '../../../lib/strategies/strategy.interface.js';

/** One line a strategy logged through the fake context's logger. */
export interface LoggedLine {
  readonly level: 'log' | 'error' | 'warn' | 'debug' | 'verbose' | 'fatal';
  readonly message: string;
}

/** A `LoggerService` that records every line (and echoes them when `FAKE_CONTEXT_ECHO=1`). */
export class RecordingLogger implements LoggerService {
  readonly lines: LoggedLine[] = [];

  constructor(private readonly onLine: () => void = () => {}) {}

  log(message: unknown): void {
    this.record('log', message);
  }
  error(message: unknown): void {
    this.record('error', message);
  }
  warn(message: unknown): void {
    this.record('warn', message);
  }
  debug(message: unknown): void {
    this.record('debug', message);
  }
  verbose(message: unknown): void {
    this.record('verbose', message);
  }
  fatal(message: unknown): void {
    this.record('fatal', message);
  }

  /** Lines of one level. */
  at(level: LoggedLine['level']): string[] {
    return this.lines.filter((l) => l.level === level).map((l) => l.message);
  }

  private record(level: LoggedLine['level'], message: unknown): void {
    const text = typeof message === 'string' ? message : String(message);
    this.lines.push({ level, message: text });
    if (process.env.FAKE_CONTEXT_ECHO === '1') {
      process.stderr.write(`[${level}] ${text}\n`);
    }
    this.onLine();
  }
}

/** Options of {@link FakeStrategyContext} besides the self identity. */
export interface FakeContextOptions {
  /** Topology name. @default 'default' */
  topology?: string;
  /** `ctx.debug`. @default true */
  debug?: boolean;
  /** Members besides self that `members()` reports. @default [] */
  members?: Member[];
}

/**
 * A `StrategyContext` that records what a strategy does (libcluster's test/support style):
 * every `connect` / `disconnect` set, every reported error, every `reportOk`, every log
 * line. Tests drive a strategy against it and await behaviour with {@link waitFor}.
 */
export class FakeStrategyContext implements StrategyContext {
  readonly topology: string;
  readonly self: NodeIdentity;
  readonly logger: RecordingLogger;
  readonly debug: boolean;
  /** Every set handed to `connect`, in order. */
  readonly connects: DiscoveredEndpoint[][] = [];
  /** Every set handed to `disconnect`, in order. */
  readonly disconnects: DiscoveredEndpoint[][] = [];
  /** Every error handed to `reportError`, in order. */
  readonly errors: unknown[] = [];
  /** `Date.now()` of every `reportOk` call, in order. */
  readonly oks: number[] = [];
  /** Members besides self; tests may replace it to simulate links coming and going. */
  otherMembers: Member[];

  private readonly waiters = new Set<() => void>();

  constructor(self: Partial<NodeIdentity> = {}, options: FakeContextOptions = {}) {
    const incarnation = self.incarnation ?? randomUUID();
    this.self = {
      name: self.name ?? `test-${incarnation.slice(0, 8)}@127.0.0.1`,
      incarnation,
      startedAt: self.startedAt ?? Date.now(),
      endpoint: self.endpoint ?? '127.0.0.1:45893',
    };
    this.topology = options.topology ?? 'default';
    this.debug = options.debug ?? true;
    this.otherMembers = options.members ?? [];
    this.logger = new RecordingLogger(() => this.notify());
  }

  /** The last set handed to `connect`, or `[]` when none was. */
  get lastConnect(): DiscoveredEndpoint[] {
    return this.connects.at(-1) ?? [];
  }

  /** Names in the last `connect` set, sorted. */
  get lastConnectNames(): string[] {
    return this.lastConnect.map((e) => e.name ?? `${e.host}:${e.port}`).sort();
  }

  connect(endpoints: readonly DiscoveredEndpoint[]): void {
    this.connects.push([...endpoints]);
    this.notify();
  }

  disconnect(endpoints: readonly DiscoveredEndpoint[]): void {
    this.disconnects.push([...endpoints]);
    this.notify();
  }

  members(): Member[] {
    const self: Member = {
      ...this.self,
      address: this.self.endpoint,
      self: true,
      joinedAt: this.self.startedAt,
      state: 'up',
    };
    return [self, ...this.otherMembers];
  }

  reportError(error: unknown): void {
    this.errors.push(error);
    this.notify();
  }

  reportOk(): void {
    this.oks.push(Date.now());
    this.notify();
  }

  /**
   * Resolves once `predicate` holds; it is checked now and after every recorded call or log
   * line. Rejects after `timeoutMs` with `description` in the message.
   */
  waitFor(
    predicate: (ctx: this) => boolean,
    timeoutMs: number,
    description = 'condition',
  ): Promise<void> {
    if (predicate(this)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (!predicate(this)) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(
          new Error(
            `${this.self.name}: timed out after ${timeoutMs} ms waiting for ${description}`,
          ),
        );
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  private notify(): void {
    for (const check of [...this.waiters]) check();
  }
}

/** A member record for `FakeStrategyContext.otherMembers`. */
export function fakeMember(
  name: string,
  endpoint: string,
  incarnation: string = randomUUID(),
): Member {
  const now = Date.now();
  return {
    name,
    incarnation,
    startedAt: now,
    endpoint,
    address: endpoint,
    self: false,
    joinedAt: now,
    state: 'up',
  };
}
