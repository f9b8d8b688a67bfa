import { afterEach, describe, expect, it } from 'vitest';
import { ClusterError } from '../../../lib/errors/cluster.error.js';
import { InvalidHostListError } from '../../../lib/errors/invalid-host-list.error.js';
import { parseHostList, StaticStrategy } from '../../../lib/strategies/static.strategy.js';
import { FakeStrategyContext } from './fake-context.js';

const PORT = 45893;

describe('parseHostList', () => {
  it('parses host, host:port, name@host:port, name@host and bracketed or bare IPv6', () => {
    expect(
      parseHostList(
        '10.0.1.5, app@10.0.1.6:4000, db-1.internal:45000, oli@node3.example.com, [fd00::7]:46000, [fd00::8], fd00::9, localhost',
        PORT,
      ),
    ).toEqual([
      { host: '10.0.1.5', port: PORT },
      { host: '10.0.1.6', port: 4000, name: 'app@10.0.1.6' },
      { host: 'db-1.internal', port: 45000 },
      { host: 'node3.example.com', port: PORT, name: 'oli@node3.example.com' },
      { host: 'fd00::7', port: 46000 },
      { host: 'fd00::8', port: PORT },
      { host: 'fd00::9', port: PORT },
      { host: 'localhost', port: PORT },
    ]);
  });

  it('takes an array, ignores blank entries and collapses duplicates', () => {
    expect(
      parseHostList(['127.0.0.2:5000', ' ', '127.0.0.2:5000', '127.0.0.2:5001', ''], PORT),
    ).toEqual([
      { host: '127.0.0.2', port: 5000 },
      { host: '127.0.0.2', port: 5001 },
    ]);
    expect(parseHostList('', PORT)).toEqual([]);
  });

  it('throws one InvalidHostListError listing every bad entry with the reason', () => {
    const bad = [
      '10.0.1.5:notaport',
      'host:70000',
      'fd00::1:2:zz',
      '[fd00::1',
      '[10.0.0.1]:80',
      'bad host',
      'a@b@',
      ':45893',
      'x@',
    ];
    let thrown: unknown;
    try {
      parseHostList(['10.0.1.1', ...bad], PORT);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(InvalidHostListError);
    expect(thrown).toBeInstanceOf(ClusterError);
    const error = thrown as InvalidHostListError;
    expect(error.entries.map((e) => e.entry)).toEqual(bad);
    expect(error.entries[0].reason).toBe('port must be a number');
    expect(error.entries[1].reason).toBe('port must be 1-65535');
    expect(error.entries[3].reason).toBe('missing ]');
    expect(error.entries[4].reason).toBe('not an IPv6 address inside [ ]');
    for (const entry of bad) expect(error.message).toContain(`"${entry}"`);
    expect(error.message).not.toContain('"10.0.1.1"');
    expect(error.retryable).toBe(false);
  });
});

describe('parseHostList: URLs', () => {
  it('reports a URL as a URL where host:port was expected, with the host:port it meant', () => {
    let thrown: unknown;
    try {
      parseHostList(['http://x:1/', 'https://10.0.1.6/cluster', 'tcp://[fd00::7]:45893'], PORT);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(InvalidHostListError);
    const reasons = (thrown as InvalidHostListError).entries.map((e) => e.reason);
    expect(reasons).toEqual([
      'a URL where host:port was expected (write x:1)',
      'a URL where host:port was expected (write 10.0.1.6)',
      'a URL where host:port was expected (write [fd00::7]:45893)',
    ]);
    for (const reason of reasons) expect(reason).not.toContain('IPv6');
  });
});

describe('StaticStrategy', () => {
  let strategies: StaticStrategy[] = [];
  afterEach(() => {
    for (const s of strategies) s.stop();
    strategies = [];
  });

  it('hands the whole list to the core at start and again every interval', async () => {
    const strategy = new StaticStrategy({
      hosts: ['127.0.0.2', 'b@127.0.0.3:46000'],
      clusterPort: PORT,
      pollingIntervalMs: 40,
    });
    strategies.push(strategy);
    const ctx = new FakeStrategyContext();

    strategy.start(ctx);
    expect(ctx.connects).toHaveLength(1); // synchronously at start

    await ctx.waitFor((c) => c.connects.length >= 3, 2000, 'two re-announcements');
    const expected = [
      { host: '127.0.0.2', port: PORT },
      { host: '127.0.0.3', port: 46000, name: 'b@127.0.0.3' },
    ];
    for (const set of ctx.connects) expect(set).toEqual(expected);
    expect(ctx.errors).toEqual([]);
  });

  it('stop() ends the re-announcements', async () => {
    const strategy = new StaticStrategy({
      hosts: ['127.0.0.2'],
      clusterPort: PORT,
      pollingIntervalMs: 30,
    });
    strategies.push(strategy);
    const ctx = new FakeStrategyContext();
    strategy.start(ctx);
    await ctx.waitFor((c) => c.connects.length >= 2, 2000, 'a re-announcement');
    strategy.stop();
    const count = ctx.connects.length;
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(ctx.connects.length).toBe(count);
  });

  it('rejects a bad list at construction', () => {
    expect(() => new StaticStrategy({ hosts: ['10.0.0.1:x'], clusterPort: PORT })).toThrow(
      InvalidHostListError,
    );
  });
});
