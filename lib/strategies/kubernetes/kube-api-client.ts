import { readFile } from 'node:fs/promises';
import { Agent, request, type RequestOptions } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { KubernetesDiscoveryError } from '../../errors/kubernetes-discovery.error.js';

/** Where a pod's service account credentials are mounted. */
export const DEFAULT_SERVICE_ACCOUNT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';

/** Options of {@link KubeApiClient}. */
export interface KubeApiClientOptions {
  host: string;
  port: number;
  /** Directory with `token`, `ca.crt`, `namespace`. */
  serviceAccountPath: string;
  /** Deadline of a list request, ms. */
  requestTimeoutMs: number;
  /** Largest list answer accepted, bytes. */
  maxResponseBytes: number;
  /** Largest single watch event accepted, bytes. */
  maxEventBytes: number;
}

/** A non-2xx answer: status and the API's `Status` object (if it sent one). */
export interface KubeApiAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** One watch event, as the API server streams it (one JSON object per line). */
export interface KubeWatchEvent {
  readonly type: string;
  readonly object: Record<string, unknown>;
}

/**
 * The few calls the Kubernetes strategy makes, over plain `https` with the pod's service
 * account: `Authorization: Bearer <token>` and the cluster CA (`ca.crt`) verified. The token
 * and the CA are read from their files again for every request — bound service-account
 * tokens are rotated by the kubelet (every hour or so), so a cached token would expire; one
 * small file read per request is the whole price (a watch makes one request per several
 * minutes).
 */
export class KubeApiClient {
  private agent: Agent | undefined;
  private agentCa: string | undefined;
  private readonly live = new Set<{ destroy(): void }>();

  constructor(private readonly options: KubeApiClientOptions) {}

  /** Path of one service-account file. */
  file(name: 'token' | 'ca.crt' | 'namespace'): string {
    return join(this.options.serviceAccountPath, name);
  }

  /** Reads the namespace the pod runs in from the service account. */
  async namespace(): Promise<string> {
    const path = this.file('namespace');
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new KubernetesDiscoveryError(
        `cannot read the namespace file ${path} (${codeOf(err)})`,
        'namespace',
        'set LIBCLUSTER_KUBERNETES_NAMESPACE, or mount the service account (automountServiceAccountToken) / set LIBCLUSTER_KUBERNETES_SERVICE_ACCOUNT_PATH',
        { cause: err },
      );
    }
    const ns = text.trim();
    if (ns === '') {
      throw new KubernetesDiscoveryError(
        `the namespace file ${path} is empty`,
        'namespace',
        'set LIBCLUSTER_KUBERNETES_NAMESPACE',
      );
    }
    return ns;
  }

  /** GET `path`; resolves with 2xx bodies parsed, and with non-2xx answers as {@link KubeApiAnswer}. */
  async get(path: string, signal?: AbortSignal): Promise<KubeApiAnswer> {
    const res = await this.open(path, signal, this.options.requestTimeoutMs);
    const text = await readBody(res, this.options.maxResponseBytes, path);
    return { status: res.statusCode ?? 0, body: parseJson(text) };
  }

  /**
   * Opens a watch (`path` has `watch=1`) and calls `onEvent` for every event line. Resolves
   * when the server ends the stream; rejects on a non-2xx answer (with `answer`), a line
   * that is not a JSON event, an event larger than `maxEventBytes`, or no bytes for
   * `idleTimeoutMs` (a stalled stream).
   */
  async watch(
    path: string,
    onEvent: (event: KubeWatchEvent) => void,
    idleTimeoutMs: number,
    signal: AbortSignal,
  ): Promise<void> {
    const res = await this.open(path, signal, idleTimeoutMs);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      const text = await readBody(res, this.options.maxResponseBytes, path);
      throw Object.assign(new Error(`watch answered ${status}`), {
        answer: { status, body: parseJson(text) },
      });
    }
    await new Promise<void>((resolve, reject) => {
      let buffered = '';
      let done = false;
      let idle: NodeJS.Timeout | undefined;
      const finish = (error?: Error): void => {
        if (done) return;
        done = true;
        clearTimeout(idle);
        signal.removeEventListener('abort', onAbort);
        if (error) {
          res.destroy();
          reject(error);
        } else resolve();
      };
      const armIdle = (): void => {
        clearTimeout(idle);
        idle = setTimeout(
          () =>
            finish(watchError(`the watch stream sent nothing for ${idleTimeoutMs} ms (stalled)`)),
          idleTimeoutMs,
        );
        idle.unref();
      };
      const onAbort = (): void => finish(watchError('stopped'));
      signal.addEventListener('abort', onAbort);
      armIdle();
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (done) return;
        armIdle();
        buffered += chunk;
        let nl: number;
        while (!done && (nl = buffered.indexOf('\n')) !== -1) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line === '') continue;
          const event = parseEvent(line);
          if (!event) {
            finish(
              watchError(
                `the watch stream sent a line that is not a watch event: ${JSON.stringify(line.slice(0, 80))}`,
              ),
            );
            return;
          }
          try {
            onEvent(event);
          } catch (err) {
            finish(err as Error);
            return;
          }
        }
        if (!done && buffered.length > this.options.maxEventBytes) {
          finish(watchError(`a watch event is larger than ${this.options.maxEventBytes} bytes`));
        }
      });
      res.on('end', () => {
        if (!done && buffered.trim() !== '') {
          finish(
            watchError(
              `the watch stream ended inside an event: ${JSON.stringify(buffered.slice(0, 80))}`,
            ),
          );
        } else finish();
      });
      res.on('error', (err) => finish(err));
      res.on('close', () => finish());
    });
  }

  /** Closes every open request and the keep-alive agent. */
  close(): void {
    for (const r of this.live) r.destroy();
    this.live.clear();
    this.agent?.destroy();
    this.agent = undefined;
    this.agentCa = undefined;
  }

  private async open(
    path: string,
    signal: AbortSignal | undefined,
    timeoutMs: number,
  ): Promise<IncomingMessage> {
    const token = await this.token();
    const agent = await this.agentFor();
    const options: RequestOptions = {
      host: this.options.host,
      port: this.options.port,
      path,
      method: 'GET',
      agent,
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
        'user-agent': 'nestjs-cluster',
      },
      signal,
    };
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(options, (res) => {
        clearTimeout(timer);
        this.live.delete(req);
        resolve(res);
        res.once('close', () => this.live.delete(res));
        this.live.add(res);
      });
      this.live.add(req);
      const timer = setTimeout(() => {
        req.destroy(
          Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }),
        );
      }, timeoutMs);
      timer.unref();
      req.once('error', (err) => {
        clearTimeout(timer);
        this.live.delete(req);
        reject(err);
      });
      req.end();
    });
  }

  private async token(): Promise<string> {
    const path = this.file('token');
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new KubernetesDiscoveryError(
        `cannot read the service-account token ${path} (${codeOf(err)})`,
        'token',
        'mount the service account token (automountServiceAccountToken: true) or set LIBCLUSTER_KUBERNETES_SERVICE_ACCOUNT_PATH to the directory that holds it',
        { cause: err },
      );
    }
    const token = text.trim();
    if (token === '') {
      throw new KubernetesDiscoveryError(
        `the service-account token ${path} is empty`,
        'token',
        'check the token volume of the pod',
      );
    }
    return token;
  }

  /** An agent trusting the current `ca.crt`; a new one when the file's content changes. */
  private async agentFor(): Promise<Agent> {
    const path = this.file('ca.crt');
    let ca: string;
    try {
      ca = await readFile(path, 'utf8');
    } catch (err) {
      throw new KubernetesDiscoveryError(
        `cannot read the cluster CA ${path} (${codeOf(err)})`,
        'ca',
        'mount the service account (it holds ca.crt) or set LIBCLUSTER_KUBERNETES_SERVICE_ACCOUNT_PATH',
        { cause: err },
      );
    }
    if (!this.agent || ca !== this.agentCa) {
      this.agent?.destroy();
      this.agent = new Agent({ ca, keepAlive: true, maxSockets: 4 });
      this.agentCa = ca;
    }
    return this.agent;
  }
}

function watchError(message: string): Error {
  return Object.assign(new Error(message), { code: 'EWATCH' });
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function parseEvent(line: string): KubeWatchEvent | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  const v = value as { type?: unknown; object?: unknown } | null;
  if (!v || typeof v.type !== 'string' || typeof v.object !== 'object' || v.object === null)
    return undefined;
  return { type: v.type, object: v.object as Record<string, unknown> };
}

function readBody(res: IncomingMessage, maxBytes: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        res.destroy();
        reject(
          new KubernetesDiscoveryError(
            `the answer to GET ${path} is larger than ${maxBytes} bytes`,
            'invalid',
            'narrow LIBCLUSTER_KUBERNETES_SELECTOR to the app’s own pods',
          ),
        );
        return;
      }
      chunks.push(chunk);
    });
    let ended = false;
    res.on('end', () => {
      ended = true;
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    res.on('error', reject);
    res.on('close', () => {
      if (!ended)
        reject(
          Object.assign(new Error(`the connection closed during GET ${path}`), {
            code: 'ECONNRESET',
          }),
        );
    });
  });
}
