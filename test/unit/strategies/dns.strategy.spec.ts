import type { LookupAddress } from 'node:dns';
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterError } from '../../../lib/errors/cluster.error.js';
import { DnsDiscoveryError } from '../../../lib/errors/dns-discovery.error.js';
import { DnsStrategy, type DnsStrategyConfig } from '../../../lib/strategies/dns.strategy.js';
import { FakeStrategyContext } from './fake-context.js';

const PORT = 45893;
const WAIT_MS = 3000;

/** A resolver whose answer the test changes; it records every query. */
function fakeResolver(initial: LookupAddress[] | Error) {
  const state = { answer: initial, queries: [] as string[] };
  const resolver = (query: string): Promise<LookupAddress[]> => {
    state.queries.push(query);
    return state.answer instanceof Error
      ? Promise.reject(state.answer)
      : Promise.resolve(state.answer);
  };
  return { state, resolver };
}

function dnsError(code: string): Error {
  return Object.assign(new Error(`getaddrinfo ${code} app.internal`), { code });
}

describe('DnsStrategy', () => {
  let strategies: DnsStrategy[] = [];
  afterEach(() => {
    for (const s of strategies) s.stop();
    strategies = [];
  });

  function start(
    config: Partial<DnsStrategyConfig>,
    ctx = new FakeStrategyContext({ name: 'myapp@10.1.0.1' }),
  ) {
    const strategy = new DnsStrategy({
      query: 'app.internal',
      clusterPort: PORT,
      pollingIntervalMs: 50,
      ...config,
    });
    strategies.push(strategy);
    void strategy.start(ctx);
    return { strategy, ctx };
  }

  it('resolves the query at start and hands over one endpoint per A/AAAA address', async () => {
    const { state, resolver } = fakeResolver([
      { address: '10.1.0.1', family: 4 },
      { address: '10.1.0.2', family: 4 },
      { address: 'fd00::3', family: 6 },
      { address: '10.1.0.2', family: 4 },
    ]);
    const { ctx } = start({ resolver, nodeBasename: 'oli' });

    await ctx.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'first poll');

    expect(ctx.connects[0]).toEqual([
      { host: '10.1.0.1', port: PORT, name: 'oli@10.1.0.1' },
      { host: '10.1.0.2', port: PORT, name: 'oli@10.1.0.2' },
      { host: 'fd00::3', port: PORT, name: 'oli@fd00::3' },
    ]);
    expect(state.queries[0]).toBe('app.internal');
    expect(ctx.oks.length).toBeGreaterThanOrEqual(1);
  });

  it('defaults the node basename to the local node-name prefix and polls again every interval', async () => {
    const { state, resolver } = fakeResolver([{ address: '10.1.0.9', family: 4 }]);
    const { ctx } = start({ resolver });

    await ctx.waitFor((c) => c.connects.length >= 3, WAIT_MS, 'three polls');

    expect(ctx.lastConnect).toEqual([{ host: '10.1.0.9', port: PORT, name: 'myapp@10.1.0.9' }]);
    expect(state.queries.length).toBeGreaterThanOrEqual(3);
  });

  it('an address leaving the record drops out of the next set', async () => {
    const { state, resolver } = fakeResolver([
      { address: '10.1.0.1', family: 4 },
      { address: '10.1.0.2', family: 4 },
    ]);
    const { ctx } = start({ resolver });
    await ctx.waitFor((c) => c.lastConnect.length === 2, WAIT_MS, 'two addresses');

    state.answer = [{ address: '10.1.0.1', family: 4 }];
    await ctx.waitFor((c) => c.lastConnect.length === 1, WAIT_MS, 'one address');
    expect(ctx.lastConnect).toEqual([{ host: '10.1.0.1', port: PORT, name: 'myapp@10.1.0.1' }]);
  });

  it('a failed lookup warns, reports the error, keeps the members (no connect) and recovers', async () => {
    const { state, resolver } = fakeResolver([{ address: '10.1.0.1', family: 4 }]);
    const { ctx } = start({ resolver });
    await ctx.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'first poll');

    state.answer = dnsError('ENOTFOUND');
    const connects = ctx.connects.length;
    await ctx.waitFor((c) => c.errors.length >= 2, WAIT_MS, 'two failed polls');
    // A poll may have been in flight when the answer changed; no set was handed over after the first failure.
    expect(ctx.connects.length).toBeLessThanOrEqual(connects + 1);
    const frozen = ctx.connects.length;

    const [error] = ctx.errors;
    expect(error).toBeInstanceOf(DnsDiscoveryError);
    expect(error).toBeInstanceOf(ClusterError);
    expect((error as DnsDiscoveryError).query).toBe('app.internal');
    expect((error as DnsDiscoveryError).retryable).toBe(true);
    expect(ctx.logger.at('warn')[0]).toContain('DNS query app.internal failed: ENOTFOUND');
    expect(ctx.connects.every((set) => set.length === 1)).toBe(true);

    state.answer = [
      { address: '10.1.0.1', family: 4 },
      { address: '10.1.0.5', family: 4 },
    ];
    const oks = ctx.oks.length;
    await ctx.waitFor((c) => c.connects.length > frozen && c.oks.length > oks, WAIT_MS, 'recovery');
    expect(ctx.lastConnect.map((e) => e.host)).toEqual(['10.1.0.1', '10.1.0.5']);
    expect(ctx.logger.at('log').some((l) => l.includes('resolves again'))).toBe(true);
  });

  it('a resolver that never answers fails the poll after lookupTimeoutMs, and polling goes on', async () => {
    let calls = 0;
    const resolver = (): Promise<LookupAddress[]> => {
      calls++;
      return calls === 1
        ? new Promise(() => {})
        : Promise.resolve([{ address: '10.1.0.4', family: 4 }]);
    };
    const started = Date.now();
    const { ctx } = start({ resolver, lookupTimeoutMs: 150 });

    await ctx.waitFor((c) => c.errors.length >= 1, WAIT_MS, 'a lookup timeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(ctx.logger.at('warn')[0]).toContain(
      'DNS query app.internal failed: ETIMEOUT: no answer within 150 ms',
    );
    await ctx.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'the next poll');
    expect(ctx.lastConnect.map((e) => e.host)).toEqual(['10.1.0.4']);
  });

  it('an empty answer is an empty set, not an error', async () => {
    const { resolver } = fakeResolver([]);
    const { ctx } = start({ resolver });
    await ctx.waitFor((c) => c.connects.length >= 1, WAIT_MS, 'first poll');
    expect(ctx.lastConnect).toEqual([]);
    expect(ctx.errors).toEqual([]);
  });

  it('stop() ends polling, and a lookup in flight at stop is ignored', async () => {
    let release: ((v: LookupAddress[]) => void) | undefined;
    let calls = 0;
    const resolver = (): Promise<LookupAddress[]> => {
      calls++;
      return new Promise((resolve) => (release = resolve));
    };
    const { strategy, ctx } = start({ resolver });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(calls).toBe(1);
    strategy.stop();
    release!([{ address: '10.1.0.1', family: 4 }]);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(ctx.connects).toEqual([]);
    expect(calls).toBe(1);
  });

  it('the default resolver is the system lookup (localhost resolves through /etc/hosts)', async () => {
    const { ctx } = start({ query: 'localhost', nodeBasename: 'n' });
    await ctx.waitFor((c) => c.connects.length >= 1 || c.errors.length >= 1, WAIT_MS, 'first poll');
    expect(ctx.errors).toEqual([]);
    expect(ctx.lastConnect.map((e) => e.host)).toContain('127.0.0.1');
  });

  it('rejects a missing query at construction', () => {
    expect(() => new DnsStrategy({ query: ' ', clusterPort: PORT })).toThrow(
      /LIBCLUSTER_DNS_QUERY/,
    );
  });
});
