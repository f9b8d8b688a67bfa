/** One Server-Sent Event as received. `data` is parsed as JSON when it is JSON. */
export interface SseEvent<T = unknown> {
  type: string;
  data: T;
  /** Local receive time, epoch ms. */
  receivedAt: number;
}

/**
 * Collects the events of one SSE endpoint (Node 20 has no `EventSource`): connects with
 * `fetch`, parses the stream, keeps every event, and lets a test wait for one.
 */
export class SseCollector {
  readonly events: SseEvent[] = [];
  private readonly abort = new AbortController();
  private readonly waiters = new Set<() => void>();
  private closedReason: string | undefined;
  /** Resolves once the response headers arrived (the subscription is live). */
  readonly connected: Promise<void>;

  constructor(readonly url: string) {
    this.connected = this.run();
    this.connected.catch(() => undefined);
  }

  /** The events of one type, in arrival order. */
  ofType<T = unknown>(type: string): SseEvent<T>[] {
    return this.events.filter((e) => e.type === type) as SseEvent<T>[];
  }

  /**
   * Resolves with the first event (already received or future) that matches; rejects after
   * `timeoutMs` with `description` and the events seen so far.
   */
  waitFor<T = unknown>(
    predicate: (event: SseEvent<T>) => boolean,
    description: string,
    timeoutMs = 10_000,
  ): Promise<SseEvent<T>> {
    const find = () => (this.events as SseEvent<T>[]).find(predicate);
    const found = find();
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const check = () => {
        const event = find();
        if (event) {
          done();
          resolve(event);
        } else if (this.closedReason !== undefined) {
          done();
          reject(
            new Error(
              `${this.url}: stream ended (${this.closedReason}) before ${description}${this.seen()}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.url}: no ${description} within ${timeoutMs} ms${this.seen()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
    });
  }

  close(): void {
    this.abort.abort();
  }

  private seen(): string {
    const last = this.events.slice(-10).map((e) => `${e.type} ${JSON.stringify(e.data)}`);
    return last.length ? `; last events:\n  ${last.join('\n  ')}` : '; no event received';
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  private async run(): Promise<void> {
    let connected = false;
    try {
      const response = await fetch(this.url, {
        headers: { accept: 'text/event-stream' },
        signal: this.abort.signal,
      });
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      connected = true;
      void this.read(response.body);
    } catch (error) {
      this.closedReason = (error as Error).message;
      this.notify();
      if (!connected) throw new Error(`${this.url}: could not connect: ${this.closedReason}`);
    }
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true }).replace(/\r\n?/g, '\n');
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          this.parse(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
      this.closedReason = 'closed by the server';
    } catch (error) {
      this.closedReason = this.abort.signal.aborted
        ? 'closed by the test'
        : (error as Error).message;
    }
    this.notify();
  }

  private parse(block: string): void {
    let type = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') type = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length === 0) return;
    const text = data.join('\n');
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // plain text event
    }
    this.events.push({ type, data: parsed, receivedAt: Date.now() });
    this.notify();
  }
}
