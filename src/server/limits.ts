/**
 * The server's limits, with their defaults, and the two mechanisms that enforce the size and concurrency ones:
 * {@link readBody} (413 beyond a byte budget, checked while reading, whatever `Content-Length` claims) and
 * {@link StreamGate} (a bounded number of streams generating at once, a bounded line of requests waiting for one,
 * 503 + `Retry-After` beyond).
 *
 * @module
 */

import { HttpError } from "./errors.ts";

/** Every limit of the server. Each has a default; see {@link DEFAULT_LIMITS}. */
export interface ServerLimits {
  /** Largest JSON request body, in bytes (413 above). */
  maxJsonBytes: number;
  /** Largest multipart request body (a voice upload and its fields), in bytes (413 above). */
  maxUploadBytes: number;
  /**
   * Longest uploaded (or fetched) voice recording, in seconds, whatever its format: decoding stops just past it, and a
   * longer recording is a 400 `upload_too_long` (the operator's `--voices` recordings are cut there instead).
   */
  maxUploadSeconds: number;
  /** Longest input text, in characters (400 above). */
  maxInputChars: number;
  /** Streams generated at once (interleaved frame by frame on the one model). */
  maxStreams: number;
  /** Requests waiting for a stream slot; beyond it, 503 with `Retry-After`. */
  maxQueue: number;
  /** The `Retry-After` seconds of a 503. */
  retryAfterSeconds: number;
  /**
   * Longest a stream waits for its client to take more audio (a client that stopped reading), in seconds; then the
   * stream is ended with a `client_stalled` error (the connection is dropped) and its slot freed for others.
   */
  maxStallSeconds: number;
  /** Custom voices kept at once (when uploads are enabled). */
  maxCustomVoices: number;
  /** Total bytes of the custom voices' files (when uploads are enabled). */
  maxCustomVoiceBytes: number;
}

/**
 * The defaults: a 64 KiB JSON body, 10 MiB uploads of at most 30 s of audio (the reference truncates prompts to
 * 30 s), 4096 characters of input (OpenAI's limit), 20 streams at once with room for 32 more waiting, 30 s for a
 * stalled client, 16 custom voices in at most 64 MiB.
 *
 * @example
 * ```ts
 * const limits = { ...DEFAULT_LIMITS, maxStreams: 4 };
 * ```
 */
export const DEFAULT_LIMITS: Readonly<ServerLimits> = Object.freeze({
  maxJsonBytes: 64 * 1024,
  maxUploadBytes: 10 * 1024 * 1024,
  maxUploadSeconds: 30,
  maxInputChars: 4096,
  maxStreams: 20,
  maxQueue: 32,
  retryAfterSeconds: 2,
  maxStallSeconds: 30,
  maxCustomVoices: 16,
  maxCustomVoiceBytes: 64 * 1024 * 1024,
});

/** Checks a limits object (a bad operator setting fails at startup, not on the first request). */
export function checkLimits(limits: ServerLimits): ServerLimits {
  for (const [k, v] of Object.entries(limits)) {
    if (!(typeof v === "number" && v >= 0 && Number.isFinite(v))) {
      throw new RangeError(`server limit ${k} must be a non-negative number, got ${v}`);
    }
  }
  if (limits.maxStreams < 1) throw new RangeError("server limit maxStreams must be at least 1");
  if (!(limits.maxStallSeconds > 0)) throw new RangeError("server limit maxStallSeconds must be positive");
  return limits;
}

/**
 * The request body, at most `max` bytes (413 beyond: a declared `Content-Length` is refused before reading, and a
 * body without one is cut off as soon as it passes the budget).
 */
export function readBody(req: Request, max: number): Promise<Uint8Array> {
  return readCapped(req.body, req.headers, max);
}

/** A body (of a request or a fetched response) of at most `max` bytes, else a 413 {@link HttpError}. */
export async function readCapped(
  body: ReadableStream<Uint8Array> | null,
  headers: Headers,
  max: number,
): Promise<Uint8Array> {
  const tooLarge = () =>
    new HttpError(413, "request_too_large", `the request body is larger than the server's limit of ${max} bytes`);
  const declared = Number(headers.get("content-length") ?? NaN);
  if (declared > max) {
    void body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (!body) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  let total = 0;
  const reader = body.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > max) {
        void reader.cancel().catch(() => {});
        throw tooLarge();
      }
      parts.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/**
 * Admission of streams: at most `maxStreams` at once, at most `maxQueue` waiting (first come, first served), 503
 * beyond. A waiting request whose client leaves is taken out of the line.
 *
 * @example
 * ```ts
 * const gate = new StreamGate(DEFAULT_LIMITS);
 * const release = await gate.enter(request.signal); // throws a 503 HttpError when the line is full
 * try {
 *   // stream
 * } finally {
 *   release();
 * }
 * ```
 */
export class StreamGate {
  #limits: ServerLimits;
  #active = 0;
  #waiting: (() => void)[] = [];
  #closed = false;

  /** @param limits `maxStreams`, `maxQueue` and `retryAfterSeconds` are used */
  constructor(limits: ServerLimits) {
    this.#limits = limits;
  }

  /** Streams generating now. */
  get active(): number {
    return this.#active;
  }

  /** Requests waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Refuses every later request (shutdown); those waiting get a 503. */
  close(): void {
    this.#closed = true;
    for (const w of this.#waiting.splice(0)) w();
  }

  /** Waits for a slot and returns the function that frees it (idempotent). */
  enter(signal?: AbortSignal): Promise<() => void> {
    const unavailable = (why: string) =>
      new HttpError(503, "server_busy", why, {
        headers: { "retry-after": String(this.#limits.retryAfterSeconds) },
      });
    if (this.#closed) return Promise.reject(unavailable("the server is shutting down"));
    const grant = (): () => void => {
      this.#active++;
      let done = false;
      return () => {
        if (done) return;
        done = true;
        this.#active--;
        if (this.#waiting.length && this.#active < this.#limits.maxStreams) this.#waiting.shift()!();
      };
    };
    if (this.#active < this.#limits.maxStreams && this.#waiting.length === 0) return Promise.resolve(grant());
    if (this.#waiting.length >= this.#limits.maxQueue) {
      return Promise.reject(
        unavailable(
          `the server is busy (${this.#active} streams, ${this.#waiting.length} waiting); retry after ` +
            `${this.#limits.retryAfterSeconds} s`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.#waiting.indexOf(wake);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(new HttpError(499, "client_closed", "the client left while waiting"));
      };
      const wake = () => {
        signal?.removeEventListener("abort", onAbort);
        if (this.#closed) reject(unavailable("the server is shutting down"));
        else resolve(grant());
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(wake);
    });
  }
}
