/**
 * Starting the two model parts: in two threads (each its own wasm instance and weights; the reference's two-thread
 * design without shared memory), or both on one core of this thread (edge functions, or on request).
 *
 * The threads are module workers (Deno, Bun, browsers) or Node's `worker_threads`, started from `worker.ts`
 * beside this module (`worker.js` in the npm build), from `pocket_tts_worker.mjs` beside a bundle
 * (`shipped_file.ts`), or from the URL the caller gives.
 *
 * @module
 */

import { PocketTtsError } from "../errors.ts";
import type { ResolvedModel } from "../model/assets.ts";
import { openSafetensors } from "../model/safetensors.ts";
import { shippedFileUrl } from "../runtime/shipped_file.ts";
import { loadCore, type SimdVariant, type WasmSource } from "../runtime/wasm.ts";
import { LocalFlowLm, LocalMimi } from "./local_services.ts";
import { RpcClient } from "./rpc.ts";
import type { EncoderLoading, FlowLmService, MimiService, VoiceRef } from "./services.ts";
import type { WorkerInit } from "./worker.ts";
import { type ModelThread, startThread, threadsAvailable } from "./worker_thread.ts";

/** True where the model parts can run in threads: module workers (Deno, Bun, browsers) or Node's `worker_threads`. */
export function workersAvailable(): boolean {
  return threadsAvailable();
}

/** The worker script shipped with this module (see the module doc). */
export function defaultWorkerUrl(): URL {
  return shippedFileUrl(import.meta.url, "src/generate/create_services", "./worker.{ext}", "pocket_tts_worker.mjs");
}

/** Options of {@link createServices}. */
export interface CreateServicesOptions {
  workers: boolean;
  simd: "auto" | SimdVariant;
  /** Int8 FlowLM linears (see `TTSModelLoadOptions.quantize`). */
  quantize?: boolean;
  /** The wasm core, when not the shipped file (see {@link LoadCoreOptions.wasm}). */
  wasm?: WasmSource;
  /** The worker script, when not the shipped one. */
  workerUrl?: URL;
  /** How the Mimi part gets its voice-cloning encoder (default `"none"`). */
  encoder?: EncoderLoading;
}

/** Starts FlowLM and the Mimi decoder for `model`. */
export async function createServices(
  model: ResolvedModel,
  options: CreateServicesOptions,
): Promise<{ flow: FlowLmService; mimi: MimiService }> {
  const weights = model.weights.path ?? await model.weights.read();
  if (!options.workers) {
    const core = await loadCore({ simd: options.simd, wasm: options.wasm });
    const reader = await openSafetensors(weights);
    try {
      return {
        flow: await LocalFlowLm.create(core, reader, model.config, { quantize: options.quantize }),
        mimi: await LocalMimi.create(core, reader, model.config, options.encoder, model.weights.path ?? undefined),
      };
    } finally {
      await reader.close();
    }
  }
  if (!threadsAvailable()) {
    throw new PocketTtsError(
      "workers_unavailable",
      'this runtime can start no threads (no Worker, no worker_threads); use workers: 0 or "auto"',
    );
  }
  const url = options.workerUrl ?? defaultWorkerUrl();
  // A URL is posted as a string; a module or bytes are cloned into each thread.
  const wasm = options.wasm instanceof URL ? options.wasm.href : options.wasm;
  const shared = typeof weights === "string" ? weights : shareable(weights);
  const started = await Promise.allSettled([
    startWorker(url, {
      part: "flow_lm",
      weights: shared,
      config: model.config,
      simd: options.simd,
      wasm,
      quantize: options.quantize,
    }),
    startWorker(url, {
      part: "mimi",
      weights: shared,
      config: model.config,
      simd: options.simd,
      wasm,
      encoder: options.encoder,
    }),
  ]);
  const [flowWorker, mimiWorker] = started.map((r) => r.status === "fulfilled" ? r.value : null);
  if (!flowWorker || !mimiWorker) {
    flowWorker?.thread.terminate();
    mimiWorker?.thread.terminate();
    throw (started.find((r) => r.status === "rejected") as PromiseRejectedResult).reason;
  }
  return { flow: new WorkerFlowLm(flowWorker), mimi: new WorkerMimi(mimiWorker) };
}

/**
 * Weights held in memory (downloaded without a file cache), as both threads can read them without a copy each: one
 * copy into a `SharedArrayBuffer` where it can be posted (Deno, Bun, Node; cross-origin-isolated pages), instead of a
 * structured clone per thread (2 × 219 MB for the full model).
 */
function shareable(bytes: Uint8Array): Uint8Array {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  const canShare = typeof SharedArrayBuffer === "function" && (g.document === undefined || g.crossOriginIsolated);
  if (!canShare || bytes.buffer instanceof SharedArrayBuffer) return bytes;
  const out = new Uint8Array(new SharedArrayBuffer(bytes.byteLength));
  out.set(bytes);
  return out;
}

/** A started worker and its RPC client. */
interface PartWorker {
  thread: ModelThread;
  rpc: RpcClient;
}

async function startWorker(url: URL, init: WorkerInit): Promise<PartWorker> {
  const thread = await startThread(url);
  const rpc = new RpcClient(thread.endpoint);
  thread.onFailure((message) => {
    rpc.failAll(new PocketTtsError("worker_failed", `model worker (${url.href}) failed: ${message}`));
  });
  try {
    await rpc.call("init", [init]);
  } catch (e) {
    thread.terminate();
    throw e;
  }
  return { thread, rpc };
}

async function stop(w: PartWorker): Promise<void> {
  try {
    await w.rpc.call("dispose");
  } finally {
    w.thread.terminate();
    w.rpc.failAll(new PocketTtsError("disposed", "the TTSModel was disposed"));
  }
}

/** FlowLM in a worker. */
class WorkerFlowLm implements FlowLmService {
  #w: PartWorker;
  constructor(w: PartWorker) {
    this.#w = w;
  }
  importVoice(bytes: Uint8Array, x0: Float32Array): Promise<VoiceRef> {
    return this.#w.rpc.call("importVoice", [bytes, x0]);
  }
  exportVoice(id: number): Promise<Uint8Array> {
    return this.#w.rpc.call("exportVoice", [id]);
  }
  emptyVoice(): Promise<VoiceRef> {
    return this.#w.rpc.call("emptyVoice");
  }
  freeVoice(id: number): Promise<void> {
    return this.#w.rpc.call("freeVoice", [id]);
  }
  openStream(): Promise<number> {
    return this.#w.rpc.call("openStream");
  }
  closeStream(stream: number): Promise<void> {
    return this.#w.rpc.call("closeStream", [stream]);
  }
  beginChunk(stream: number, voiceId: number, ids: number[], maxGenLen: number, x0: Float32Array): Promise<void> {
    return this.#w.rpc.call("beginChunk", [stream, voiceId, ids, maxGenLen, x0]);
  }
  step(stream: number, input: Float32Array | null, x0: Float32Array, lsdSteps: number) {
    return this.#w.rpc.call<{ latent: Float32Array; eosLogit: number }>("step", [stream, input, x0, lsdSteps]);
  }
  importLatents(latents: Float32Array, voiceId?: number): Promise<VoiceRef> {
    return this.#w.rpc.call("importLatents", [latents, voiceId]);
  }
  dispose(): Promise<void> {
    return stop(this.#w);
  }
}

/** The Mimi decoder in a worker. */
class WorkerMimi implements MimiService {
  #w: PartWorker;
  constructor(w: PartWorker) {
    this.#w = w;
  }
  openStream(): Promise<number> {
    return this.#w.rpc.call("openStream");
  }
  closeStream(stream: number): Promise<void> {
    return this.#w.rpc.call("closeStream", [stream]);
  }
  reset(stream: number): Promise<void> {
    return this.#w.rpc.call("reset", [stream]);
  }
  decode(stream: number, latent: Float32Array): Promise<Float32Array> {
    return this.#w.rpc.call("decode", [stream, latent], [latent.buffer as ArrayBuffer]);
  }
  openEncoding(): Promise<number> {
    return this.#w.rpc.call("openEncoding");
  }
  encodeBlock(encoding: number, audio: Float32Array): Promise<Float32Array> {
    return this.#w.rpc.call("encodeBlock", [encoding, audio]);
  }
  closeEncoding(encoding: number): Promise<void> {
    return this.#w.rpc.call("closeEncoding", [encoding]);
  }
  dispose(): Promise<void> {
    return stop(this.#w);
  }
}
