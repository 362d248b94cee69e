/**
 * Text that arrives over time (`streamText`): reads deltas from an `AsyncIterable<string>` or a
 * `ReadableStream<string>` only when the generator asks for its next chunk (so a fast producer is held back by its
 * own stream, and a slow one only makes the generator wait), turns them into speech items with the
 * {@link StreamChunker}, and cancels the source when the request stops.
 *
 * @module
 */

import { InvalidTextError, PocketTtsError } from "../errors.ts";
import type { TextChunk } from "../text/chunking.ts";
import type { SpeechItem } from "../text/speech_plan.ts";
import type { StreamChunker } from "../text/stream_chunker.ts";

/** A speech item, or a chunk the text may be about to close (see {@link StreamChunker.speculate}). */
export type StreamedItem = SpeechItem | { type: "speculate"; chunk: TextChunk };

/** Text deltas: any split of the text into strings (characters, words, half-words). */
export type TextDeltas = AsyncIterable<string> | ReadableStream<string>;

/** A pull function over either kind of source, and how to cancel it. */
function openSource(input: TextDeltas): { next(): Promise<IteratorResult<string>>; cancel(reason: unknown): void } {
  if (typeof (input as ReadableStream<string>).getReader === "function") {
    const reader = (input as ReadableStream<string>).getReader();
    return {
      next: () => reader.read() as Promise<IteratorResult<string>>,
      cancel: (reason) => void reader.cancel(reason).catch(() => {}),
    };
  }
  if (input && typeof (input as AsyncIterable<string>)[Symbol.asyncIterator] === "function") {
    const iterator = (input as AsyncIterable<string>)[Symbol.asyncIterator]();
    return {
      next: () => iterator.next(),
      cancel: () => void Promise.resolve(iterator.return?.()).catch(() => {}),
    };
  }
  throw new InvalidTextError("streamText needs an AsyncIterable<string> or a ReadableStream<string>");
}

/**
 * Rejects as soon as `signal` aborts, so a read that never ends (a silent producer) cannot hold the request.
 *
 * @example
 * ```ts
 * const next = await untilAborted(reader.read(), controller.signal);
 * ```
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * The speech items of streamed text, produced on demand. While it would wait for the producer with a sentence
 * end just read, it first offers the chunk that sentence would close as a `speculate` item. When `signal` aborts, the pending read is abandoned and the
 * source cancelled (a `ReadableStream` is cancelled, an async iterator's `return()` is called); the same happens
 * when the consumer stops iterating.
 *
 * @example
 * ```ts
 * const items = speechItemsFromDeltas(words(), new StreamChunker(tokenizer), controller.signal);
 * for await (const item of items) console.log(item);
 * ```
 *
 * @throws {InvalidTextError} a delta that is not a string, or a stream without text
 */
export async function* speechItemsFromDeltas(
  input: TextDeltas,
  chunker: StreamChunker,
  signal: AbortSignal,
): AsyncGenerator<StreamedItem> {
  const source = openSource(input);
  let finished = false;
  let offered = "";
  try {
    for (;;) {
      const { done, value } = await untilAborted(source.next(), signal);
      if (done) break;
      if (typeof value !== "string") {
        throw new InvalidTextError(`streamText deltas must be strings, got ${value === null ? "null" : typeof value}`);
      }
      const items = chunker.push(value);
      yield* items;
      const guess = chunker.speculate();
      if (guess !== null && guess.text !== offered) {
        offered = guess.text;
        yield { type: "speculate", chunk: guess };
      }
    }
    finished = true;
    yield* chunker.end();
  } finally {
    if (!finished) source.cancel(signal.reason ?? new PocketTtsError("aborted", "the speech stream stopped"));
  }
}
