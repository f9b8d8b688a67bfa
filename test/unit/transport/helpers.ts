import { Logger } from '@nestjs/common';
import { afterEach, vi } from 'vitest';
import type { NodeIdentity } from '../../../lib/interfaces/member.interface.js';
import type { Link, LinkCloseReason } from '../../../lib/transport/link.js';
import { Transport, type TransportOptions } from '../../../lib/transport/transport.js';
import { testIdentity } from '../../support/raw-peer.js';

export const COOKIE = 'test-cookie-0123456789';
export const LOCALHOST = '127.0.0.1';
/** Frame types the test transports accept. */
export const ACCEPTED = new Set([16, 32, 33]);

/** Rejects with `message` when `promise` does not settle within `ms`. */
export function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} (waited ${ms} ms)`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `condition` every 10 ms until it holds, failing with `message` after `ms`. */
export async function until(condition: () => boolean, ms: number, message: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${message} (waited ${ms} ms)`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The next 'close' reason of a link. */
export function closeOf(link: Link): Promise<LinkCloseReason> {
  return new Promise((resolve) => link.once('close', resolve));
}

/** The next inbound link of a transport. */
export function nextLink(transport: Transport): Promise<Link> {
  return new Promise((resolve) => transport.once('link', resolve));
}

/** A started transport on 127.0.0.1 with an ephemeral port and its identity. */
export async function startTransport(
  name: string,
  options: Partial<TransportOptions> = {},
): Promise<{ transport: Transport; port: number; identity: () => NodeIdentity }> {
  let self = testIdentity(name);
  const identity = (): NodeIdentity => self;
  const transport = new Transport({
    identity,
    cookie: COOKIE,
    bindAddress: LOCALHOST,
    port: 0,
    acceptedTypes: ACCEPTED,
    ...options,
  });
  const { port } = await transport.listen();
  self = { ...self, endpoint: `${LOCALHOST}:${port}` };
  return { transport, port, identity };
}

/** Captures log lines of Nest loggers (every level) for the duration of a test. */
export function captureLogs(): { lines: () => string[]; restore: () => void } {
  const lines: string[] = [];
  const spies = (['log', 'warn', 'error', 'debug', 'verbose'] as const).map((level) =>
    vi.spyOn(Logger.prototype, level).mockImplementation((message: unknown) => {
      lines.push(`${level}: ${String(message)}`);
    }),
  );
  return { lines: () => [...lines], restore: () => spies.forEach((spy) => spy.mockRestore()) };
}

/**
 * Registers an `afterEach` that runs the file's cleanup steps (last first) and returns them
 * with `started()`, which starts a transport that is closed after the test.
 */
export function useTransportCleanup(): {
  cleanup: Array<() => unknown>;
  started: (
    name: string,
    options?: Parameters<typeof startTransport>[1],
  ) => ReturnType<typeof startTransport>;
} {
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });
  const started = async (name: string, options: Parameters<typeof startTransport>[1] = {}) => {
    const node = await startTransport(name, options);
    cleanup.push(() => node.transport.close());
    return node;
  };
  return { cleanup, started };
}
