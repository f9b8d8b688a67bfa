/**
 * `host:port` where a node accepts links. The one parser and the one formatter of the
 * project: every endpoint string in logs, frames and maps is `formatEndpoint`'s output, so
 * two endpoints are equal exactly when their strings are.
 */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** `host:port`, with IPv6 hosts in brackets (`[fd00::1]:45893`). */
export function formatEndpoint(endpoint: Endpoint): string;
export function formatEndpoint(host: string, port: number): string;
export function formatEndpoint(hostOrEndpoint: string | Endpoint, port?: number): string {
  const host = typeof hostOrEndpoint === 'string' ? hostOrEndpoint : hostOrEndpoint.host;
  const p = typeof hostOrEndpoint === 'string' ? port! : hostOrEndpoint.port;
  return host.includes(':') ? `[${host}]:${p}` : `${host}:${p}`;
}

const ENDPOINT = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s/@]+)):(\d{1,5})$/;

/**
 * Parses `host:port` or `[v6]:port`; undefined for anything else (a URL, a missing or
 * out-of-range port, an unbracketed IPv6 address).
 */
export function parseEndpoint(value: string): Endpoint | undefined {
  const match = ENDPOINT.exec(value);
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: match[1] ?? match[2] ?? '', port };
}

/** True for `0.0.0.0` and `::`: "whatever address the packet came from". */
export function isUnspecifiedHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}
