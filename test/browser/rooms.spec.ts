/**
 * The dashboard's room panel in a real browser (Debian's Chromium through playwright-core):
 * two pages, each served by a different node and talking Socket.IO (the client script the
 * node serves, over WebSocket) to that node only, join the same room through the form and
 * each send a message through the form. The cluster adapter brings every message to both
 * pages, exactly once.
 */
import { randomBytes } from 'node:crypto';
import type { BrowserContext, Page } from 'playwright-core';
import { launchBrowser } from '../support/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePorts,
  type NodeProcess,
  randomCookie,
  startNode,
  staticEnv,
  useNodeCleanup,
} from '../support/node-process.js';

const NAMES = ['room1@127.0.0.1', 'room2@127.0.0.1'];
const UI_TIMEOUT_MS = 10_000;
// Chromium, two nodes and the other test files share the machine's cores: a step can be slow.
const TEST_TIMEOUT_MS = 60_000;

describe('room panel in two browser pages on two nodes', () => {
  useNodeCleanup();
  let nodes: NodeProcess[];
  let context: BrowserContext;
  let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
  /** pages[i] is served by nodes[i]. */
  const pages: Page[] = [];
  const pageErrors: string[] = [];
  const room = `browser-${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    const cookie = randomCookie();
    const linkPorts = await freePorts(NAMES.length);
    nodes = await Promise.all(
      NAMES.map((name, i) => startNode({ name, env: staticEnv(cookie, linkPorts, i) })),
    );
    await Promise.all(nodes.map((node) => node.waitForMembers(NAMES)));

    browser = await launchBrowser('rooms');
    context = browser.context;
    for (const [i, node] of nodes.entries()) {
      const page =
        i === 0 ? (context.pages()[0] ?? (await context.newPage())) : await context.newPage();
      page.on('pageerror', (error) =>
        pageErrors.push(`${node.name} page: pageerror: ${error.message}`),
      );
      page.on('console', (message) => {
        if (message.type() === 'error')
          pageErrors.push(`${node.name} page: console: ${message.text()}`);
      });
      await page.goto(`${node.url}/`);
      pages.push(page);
    }
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
  });

  it(
    'each page joins the room through the form, over a WebSocket to the node that served it',
    async () => {
      for (const [i, page] of pages.entries()) {
        await page.fill('#room-name', room);
        await page.click('#room-join-form button[type="submit"]');
        await page
          .locator(`#room-status[data-joined="${room}"]`)
          .waitFor({ timeout: UI_TIMEOUT_MS });
        expect(await page.textContent('#room-status')).toBe(`in "${room}" on ${NAMES[i]}`);
        expect(await page.isEnabled('#room-send-form button[type="submit"]')).toBe(true);
        // The real Socket.IO client the node serves, on a WebSocket from the start (no polling).
        expect(
          await page.evaluate('room.socket.connected && room.socket.io.engine.transport.name'),
        ).toBe('websocket');
      }
      // The room spans both nodes: fetchSockets from either one finds one socket per node (once
      // the two socket.io adapters have greeted each other, which follows the cluster join).
      for (const node of nodes) {
        await expect
          .poll(
            async () =>
              (await node.json<{ sockets: { node: string }[] }>(`/rooms/${room}/sockets`)).sockets
                .map((s) => s.node)
                .sort(),
            { timeout: UI_TIMEOUT_MS, message: `${node.name}: GET /rooms/${room}/sockets` },
          )
          .toEqual([...NAMES].sort());
      }
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "each page sees the other page's message, and its own, exactly once",
    async () => {
      const texts = NAMES.map((name) => `hello from the page on ${name}`);
      for (const [i, page] of pages.entries()) {
        await page.fill('#room-text', texts[i]);
        await page.click('#room-send-form button[type="submit"]');
        await expect
          .poll(() => page.textContent('#room-result'), { timeout: UI_TIMEOUT_MS })
          .toBe(`sent to "${room}" on every node`);
      }
      // Every message sent after them reaching both pages means any duplicate would be there too:
      // a last message from each node, then count.
      const lastTexts = NAMES.map((name) => `last from ${name}`);
      for (const [i, node] of nodes.entries()) {
        const sent = await node.http('POST', `/rooms/${room}/messages`, { text: lastTexts[i] });
        expect(sent.status).toBe(201);
      }
      for (const page of pages) {
        for (const [i, text] of lastTexts.entries())
          await messageItem(page, NAMES[i], text).waitFor({ timeout: UI_TIMEOUT_MS });
      }

      for (const [p, page] of pages.entries()) {
        for (const [i, text] of texts.entries()) {
          expect(
            await messageItem(page, NAMES[i], text).count(),
            `page on ${NAMES[p]}: "${text}" (sent from the page on ${NAMES[i]})`,
          ).toBe(1);
        }
        // Nothing else arrived: the four messages of this room, and no other room's.
        expect(await page.locator('#room-messages li[data-room]').count()).toBe(4);
        expect(await page.locator(`#room-messages li[data-room="${room}"]`).count()).toBe(4);
      }
    },
    TEST_TIMEOUT_MS,
  );

  it('ran without script errors or blocked resources', () => {
    expect(pageErrors).toEqual([]);
  });
});

/** The `#room-messages` item of `room-message` `{text, from}` (exact text). */
function messageItem(page: Page, from: string, text: string) {
  return page
    .locator(`#room-messages li[data-from="${from}"]`)
    .filter({ has: page.locator('span.text', { hasText: new RegExp(`^${escape(text)}$`) }) });
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
