/**
 * Collects calls made in one turn of the event loop and runs them as one batch (one statement,
 * one commit). A key already in the batch waits for the next one, so a batch never holds the same
 * event twice. Several batches may be in flight at once, on different pool connections.
 */
export class Batcher<T, R> {
  private queue: { item: T; resolve: (r: R) => void; reject: (e: Error) => void }[] = [];
  private scheduled = false;
  private inFlight = 0;

  constructor(
    private readonly key: (item: T) => string,
    private readonly run: (items: T[]) => Promise<R[]>,
  ) {}

  push(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** True while calls are queued or running. */
  get busy(): boolean {
    return this.queue.length > 0 || this.scheduled || this.inFlight > 0;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const batch: typeof this.queue = [];
    const later: typeof this.queue = [];
    const keys = new Set<string>();
    for (const entry of this.queue) {
      const k = this.key(entry.item);
      if (keys.has(k)) later.push(entry);
      else {
        keys.add(k);
        batch.push(entry);
      }
    }
    this.queue = later;
    if (later.length > 0) this.schedule();
    if (batch.length === 0) return;
    this.inFlight++;
    this.run(batch.map((b) => b.item))
      .then(
        (results) => {
          for (const [i, b] of batch.entries()) b.resolve(results[i] as R);
        },
        (error: unknown) => {
          const e = error instanceof Error ? error : new Error(String(error));
          for (const b of batch) b.reject(e);
        },
      )
      .finally(() => {
        this.inFlight--;
      });
  }
}
