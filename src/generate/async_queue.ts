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
    if (this.#failWaiting && this.#items.length === 0) {
      const f = this.#failWaiting;
      this.#waiting = this.#failWaiting = null;
      f(e);
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    while (true) {
      if (this.#items.length) {
        yield this.#items.shift()!;
        continue;
      }
      if (this.#error) throw this.#error.e;
      if (this.#closed) return;
      const r = await new Promise<IteratorResult<T>>((resolve, reject) => {
        this.#waiting = resolve;
        this.#failWaiting = reject;
      });
      if (r.done) return;
      yield r.value;
    }
  }
}
