/**
 * Fair sharing of one model between concurrent streams. Each stream asks for a turn before each unit of model work
 * (a chunk's text prefill, or one frame: an AR step, plus its decode on a single thread) and gives it back right
 * after; turns are granted in the order they were asked for. A stream that finishes its frame and asks again queues
 * behind every stream already waiting, so N busy streams advance one frame each per round (round-robin), and a new
 * request's first frame waits for at most one frame of each stream ahead of it, never for whole requests.
 *
 * Each stream owns its state (see `services.ts`), so the interleaving never changes a stream's audio.
 *
 * @module
 */

import { PocketTtsError } from "../errors.ts";

/**
 * A FIFO semaphore handing out model turns.
 *
 * @example
 * ```ts
 * const scheduler = new RoundRobinScheduler(1);
 * const release = await scheduler.turn();
 * try {
 *   // one frame of model work
 * } finally {
 *   release();
 * }
 * ```
 */
export class RoundRobinScheduler {
  #slots: number;
  #running = 0;
  #waiting: (() => void)[] = [];

  /**
   * @param slots turns held at once: 1 on a single thread; 2 with workers, so the FlowLM worker always has the
   *   next stream's step queued while it answers the current one.
   */
  constructor(slots = 1) {
    if (!(Number.isInteger(slots) && slots >= 1)) throw new RangeError(`slots must be a positive integer`);
    this.#slots = slots;
  }

  /** Streams waiting for a turn. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Waits for a turn and returns the function that ends it (calling it again does nothing). Rejects with the
   * signal's reason when `signal` aborts while waiting: the stream leaves the line at once.
   */
  turn(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason ?? abortedError());
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.#waiting.indexOf(waiter);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(signal!.reason ?? abortedError());
      };
      const waiter = () => {
        signal?.removeEventListener("abort", onAbort);
        this.#running++;
        let done = false;
        resolve(() => {
          if (done) return;
          done = true;
          this.#running--;
          this.#next();
        });
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(waiter);
      this.#next();
    });
  }

  #next(): void {
    while (this.#running < this.#slots && this.#waiting.length) this.#waiting.shift()!();
  }
}

function abortedError(): PocketTtsError {
  return new PocketTtsError("aborted", "generation was aborted");
}
