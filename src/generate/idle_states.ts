/**
 * Stream states kept for the next stream after theirs closes. A model part's stream state is large (a FlowLM state
 * holds every layer's KV cache for the voice, the chunk and its `max_gen_len`; ~10 MB at full size) and wasm memory
 * never shrinks, so a freed state only returns its blocks to the core's allocator. Anything allocated meanwhile (a
 * voice loaded or cloned, the encoder loaded on the first clone) may take those blocks; the next request's state then
 * comes from freshly grown memory, whose first touch costs thousands of page faults on its way to the first frame
 * (measured: +20–35 ms of a ~45 ms first audio after a clone). Kept here, the state is reused as it is: a request
 * after a clone allocates nothing.
 *
 * @module
 */

/** A per-stream state of a model part. */
export interface StreamState {
  /** Forgets the stream's contents (keeps the buffers). */
  reset(): void;
  /** Frees the buffers. */
  free(): void;
}

/**
 * Closed streams' states, reset and ready for the next stream (at most `max`; beyond it they are freed, so a burst of
 * concurrent streams does not keep its memory from the allocator).
 *
 * @example
 * ```ts
 * const idle = new IdleStates<FlowLMState>(2);
 * const state = idle.take(() => flow.createState()); // a kept one, else a new one
 * idle.give(state); // the stream closed: reset and kept (or freed)
 * ```
 */
export class IdleStates<S extends StreamState> {
  #idle: S[] = [];
  #max: number;

  /** Keeps at most `max` states. */
  constructor(max: number) {
    this.#max = max;
  }

  /** A kept state (reset when it was given back), else `create()`. */
  take(create: () => S): S {
    return this.#idle.pop() ?? create();
  }

  /** Takes back the state of a closed stream: reset and kept while there is room, else freed. */
  give(state: S): void {
    if (this.#idle.length < this.#max) {
      state.reset();
      this.#idle.push(state);
    } else state.free();
  }

  /** States kept now. */
  get size(): number {
    return this.#idle.length;
  }

  /** Frees every kept state. */
  free(): void {
    for (const s of this.#idle) s.free();
    this.#idle = [];
  }
}
