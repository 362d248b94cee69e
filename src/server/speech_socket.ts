/**
 * The streaming-text speech endpoint (`/v1/audio/speech/stream`), independent of the runtime's WebSocket API: one
 * {@link SpeechSocketSession} per connection, fed with the client's messages through a minimal
 * {@link SpeechSocket} (see `websocket.ts` for the Deno, Bun and Node adapters).
 *
 * Protocol (JSON text messages in, binary audio and JSON out):
 * 1. client → `{"type":"start", "voice"?, "response_format"?: "pcm"|"wav", "seed"?, "temperature"?,
 *    "lsd_steps"?, "normalize"?: "en"}` (first message; `pcm` is s16le 24 kHz mono, `wav` the same after a
 *    streaming WAV header);
 * 2. client → `{"type":"text", "text": "…"}` any number of times (arbitrary deltas), then `{"type":"end"}`;
 *    `{"type":"cancel"}` stops at once;
 * 3. server → binary messages of audio as frames are generated, `{"type":"caption", "text", "start", "end"}` (in
 *    samples) after each chunk, and finally `{"type":"done", "samples", "audio_ms", "first_audio_ms", "total_ms",
 *    "chunks"}`; or `{"type":"error", "code", "message"}` — then the server closes the socket.
 *
 * Limits (every one has a default): total text characters, bytes per message, idle time between client messages,
 * and bytes queued on the socket before generation pauses (back-pressure to the model).
 *
 * @module
 */

import { PocketTtsError } from "../errors.ts";
import { WavStreamWriter } from "../audio/wav.ts";
import type { GenerateOptions, TTSModel, Voice } from "../generate/tts_model.ts";
import type { NormalizeLanguage } from "../text/normalize_en.ts";

/** What a session needs from a WebSocket. */
export interface SpeechSocket {
  /** Sends a text (JSON) or binary message. */
  send(data: string | Uint8Array): void;
  /** Closes the connection. */
  close(code?: number, reason?: string): void;
  /** Bytes queued for sending. */
  readonly bufferedAmount: number;
}

/** Limits of one connection. */
export interface SpeechSocketLimits {
  /** Total characters of text per connection (default 20 000). */
  maxInputChars: number;
  /** Largest client message, in bytes (default 64 KiB). */
  maxMessageBytes: number;
  /** Longest wait for the client's next message while it is still sending text, in ms (default 30 000). */
  idleTimeoutMs: number;
  /** Bytes queued on the socket above which generation waits for the client to read (default 1 MiB). */
  maxBufferedBytes: number;
  /**
   * Longest wait for a client that stopped reading (the queue stays above `maxBufferedBytes`), in ms (default
   * 30 000); then the session ends with a `stalled` error and frees its stream slot.
   */
  stallTimeoutMs: number;
}

/** The defaults of {@link SpeechSocketLimits}. */
export const DEFAULT_SPEECH_SOCKET_LIMITS: Readonly<SpeechSocketLimits> = Object.freeze({
  maxInputChars: 20_000,
  maxMessageBytes: 64 * 1024,
  idleTimeoutMs: 30_000,
  maxBufferedBytes: 1024 * 1024,
  stallTimeoutMs: 30_000,
});

/** Options of {@link openSpeechSocket}. */
export interface SpeechSocketOptions {
  /** Limits (each defaults to {@link DEFAULT_SPEECH_SOCKET_LIMITS}). */
  limits?: Partial<SpeechSocketLimits>;
  /**
   * Resolves the `voice` name of a start message (the server's registry); `release` is called when the stream
   * ends. Default: only the model's predefined voice names. A name is never a path or URL.
   */
  resolveVoice?: (name: string) => Promise<{ voice: Voice | undefined; release(): void }>;
  /**
   * Waits for a generation slot and returns its release (the server's stream gate); `signal` aborts when the
   * connection ends while waiting. Default: no gate.
   */
  acquireSlot?: (signal: AbortSignal) => Promise<() => void>;
  /**
   * Told about each session: `stop` ends it (a server shutting down aborts it), `ended` settles once it has
   * released everything.
   */
  track?: (stop: AbortController, ended: Promise<void>) => void;
  /** Generation settings under each request's own (an operator's `eosThreshold`, `maxTokens`, …). */
  generation?: GenerateOptions;
}

/** The connection's message handlers, called by a runtime adapter. */
export interface SpeechSocketSession {
  /** A message from the client (text or binary). */
  message(data: string | ArrayBuffer | Uint8Array): void;
  /** The connection closed (by either side). */
  closed(): void;
}

class ProtocolError extends PocketTtsError {}

/** A queue of text deltas the generator pulls from; it waits for the client when empty. */
class DeltaQueue implements AsyncIterable<string> {
  #items: string[] = [];
  #ended = false;
  #wake: (() => void) | null = null;
  push(text: string) {
    this.#items.push(text);
    this.#wake?.();
  }
  end() {
    this.#ended = true;
    this.#wake?.();
  }
  get ended() {
    return this.#ended;
  }
  async *[Symbol.asyncIterator](): AsyncGenerator<string> {
    for (;;) {
      if (this.#items.length) yield this.#items.shift()!;
      else if (this.#ended) return;
      else await new Promise<void>((r) => this.#wake = r).finally(() => this.#wake = null);
    }
  }
}

function field<T>(msg: Record<string, unknown>, key: string, type: "string" | "number"): T | undefined {
  const v = msg[key];
  if (v === undefined || v === null) return undefined;
  const ok = type === "string" ? typeof v === "string" : typeof v === "number" && Number.isFinite(v);
  if (!ok) throw new ProtocolError("invalid_request", `"${key}" must be a ${type}`);
  return v as T;
}

/**
 * Starts a session on a connected socket.
 *
 * @example
 * ```ts
 * const session = openSpeechSocket(tts, socket);
 * socket.onmessage = (e) => session.message(e.data);
 * socket.onclose = () => session.closed();
 * ```
 */
export function openSpeechSocket(
  tts: TTSModel,
  socket: SpeechSocket,
  options: SpeechSocketOptions = {},
): SpeechSocketSession {
  const limits = { ...DEFAULT_SPEECH_SOCKET_LIMITS, ...options.limits };
  const deltas = new DeltaQueue();
  const abort = new AbortController();
  let started = false;
  let chars = 0;
  let open = true;
  let idle: ReturnType<typeof setTimeout> | undefined;
  let ended!: () => void;
  const endedPromise = new Promise<void>((r) => ended = r);
  options.track?.(abort, endedPromise);
  abort.signal.addEventListener("abort", () => finish(1001, "stopped"), { once: true });

  const send = (data: string | Uint8Array) => {
    if (open) socket.send(data);
  };
  const finish = (code: number, reason: string) => {
    clearTimeout(idle);
    if (!open) return;
    open = false;
    abort.abort(new PocketTtsError("aborted", reason));
    socket.close(code, reason);
    if (!started) ended(); // (a started run reports its own end)
  };
  const fail = (e: unknown) => {
    // Only the library's own typed errors carry their message to the client; anything else stays generic.
    const typed = e instanceof PocketTtsError;
    send(JSON.stringify({
      type: "error",
      code: typed ? e.code : "internal_error",
      message: typed ? e.message : "internal error",
    }));
    finish(typed ? 1008 : 1011, typed ? e.code : "internal_error");
  };
  const armIdle = () => {
    clearTimeout(idle);
    if (!deltas.ended) {
      idle = setTimeout(
        () => fail(new ProtocolError("timeout", "no message from the client in time")),
        limits.idleTimeoutMs,
      );
    }
  };
  armIdle();

  const drained = async () => {
    const since = Date.now();
    while (open && socket.bufferedAmount > limits.maxBufferedBytes) {
      if (Date.now() - since > limits.stallTimeoutMs) {
        throw new ProtocolError("stalled", `the client read nothing for ${limits.stallTimeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  const run = async (start: Record<string, unknown>) => {
    const format = field<string>(start, "response_format", "string") ?? "pcm";
    if (format !== "pcm" && format !== "wav") {
      throw new ProtocolError("invalid_request", `response_format must be "pcm" or "wav", got "${format}"`);
    }
    const normalize = field<string>(start, "normalize", "string");
    if (normalize !== undefined && normalize !== "en") {
      throw new ProtocolError("invalid_request", `normalize must be "en", got "${normalize}"`);
    }
    const voiceName = field<string>(start, "voice", "string");
    let lease: { voice: Voice | undefined; release(): void } = { voice: undefined, release() {} };
    if (voiceName !== undefined) {
      if (options.resolveVoice) lease = await options.resolveVoice(voiceName);
      else if (tts.predefinedVoices.includes(voiceName)) lease.voice = await tts.loadVoice(voiceName);
      else throw new ProtocolError("invalid_voice", `unknown voice "${voiceName}"`);
    }
    const releaseSlot = options.acquireSlot ? await options.acquireSlot(abort.signal) : () => {};
    try {
      const writer = new WavStreamWriter(tts.sampleRate);
      const request: GenerateOptions = {
        ...options.generation,
        voice: lease.voice,
        seed: field<number>(start, "seed", "number"),
        temperature: field<number>(start, "temperature", "number") ?? options.generation?.temperature,
        lsdSteps: field<number>(start, "lsd_steps", "number") ?? options.generation?.lsdSteps,
        normalize: normalize as NormalizeLanguage | undefined,
        signal: abort.signal,
        onChunk: (r) => send(JSON.stringify({ type: "caption", text: r.text, start: r.start, end: r.end })),
      };
      const t0 = performance.now();
      let firstAudio = -1;
      let samples = 0;
      let chunks = 0;
      const countChunks = request.onChunk!;
      request.onChunk = (r) => {
        chunks++;
        countChunks(r);
      };
      if (format === "wav") send(writer.header());
      for await (const frame of tts.streamText(deltas, request)) {
        if (firstAudio < 0) firstAudio = performance.now() - t0;
        samples += frame.length;
        send(writer.encode(frame));
        await drained();
      }
      send(JSON.stringify({
        type: "done",
        samples,
        audio_ms: Math.round((samples / tts.sampleRate) * 1000),
        first_audio_ms: Math.round(firstAudio),
        total_ms: Math.round(performance.now() - t0),
        chunks,
      }));
      finish(1000, "done");
    } finally {
      releaseSlot();
      lease.release();
    }
  };

  const handle = (msg: Record<string, unknown>) => {
    const type = msg.type;
    if (!started) {
      if (type !== "start") throw new ProtocolError("invalid_request", 'the first message must be {"type":"start"}');
      started = true;
      run(msg).catch((e) => open && fail(e)).finally(() => ended());
      return;
    }
    if (type === "text") {
      if (deltas.ended) throw new ProtocolError("invalid_request", "text after end");
      const text = field<string>(msg, "text", "string") ?? "";
      chars += text.length;
      if (chars > limits.maxInputChars) {
        throw new ProtocolError("input_too_long", `the text exceeds ${limits.maxInputChars} characters`);
      }
      deltas.push(text);
    } else if (type === "end") deltas.end();
    else if (type === "cancel") finish(1000, "cancelled");
    else throw new ProtocolError("invalid_request", `unknown message type ${JSON.stringify(type)}`);
  };

  return {
    message(data) {
      if (!open) return;
      try {
        if (typeof data !== "string") throw new ProtocolError("invalid_request", "messages must be JSON text");
        if (data.length > limits.maxMessageBytes) {
          throw new ProtocolError("message_too_large", `a message exceeds ${limits.maxMessageBytes} bytes`);
        }
        let msg: unknown;
        try {
          msg = JSON.parse(data);
        } catch {
          throw new ProtocolError("invalid_request", "a message is not valid JSON");
        }
        if (typeof msg !== "object" || msg === null || Array.isArray(msg)) {
          throw new ProtocolError("invalid_request", "a message must be a JSON object");
        }
        handle(msg as Record<string, unknown>);
        armIdle();
      } catch (e) {
        fail(e);
      }
    },
    closed() {
      clearTimeout(idle);
      open = false;
      abort.abort(new PocketTtsError("aborted", "the client disconnected"));
      if (!started) ended();
    },
  };
}
