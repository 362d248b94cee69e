/**
 * An unbounded single-consumer queue with `for await` iteration, used to hand decoded frames from the producing
 * loop to the consumer of a stream.
 *
 * @module
 */

/** Items pushed by one side, iterated in order by the other; `close` ends the iteration, `fail` throws in it. */
export class AsyncQueue<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #waiting: ((r: IteratorResult<T>) => void) | null = null;
  #failWaiting: ((e: unknown) => void) | null = null;
  #closed = false;
  #error: { e: unknown } | null = null;
  #demand: { max: number; resolve: () => void }[] = [];

  /**
   * Resolves once at most `maxBuffered` items wait unconsumed; with 0, once the consumer is actually waiting for
   * the next item. A producer awaits this before making the next item, so it never runs further ahead than that.
   */
  waitForDemand(maxBuffered: number): Promise<void> {
    if (this.#hasDemand(maxBuffered)) return Promise.resolve();
    return new Promise((resolve) => this.#demand.push({ max: maxBuffered, resolve }));
  }

  #hasDemand(max: number): boolean {
    return this.#closed || (max > 0 ? this.#items.length <= max : this.#items.length === 0 && this.#waiting !== null);
  }

  #signalDemand(): void {
    this.#demand = this.#demand.filter((d) => this.#hasDemand(d.max) ? (d.resolve(), false) : true);
  }

  /** Adds an item (ignored after close). */
  push(item: T): void {
    if (this.#closed) return;
    if (this.#waiting) {
      const w = this.#waiting;
      this.#waiting = this.#failWaiting = null;
      w({ value: item, done: false });
    } else this.#items.push(item);
  }

  /** Ends the iteration once the queued items are consumed. */
  close(): void {
    this.#closed = true;
    this.#signalDemand();
    if (this.#waiting && this.#items.length === 0) {
      const w = this.#waiting;
      this.#waiting = this.#failWaiting = null;
      w({ value: undefined, done: true });
    }
  }

  /** Makes the iteration throw `e` once the queued items are consumed. */
  fail(e: unknown): void {
    this.#error = { e };
    this.#closed = true;
    this.#signalDemand();
    if (this.#failWaiting && this.#items.length === 0) {
      const f = this.#failWaiting;
      this.#waiting = this.#failWaiting = null;
      f(e);
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    while (true) {
      if (this.#items.length) {
        const item = this.#items.shift()!;
        this.#signalDemand();
        yield item;
        continue;
      }
      if (this.#error) throw this.#error.e;
      if (this.#closed) return;
      const r = await new Promise<IteratorResult<T>>((resolve, reject) => {
        this.#waiting = resolve;
        this.#failWaiting = reject;
        this.#signalDemand();
      });
      if (r.done) return;
      yield r.value;
    }
  }
}
