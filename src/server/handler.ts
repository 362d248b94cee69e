/**
 * `createHandler(tts, options)`: the whole server as one fetch-style `(Request) => Promise<Response>`, for
 * `Deno.serve`, `Bun.serve`, Node (through any Fetch adapter) and serverless platforms. Every request goes through
 * the same steps: CORS preflight, routing (404/405), the API key (all routes but `/` and `/health`), the route, and
 * one error mapping (OpenAI's JSON shape, no stack traces).
 *
 * @module
 */

import type { GenerateOptions, TTSModel, Voice } from "../generate/tts_model.ts";
import type { AudioSamples } from "../voice/clone.ts";
import { bearerAuth } from "./auth.ts";
import { type CorsOptions, corsPolicy } from "./cors.ts";
import { errorResponse, HttpError, jsonResponse } from "./errors.ts";
import { checkLimits, DEFAULT_LIMITS, type ServerLimits, StreamGate } from "./limits.ts";
import { pageHtml } from "./page.ts";
import { openSpeechSocket } from "./speech_socket.ts";
import { isWebSocketUpgrade, upgradeWebSocket } from "./websocket.ts";
import { handleSpeech } from "./speech.ts";
import type { ServerState } from "./state.ts";
import { handleTtsForm } from "./tts_form.ts";
import { VoiceRegistry } from "./voices.ts";
import { addVoice, deleteVoice, listVoices } from "./voices_api.ts";

/** Options of {@link createHandler}. Everything is off or at its documented default unless set. */
export interface HandlerOptions {
  /** Require `Authorization: Bearer <apiKey>` on every API route. */
  apiKey?: string;
  /** CORS: the allowed origins (default: none, CORS off). */
  cors?: CorsOptions;
  /** Limits; unset ones keep {@link DEFAULT_LIMITS}. */
  limits?: Partial<ServerLimits>;
  /** Voices to register at start, by name: voice-state files (or recordings, when the model can clone). */
  voices?: Record<string, Uint8Array>;
  /**
   * The voice of requests that name none: `/tts` (default: the model's default voice) and `/v1/audio/speech` (default:
   * none, the `voice` field is then required as in OpenAI's API).
   */
  defaultVoice?: string;
  /** Allow clients to add (`POST /v1/voices`) and delete custom voices (default false). */
  voiceUploads?: boolean;
  /** Origins whose voice-file URLs requests may name (default: none; voices are names only). */
  voiceUrlOrigins?: string[];
  /** Generation settings for every request (requests may still set `seed`, `temperature`, `lsd_steps`). */
  generation?: Pick<GenerateOptions, "eosThreshold" | "framesAfterEos" | "maxTokens" | "temperature" | "lsdSteps">;
  /** The model name in `/health` and `x-model` (default `"pocket-tts"`). */
  modelName?: string;
  /** Errors that are not the client's fault, for the operator's log (default `console.error`). */
  onError?: (error: unknown) => void;
}

/** The handler, plus what an operator needs around it. */
export interface SpeechHandler {
  (req: Request): Promise<Response>;
  /**
   * Stops accepting speech requests (503), ends the streams in flight and waits until each has freed its state.
   * The model itself is left to the caller to dispose.
   */
  close(): Promise<void>;
  /** Resolves once `options.voices` are registered; rejects naming a voice file that could not be loaded. */
  readonly ready: Promise<void>;
  /** Streams generating and requests waiting now. */
  readonly stats: { active: number; waiting: number };
}

type Route = (state: ServerState, req: Request, params: string[]) => Response | Promise<Response>;

/** Routes by method and path pattern; `public` routes skip the API key. */
const ROUTES: { method: string; path: RegExp; route: Route; public?: boolean }[] = [
  { method: "GET", path: /^\/$/, route: () => html(pageHtml()), public: true },
  { method: "GET", path: /^\/health$/, route: (s) => health(s), public: true },
  { method: "POST", path: /^\/v1\/audio\/speech$/, route: (s, r) => handleSpeech(s, r) },
  { method: "POST", path: /^\/tts$/, route: (s, r) => handleTtsForm(s, r) },
  { method: "GET", path: /^\/v1\/audio\/speech\/stream$/, route: (s, r) => speechSocket(s, r) },
  { method: "GET", path: /^\/v1\/(audio\/)?voices$/, route: (s) => listVoices(s) },
  { method: "POST", path: /^\/v1\/voices$/, route: (s, r) => addVoice(s, r) },
  { method: "DELETE", path: /^\/v1\/voices\/([^/]+)$/, route: (s, _r, p) => deleteVoice(s, decodeURIComponent(p[0])) },
];

function html(body: string): Response {
  return new Response(body, {
    headers: {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      // The page's own inline script and same-origin fetches only.
      "content-security-policy":
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; media-src blob:",
      "x-content-type-options": "nosniff",
    },
  });
}

/** The streaming-text WebSocket (`speech_socket.ts`), sharing this server's voices, stream gate and shutdown. */
function speechSocket(s: ServerState, req: Request): Response {
  if (!isWebSocketUpgrade(req)) {
    throw new HttpError(426, "upgrade_required", "this endpoint takes a WebSocket connection", {
      headers: { upgrade: "websocket" },
    });
  }
  const res = upgradeWebSocket(req, (socket) =>
    openSpeechSocket(s.tts, socket, {
      resolveVoice: (name) => s.voices.resolve(name, "voice"),
      acquireSlot: (signal) => s.gate.enter(signal),
      track: (stop, ended) => {
        s.inflight.set(stop, ended);
        void ended.finally(() => s.inflight.delete(stop));
      },
    }));
  if (!res) throw new HttpError(501, "websocket_unavailable", "WebSockets are not available in this runtime's server");
  return res;
}

function health(s: ServerState): Response {
  return jsonResponse({
    status: "ok",
    model: s.modelName,
    sample_rate: s.tts.sampleRate,
    streams: { active: s.gate.active, waiting: s.gate.waiting, max_active: s.limits.maxStreams },
    queue_depth: s.gate.waiting,
    max_queue: s.limits.maxQueue,
  });
}

/**
 * Clones a decoded recording (the registry decoded at most `maxSeconds` of it) into a voice owned by one caller.
 * The model's clone cache shares one voice per recording; the server copies it (voice-state bytes) and frees the
 * shared one at once, so a lease's release frees everything, and recordings sent by strangers never accumulate in the
 * model.
 */
async function cloneForServer(tts: TTSModel, audio: AudioSamples, maxSeconds: number): Promise<Voice> {
  const shared = await tts.loadVoice(audio, { maxSeconds });
  const state = tts.exportVoice(shared); // (reads the voice's bytes held here: valid even once freed)
  await tts.freeVoice(shared).catch(() => {}); // (a concurrent upload of the same bytes may have freed it first)
  return await tts.loadVoice(state);
}

/**
 * Creates the server's handler for a loaded model. `options.voices` are registered in the background: API requests
 * wait for it, and `handler.ready` tells the operator when it is done (or which file failed).
 *
 * @example
 * ```ts
 * import { TTSModel } from "@pocket/tts";
 * import { createHandler } from "@pocket/tts/server";
 *
 * const tts = await TTSModel.load();
 * const handler = createHandler(tts, { apiKey: Deno.env.get("API_KEY") });
 * Deno.serve({ port: 8000 }, handler);
 * // curl localhost:8000/v1/audio/speech -H 'content-type: application/json' \
 * //   -d '{"model":"pocket-tts","input":"Hello!","voice":"alba","response_format":"wav"}' > hello.wav
 * ```
 */
export function createHandler(tts: TTSModel, options: HandlerOptions = {}): SpeechHandler {
  const limits = checkLimits({ ...DEFAULT_LIMITS, ...options.limits });
  const onError = options.onError ?? ((e: unknown) => console.error("pocket-tts server error:", e));
  const auth = options.apiKey !== undefined ? bearerAuth(options.apiKey) : null;
  const cors = corsPolicy(options.cors);
  const voices = new VoiceRegistry(tts, {
    limits,
    voiceUrlOrigins: options.voiceUrlOrigins,
    cloneVoice: tts.hasVoiceCloning ? (audio) => cloneForServer(tts, audio, limits.maxUploadSeconds) : undefined,
  });
  const state: ServerState = {
    tts,
    limits,
    voices,
    gate: new StreamGate(limits),
    inflight: new Map(),
    onError,
    modelName: options.modelName ?? "pocket-tts",
    defaultVoice: options.defaultVoice,
    voiceUploads: options.voiceUploads ?? false,
    generation: options.generation ?? {},
  };
  const ready = Promise.all(
    Object.entries(options.voices ?? {}).map(([n, b]) =>
      voices.register(n, b).catch((e) => {
        throw new Error(`voice "${n}" could not be registered: ${(e as Error)?.message ?? e}`, { cause: e });
      })
    ),
  ).then(() => {});
  ready.catch(() => {}); // reported through `handler.ready`; API requests then fail with a 500

  const handle = async (req: Request): Promise<Response> => {
    const path = new URL(req.url).pathname;
    if (req.method === "OPTIONS") return cors.preflight(req);
    const forPath = ROUTES.filter((r) => r.path.test(path));
    if (forPath.length === 0) throw new HttpError(404, "not_found", `no route ${path.slice(0, 100)}`);
    const hit = forPath.find((r) => r.method === req.method || (r.method === "GET" && req.method === "HEAD"));
    if (!hit) {
      throw new HttpError(405, "method_not_allowed", `${path} takes ${forPath.map((r) => r.method).join(", ")}`, {
        headers: { allow: forPath.map((r) => r.method).join(", ") },
      });
    }
    if (!hit.public) {
      await auth?.(req);
      await ready;
    }
    return await hit.route(state, req, hit.path.exec(path)!.slice(1));
  };

  const handler = (async (req: Request) => {
    let res: Response;
    try {
      res = await handle(req);
    } catch (e) {
      res = errorResponse(e, onError);
    }
    if (res.status !== 101) { // (an upgrade's headers are the runtime's)
      for (const [k, v] of Object.entries(cors.headers(req))) res.headers.set(k, v);
    }
    return res;
  }) as SpeechHandler;
  handler.close = async () => {
    state.gate.close();
    const streams = [...state.inflight];
    for (const [ac] of streams) ac.abort(); // each stops within one frame and frees its state
    await Promise.all(streams.map(([, cleaned]) => cleaned));
  };
  Object.defineProperty(handler, "ready", { value: ready });
  Object.defineProperty(handler, "stats", { get: () => ({ active: state.gate.active, waiting: state.gate.waiting }) });
  return handler;
}
