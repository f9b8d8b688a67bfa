/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core): three nodes,
 * a crash and a message, all seen live on node 1's page without a reload.
 *
 * UPDATE_SCREENSHOT=1 also writes docs/dashboard.png (the 3-member dashboard).
 */
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { launchBrowser } from '../support/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePorts,
  type NodeProcess,
  randomCookie,
  ROOT,
  startNode,
  staticEnv,
  useNodeCleanup,
  type PublishAnswer,
  type ReceivedMessageView,
} from '../support/node-process.js';

const NAMES = ['web1@127.0.0.1', 'web2@127.0.0.1', 'web3@127.0.0.1'];
const UI_TIMEOUT_MS = 10_000;

describe('dashboard', () => {
  useNodeCleanup();
  let nodes: NodeProcess[];
  let context: BrowserContext;
  let page: Page;
  let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    const cookie = randomCookie();
    const linkPorts = await freePorts(NAMES.length);
    nodes = await Promise.all(
      NAMES.map((name, i) => startNode({ name, env: staticEnv(cookie, linkPorts, i) })),
    );
    await Promise.all(nodes.map((node) => node.waitForMembers(NAMES)));

    browser = await launchBrowser('dashboard');
    context = browser.context;
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => pageErrors.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(`console: ${message.text()}`);
    });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
  });

  it('shows the three members of the cluster, this node and the leader', async () => {
    const [node1] = nodes;
    await page.goto(`${node1.url}/`);
    // Marker to prove later steps happen without a reload.
    await page.evaluate('window.loadedOnce = true');

    await waitForText(page, '#member-count', '3');
    await expect.poll(() => page.textContent('#node-name')).toBe('web1@127.0.0.1');
    for (const name of NAMES) {
      const row = page.locator(`tr[data-member="${name}"]`);
      await row.waitFor({ timeout: UI_TIMEOUT_MS });
      expect(await row.getAttribute('data-state')).toBe('up');
      expect(await row.textContent()).toContain('127.0.0.1:');
    }
    expect(await page.textContent('tr[data-member="web1@127.0.0.1"] td.self')).toBe('this node');

    const leader = (await node1.cluster()).leader;
    expect(await page.textContent('#leader-name')).toBe(leader);
    expect(await page.getAttribute(`tr[data-member="${leader}"]`, 'data-leader')).toBe('true');
    expect(await page.locator('tr[data-leader="true"]').count()).toBe(1);
    expect(await page.isVisible('#leader-mark')).toBe(leader === 'web1@127.0.0.1');

    // Only the leader runs the digest job; every dashboard lists the runs by node.
    await page.locator('#job-runs li[data-node]').first().waitFor({ timeout: UI_TIMEOUT_MS });
    const runs = await page.locator('#job-runs li[data-node]').all();
    const runners = new Set(await Promise.all(runs.map((run) => run.getAttribute('data-node'))));
    expect([...runners]).toEqual([leader]);

    if (process.env.UPDATE_SCREENSHOT === '1') {
      await nodes[1].http('PUT', '/flags/new_ui', { enabled: true });
      await nodes[2].http('POST', '/messages', {
        topic: 'greetings',
        payload: { text: 'hello from web3' },
      });
      await page
        .locator('#messages li[data-topic="greetings"]')
        .waitFor({ timeout: UI_TIMEOUT_MS });
      await page.locator('#flags tr[data-flag="new_ui"]').waitFor({ timeout: UI_TIMEOUT_MS });
      await page.locator('#job-runs li[data-node]').nth(2).waitFor({ timeout: UI_TIMEOUT_MS });
      await page.screenshot({ path: join(ROOT, 'docs/dashboard.png'), fullPage: true });
    }
  });

  it('marks a killed node down without a reload', async () => {
    const victim = nodes[2];
    victim.kill('SIGKILL');
    await victim.exited;

    const row = `tr[data-member="${victim.name}"]`;
    // The row stays, struck out, for a while before it is removed.
    await page.locator(`${row}[data-state="down"]`).waitFor({ timeout: UI_TIMEOUT_MS });
    expect(await page.textContent(`${row} td.state`)).toMatch(/^down \(/);
    await waitForText(page, '#member-count', '2');
    await page.locator(`#events li[data-event-type="down"][data-member="${victim.name}"]`).waitFor({
      timeout: UI_TIMEOUT_MS,
    });
    for (const name of NAMES.slice(0, 2)) {
      expect(await page.getAttribute(`tr[data-member="${name}"]`, 'data-state')).toBe('up');
    }
    expect(await page.evaluate('window.loadedOnce'), 'the page was not reloaded').toBe(true);
  });

  it("shows a message published through another node's API", async () => {
    const published = await nodes[1].http<PublishAnswer>('POST', '/messages', {
      topic: 'greetings',
      payload: { text: 'hello from web2' },
    });
    expect(published.status).toBe(201);
    expect(published.body.delivered).toEqual(
      expect.arrayContaining(['web1@127.0.0.1', 'web2@127.0.0.1']),
    );

    const item = page.locator('#messages li[data-topic="greetings"][data-from="web2@127.0.0.1"]');
    await item.waitFor({ timeout: UI_TIMEOUT_MS });
    expect(await item.textContent()).toContain('{"text":"hello from web2"}');
    expect(await page.evaluate('window.loadedOnce'), 'the page was not reloaded').toBe(true);
  });

  it('publishes from its own form to every node', async () => {
    await page.fill('#publish-topic', 'from-the-page');
    await page.fill('#publish-payload', 'plain text, not JSON');
    await page.click('#publish-form button[type="submit"]');

    await expect
      .poll(() => page.textContent('#publish-result'), { timeout: UI_TIMEOUT_MS })
      .toMatch(/^delivered to .*web2@127\.0\.0\.1/);
    await page
      .locator('#messages li[data-topic="from-the-page"]')
      .waitFor({ timeout: UI_TIMEOUT_MS });
    await expect
      .poll(
        async () =>
          (await nodes[1].json<ReceivedMessageView[]>('/messages?topic=from-the-page')).map(
            (m) => m.payload,
          ),
        {
          timeout: UI_TIMEOUT_MS,
        },
      )
      .toEqual(['plain text, not JSON']);
  });

  it('ran without script errors or blocked resources', () => {
    expect(pageErrors).toEqual([]);
  });
});

async function waitForText(page: Page, selector: string, text: string): Promise<void> {
  const exact = new RegExp(`^\\s*${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`);
  try {
    await page.locator(selector).filter({ hasText: exact }).waitFor({ timeout: UI_TIMEOUT_MS });
  } catch (error) {
    const actual = await page.textContent(selector).catch(() => null);
    throw new Error(
      `${selector} did not show "${text}" within ${UI_TIMEOUT_MS} ms (it shows "${actual}")`,
      {
        cause: error,
      },
    );
  }
}
