/**
 * Starting the two model parts: in two workers (each its own wasm instance and weights; the reference's
 * two-thread design without shared memory), or both on one core of this thread (edge functions, Node 20).
 *
 * @module
 */

import { PocketTtsError } from "../errors.ts";
import type { ResolvedModel } from "../model/assets.ts";
import { openSafetensors } from "../model/safetensors.ts";
import { loadCore, type SimdVariant } from "../runtime/wasm.ts";
import { LocalFlowLm, LocalMimi } from "./local_services.ts";
import { type MessageEndpoint, RpcClient } from "./rpc.ts";
import type { EncoderLoading, FlowLmService, MimiService, VoiceRef } from "./services.ts";
import type { WorkerInit } from "./worker.ts";

/** True where module workers exist (Deno, Bun, browsers). Node 20 has no global `Worker`: it runs single-thread. */
export function workersAvailable(): boolean {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  return typeof g.Worker === "function" && (g.Deno !== undefined || g.Bun !== undefined || g.document !== undefined);
}

/** Options of {@link createServices}. */
export interface CreateServicesOptions {
  workers: boolean;
  simd: "auto" | SimdVariant;
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
    const core = await loadCore({ simd: options.simd });
    const reader = await openSafetensors(weights);
    try {
      return {
        flow: await LocalFlowLm.create(core, reader, model.config),
        mimi: await LocalMimi.create(core, reader, model.config, options.encoder, model.weights.path ?? undefined),
      };
    } finally {
      await reader.close();
    }
  }
  if (typeof (globalThis as { Worker?: unknown }).Worker !== "function") {
    throw new PocketTtsError(
      "workers_unavailable",
      'this runtime has no module workers (Node 20 has only worker_threads); use workers: 0 or "auto"',
    );
  }
  const [flowWorker, mimiWorker] = await Promise.all([
    startWorker({ part: "flow_lm", weights, config: model.config, simd: options.simd }),
    startWorker({ part: "mimi", weights, config: model.config, simd: options.simd, encoder: options.encoder }),
  ]);
  return { flow: new WorkerFlowLm(flowWorker), mimi: new WorkerMimi(mimiWorker) };
}

/** A started worker and its RPC client. */
interface PartWorker {
  worker: Worker;
  rpc: RpcClient;
}

async function startWorker(init: WorkerInit): Promise<PartWorker> {
  const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
  const rpc = new RpcClient(worker as unknown as MessageEndpoint);
  worker.addEventListener("error", (e) => {
    e.preventDefault?.();
    rpc.failAll(new Error(`model worker failed: ${(e as ErrorEvent).message ?? "unknown error"}`));
  });
  try {
    await rpc.call("init", [init]);
  } catch (e) {
    worker.terminate();
    throw e;
  }
  return { worker, rpc };
}

async function stop(w: PartWorker): Promise<void> {
  try {
    await w.rpc.call("dispose");
  } finally {
    w.worker.terminate();
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
  importLatents(latents: Float32Array, x0: Float32Array): Promise<VoiceRef> {
    return this.#w.rpc.call("importLatents", [latents, x0]);
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
  encode(audio: Float32Array): Promise<Float32Array> {
    return this.#w.rpc.call("encode", [audio]);
  }
  dispose(): Promise<void> {
    return stop(this.#w);
  }
}
