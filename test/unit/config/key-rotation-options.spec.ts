import { describe, expect, it } from 'vitest';
import { resolveClusterOptions } from '../../../lib/config/resolve-options.js';
import { problemsOf, resolveFromEnv } from '../../support/config-env.js';
import { GossipOptionsError } from '../../../lib/errors/gossip-options.error.js';
import { GossipStrategy } from '../../../lib/strategies/gossip.strategy.js';

const resolveEnv = (vars: Record<string, string>) => resolveFromEnv(vars);

describe('retired cookies and gossip secrets (rotation)', () => {
  it('reads NODE_COOKIE_PREVIOUS and LIBCLUSTER_GOSSIP_SECRET_PREVIOUS as trimmed lists', () => {
    const o = resolveEnv({
      NODE_COOKIE: 'cookie-c',
      NODE_COOKIE_PREVIOUS: ' cookie-b , cookie-a',
      LIBCLUSTER_GOSSIP_SECRET: 'g2',
      LIBCLUSTER_GOSSIP_SECRET_PREVIOUS: 'g1',
    });
    expect(o.previousCookies).toEqual(['cookie-b', 'cookie-a']);
    expect(o.topologies[0].config).toMatchObject({ secret: 'g2', previousSecrets: ['g1'] });
  });

  it('defaults to no retired cookies', () => {
    expect(resolveEnv({ NODE_COOKIE: 'c' }).previousCookies).toEqual([]);
  });

  it('rejects an empty entry, naming the variable and never showing the secrets', () => {
    const problems = problemsOf(() =>
      resolveEnv({
        NODE_COOKIE: 'c',
        NODE_COOKIE_PREVIOUS: 'hunter2,,hunter3',
        LIBCLUSTER_GOSSIP_SECRET_PREVIOUS: 'topsecret,',
      }),
    );
    expect(problems).toEqual([
      expect.stringMatching(
        /^NODE_COOKIE_PREVIOUS: entry 2 of 3 is empty \(accepted: comma-separated/,
      ),
      expect.stringMatching(/^LIBCLUSTER_GOSSIP_SECRET_PREVIOUS: entry 2 of 2 is empty/),
    ]);
    for (const p of problems) expect(p).not.toMatch(/hunter|topsecret/);
  });

  it('names option paths when set in code, and rejects non-lists', () => {
    const problems = problemsOf(() =>
      resolveClusterOptions(
        {
          cookie: 'c',
          previousCookies: 'a,b' as unknown as string[],
          strategy: 'gossip',
          strategyConfig: { previousSecrets: [''] },
        },
        { env: { HOSTNAME: 'box1' }, interfaces: () => ({}) },
      ),
    );
    expect(problems).toEqual([
      'previousCookies: must be a list of strings (comma-separated in the environment)',
      expect.stringMatching(/^strategyConfig\.previousSecrets: entry 1 of 1 is empty/),
    ]);
  });

  it('the gossip strategy validates its own lists too (used without the module)', () => {
    expect(() => new GossipStrategy({ secret: 's', previousSecrets: ['ok', ' '] })).toThrow(
      GossipOptionsError,
    );
    expect(() => new GossipStrategy({ cookie: 'c', previousCookies: [''] })).toThrow(
      /previousCookies \(NODE_COOKIE_PREVIOUS\): entry 1 of 1 is empty/,
    );
  });
});
