import type { ClusterError } from '../errors/cluster.error.js';
import type { Endpoint } from '../identity/endpoint.js';
import { formatEndpoint } from '../identity/endpoint.js';
import type { NodeIdentity } from '../interfaces/member.interface.js';
import type { Clock } from '../runtime/clock.js';
import type { PendingHandshakeLimits } from './pending-handshakes.js';

/**
 * The byte-stream seam of the link layer: the part of `net.Socket` that handshakes and links
 * use. `TcpNetwork` hands out real sockets; `MemoryNetwork` hands out in-memory wires on a
 * virtual clock, so the simulator and unit tests run the real link code.
 */
export interface Wire {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly destroyed: boolean;
  readonly writable: boolean;
  /** Bytes queued and not yet handed to the network. */
  readonly writableLength: number;
  readonly connecting: boolean;
  write(chunk: Buffer): boolean;
  cork(): void;
  uncork(): void;
  end(): unknown;
  destroy(): unknown;
  pause(): unknown;
  resume(): unknown;
  setNoDelay(noDelay?: boolean): unknown;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'close' | 'connect' | 'end', listener: () => void): unknown;
  once(event: 'data', listener: (chunk: Buffer) => void): unknown;
  once(event: 'error', listener: (error: Error) => void): unknown;
  once(event: 'close' | 'connect' | 'end', listener: () => void): unknown;
  off(event: 'data', listener: (chunk: Buffer) => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'close' | 'connect' | 'end', listener: () => void): unknown;
}

/** A listening socket of a `Network`. */
export interface NetworkServer {
  /** The bound address (the actual port when 0 was asked for). */
  readonly address: Endpoint;
  close(): Promise<void>;
}

/** Where wires come from: TCP in production, memory in the simulator. */
export interface Network {
  /**
   * Listens on `host:port` (0 = any free port) and hands every accepted connection to
   * `onConnection`. Rejects with an error carrying the errno `code` (`EADDRINUSE`, …).
   * `limits` are the transport's caps on connections in handshake: a network with a
   * handshake of its own before it hands a connection over (mutual TLS) applies them to that
   * phase too, so connections it still holds are bounded like the transport's.
   */
  listen(
    host: string,
    port: number,
    onConnection: (wire: Wire) => void,
    limits?: PendingHandshakeLimits,
  ): Promise<NetworkServer>;
  /** Opens a connection; the wire emits `'connect'` or `'error'` (with an errno `code`). */
  connect(host: string, port: number, localAddress?: string): Wire;
  /**
   * Checks a peer once the handshake has proven its name (mutual TLS: the certificate it
   * presented on `wire` must be for that name). Returns the problem, or undefined to go on.
   * Called on both sides, before either admits the link. @default none
   */
  verifyPeer?(wire: Wire, peer: NodeIdentity): string | undefined;
  /**
   * Turns a failed dial into a clearer error (a TLS certificate refusal, naming the peer,
   * the reason and the file to fix), or undefined to keep the error as it is.
   */
  explainFailure?(error: unknown, peerAddress: string): ClusterError | undefined;
}

/** Swallows an `'error'` event: every wire carries one of these for its whole life. */
export function ignore(): void {}

/** `host:port` of the remote end of a wire (`unknown` parts when already closed). */
export function remoteAddressOf(wire: Wire): string {
  return formatEndpoint(wire.remoteAddress ?? 'unknown', wire.remotePort ?? 0);
}

/** Host of the remote end of a wire (the key of per-address log rate limits). */
export function remoteHostOf(wire: Wire): string {
  return wire.remoteAddress ?? 'unknown';
}

/**
 * Ends a wire after its queued writes are flushed, and destroys it if it is not closed within
 * `timeoutMs` (a peer that never reads must not keep it open). Never throws, never leaves an
 * `'error'` unhandled.
 */
export function endWire(wire: Wire, timeoutMs: number, clock: Clock): Promise<void> {
  wire.on('error', ignore);
  return new Promise((resolve) => {
    if (wire.destroyed) {
      resolve();
      return;
    }
    const timer = clock.setTimeout(() => wire.destroy(), timeoutMs);
    wire.once('close', () => {
      clock.clearTimeout(timer);
      resolve();
    });
    wire.end();
    // Read and discard until the peer closes its side too, so 'close' can fire.
    wire.resume();
  });
}
