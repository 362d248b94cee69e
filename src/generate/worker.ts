/**
 * Entry point of a model-part worker: its own wasm instance, serving over {@link serveRpc} FlowLM (`flow.*` calls)
 * and/or parts of the Mimi decoder (`mimi.*` calls: runs of its stages, with their weights and each stream's state
 * for them). The first call is `init` (the core, and FlowLM when asked); `loadMimi` then builds a Mimi part once the
 * caller has chosen where to cut the decoder (`mimi_split.ts`), from the plan `init` returns. A worker may hold two
 * parts (its stages and a position-wise stage both workers hold); `mimi.decode` runs a chain of them in one call.
 *
 * The same script hosts a threads-build *helper* (`core_helpers.ts`): `helperInit` joins the caller's shared memory,
 * `helperRun` parks the thread in the core's pool for good.
 *
 * @module
 */

import { openSafetensors } from "../model/safetensors.ts";
import type { PocketTtsConfig } from "../model/config.ts";
import { mimiDecoderPlan, type MimiStage } from "../runtime/mimi_decoder.ts";
import { loadCore, type PocketCore, type SimdVariant } from "../runtime/wasm.ts";
import { LocalFlowLm, LocalMimi } from "./local_services.ts";
import { servedMs, serveRpc, transferring } from "./rpc.ts";
import type { EncoderLoading } from "./services.ts";
import { type CoreHelpers, type HelperInit, startCoreHelpers } from "./core_helpers.ts";
import { parentEndpoint } from "./worker_thread.ts";

/** What `init` receives. */
export interface WorkerInit {
  /** Whether this worker runs FlowLM. */
  flow: boolean;
  /** The checkpoint: a local path, a URL, or its bytes. */
  weights: string | Uint8Array;
  config: PocketTtsConfig;
  simd: "auto" | SimdVariant;
  /** Int8 FlowLM linears. */
  quantize?: boolean;
  /** The wasm core when not the shipped file: a compiled module, its bytes, or its URL. */
  wasm?: WebAssembly.Module | Uint8Array | string;
  /** `> 1`: the threads build, with `threads − 1` helpers started from this script (`core_helpers.ts`). */
  threads?: number;
  /**
   * Which work the helpers share: every kernel (`"all"`, the default), or only what runs while the other worker
   * waits (`"prefill"`, for the FlowLM worker of the two-worker mode): FlowLM's prefills (a text chunk, a voice
   * prompt, cloned latents), a chunk's first frame (its step and this worker's decoder stages) and a voice-cloning
   * encoder held here. Later steps and frames run while the other worker keeps the other core busy, so they stay on
   * one thread.
   */
  helpers?: "all" | "prefill";
}

/** What `init` answers. */
export interface WorkerReady {
  variant: SimdVariant;
  /** The Mimi decoder's stages (to choose the cut from). */
  plan: MimiStage[];
  /** Bytes of weights one AR step reads, when this worker runs FlowLM. */
  stepWeightBytes: number | null;
  /** Helper threads started (fewer than asked where nested workers cannot start). */
  helpers: number;
}

/** What `loadMimi` receives: the stages this worker runs, and how it gets the voice-cloning encoder. */
export interface MimiPartInit {
  stages: { from: number; to: number };
  encoder: EncoderLoading;
}

let setup: { core: PocketCore; init: WorkerInit } | null = null;
let helper: { run: () => void; memory: WebAssembly.Memory; failedFlag: number } | null = null;
let helpers: CoreHelpers | null = null;
let flow: LocalFlowLm | null = null;
/** Set with `helpers: "prefill"`: runs a call with the helpers enabled (calls may overlap, hence the count). */
let helped: (<T>(run: () => Promise<T>) => Promise<T>) | null = null;
/** With `helped`: FlowLM streams whose chunk's first frame has not left this worker yet (the other worker waits). */
const firstFrames = new Set<number>();
/**
 * With `helped`: FlowLM streams that have stepped in their current chunk. While there are any, the other worker is
 * decoding their frames, and a helper would only take its core: prefills then run on one thread.
 */
const stepping = new Set<number>();
/** The Mimi parts, in load order (`loadMimi` answers the index). */
let mimiParts: LocalMimi[] = [];
/** The part whose encoder (if any) the voice-cloning calls use: the one loaded with one, else the first. */
let encoderPart = -1;
/**
 * Per FlowLM stream, the latent its last `flow.step` produced, until a `mimi.decode` asks for it (`{ stepOf }`):
 * the decoder's first parts then run right after the step, with no round trip through the caller's thread.
 */
const stepLatents = new Map<number, Float32Array>();

/** A frame's input: a latent, or the one `flow.step` last produced for a FlowLM stream (taken once). */
export type DecodeInput = Float32Array | { stepOf: number };

/** `[part, stream]` pairs: one stream on each of a chain of parts. */
type PartStreams = [number, number][];

function need<T>(part: T | null, name: string): T {
  if (!part) throw new Error(`worker has no ${name} part`);
  return part;
}

function mimiPart(part: number): LocalMimi {
  return need(mimiParts[part] ?? null, `Mimi ${part}`);
}

async function withReader<T>(weights: string | Uint8Array, fn: (r: Awaited<ReturnType<typeof openSafetensors>>) => T) {
  const reader = await openSafetensors(weights);
  try {
    return await fn(reader);
  } finally {
    await reader.close();
  }
}

/**
 * `run` with the helpers enabled when they are kept for prefills (`helpers: "prefill"`) and `when` holds (by default:
 * when no stream is generating).
 */
function prefill<T>(run: () => Promise<T>, when = stepping.size === 0): Promise<T> {
  return helped && when ? helped(run) : run();
}

/** Keeps `core`'s helpers parked except while a call given to the returned function runs. */
function helpersDuring(core: PocketCore): <T>(run: () => Promise<T>) => Promise<T> {
  let open = 0;
  core.raw.pool_set_enabled(0);
  return async (run) => {
    if (open++ === 0) core.raw.pool_set_enabled(1);
    try {
      return await run();
    } finally {
      if (--open === 0) core.raw.pool_set_enabled(0);
    }
  };
}

// Module workers: the global scope, with no await, so the first message cannot arrive before the listener.
const parent = parentEndpoint();
serveRpc(parent instanceof Promise ? await parent : parent, {
  init: async (init: WorkerInit): Promise<WorkerReady> => {
    const threads = init.threads ?? 1;
    const core = await loadCore({ simd: init.simd, wasm: init.wasm, threads: threads > 1 });
    if (threads > 1 && init.helpers === "prefill") {
      // Prefill helpers only bring first audio sooner: where none can start (no nested workers), go on without.
      helpers = await startCoreHelpers(core, threads - 1, new URL(import.meta.url)).catch(() => null);
      if (helpers) helped = helpersDuring(core);
    } else if (threads > 1) {
      helpers = await startCoreHelpers(core, threads - 1, new URL(import.meta.url));
    }
    setup = { core, init };
    if (init.flow) {
      flow = await withReader(
        init.weights,
        (r) => LocalFlowLm.create(core, r, init.config, { quantize: init.quantize }),
      );
    }
    return {
      variant: core.variant,
      plan: mimiDecoderPlan(core, init.config),
      stepWeightBytes: flow?.stepWeightBytes ?? null,
      helpers: helpers?.count ?? 0,
    };
  },
  loadMimi: async ({ stages, encoder }: MimiPartInit) => {
    const { core, init } = need(setup, "core (call init first)");
    const path = typeof init.weights === "string" ? init.weights : undefined;
    const part = await withReader(init.weights, (r) => LocalMimi.create(core, r, init.config, encoder, path, stages));
    if (encoder !== "none" || encoderPart < 0) encoderPart = mimiParts.length;
    return mimiParts.push(part) - 1;
  },
  "flow.importVoice": (bytes: Uint8Array, x0: Float32Array) =>
    prefill(() => need(flow, "FlowLM").importVoice(bytes, x0)),
  "flow.exportVoice": async (id: number) => {
    const bytes = await need(flow, "FlowLM").exportVoice(id);
    return transferring(bytes, [bytes.buffer as ArrayBuffer]); // a voice's KV state is MBs: moved, not copied
  },
  "flow.emptyVoice": () => need(flow, "FlowLM").emptyVoice(),
  "flow.freeVoice": (id: number) => need(flow, "FlowLM").freeVoice(id),
  "flow.openStream": () => need(flow, "FlowLM").openStream(),
  "flow.closeStream": (stream: number) => {
    stepLatents.delete(stream);
    firstFrames.delete(stream);
    stepping.delete(stream);
    return need(flow, "FlowLM").closeStream(stream);
  },
  "flow.beginChunk": (stream: number, voiceId: number, ids: number[], maxGenLen: number, x0: Float32Array) => {
    firstFrames.delete(stream);
    stepping.delete(stream);
    const alone = stepping.size === 0;
    return prefill(async () => {
      await need(flow, "FlowLM").beginChunk(stream, voiceId, ids, maxGenLen, x0);
      if (helped && alone) firstFrames.add(stream);
    }, alone);
  },
  "flow.step": async (stream: number, input: Float32Array | null, x0: Float32Array, lsdSteps: number) => {
    stepLatents.delete(stream); // a failed step leaves nothing a decode could take for its latent
    const first = firstFrames.has(stream);
    if (mimiParts.length === 0) firstFrames.delete(stream); // the frame leaves this worker with the step's reply
    if (helped) stepping.add(stream);
    const r = await prefill(() => need(flow, "FlowLM").step(stream, input, x0, lsdSteps), first);
    stepLatents.set(stream, r.latent); // the reply is a copy: this one stays for the decode
    return r;
  },
  "flow.importLatents": (latents: Float32Array, voiceId?: number) =>
    prefill(() => need(flow, "FlowLM").importLatents(latents, voiceId)),
  "mimi.openStream": (part: number) => mimiPart(part).openStream(),
  "mimi.closeStream": async (chain: PartStreams) => {
    for (const [part, stream] of chain) await mimiPart(part).closeStream(stream);
  },
  "mimi.reset": async (chain: PartStreams) => {
    for (const [part, stream] of chain) await mimiPart(part).reset(stream);
  },
  // A frame through a chain of this worker's parts; `served` = this worker's busy milliseconds so far, from which
  // the caller balances the stage both workers hold.
  "mimi.decode": async (chain: PartStreams, input: DecodeInput) => {
    let x = input instanceof Float32Array ? input : stepLatents.get(input.stepOf);
    if (!x) throw new Error(`no step latent of FlowLM stream ${(input as { stepOf: number }).stepOf} to decode`);
    const first = !(input instanceof Float32Array) && firstFrames.delete(input.stepOf);
    if (!(input instanceof Float32Array)) stepLatents.delete(input.stepOf);
    await prefill(async () => {
      for (const [part, stream] of chain) x = await mimiPart(part).decode(stream, x!);
    }, first);
    return transferring({ out: x, served: servedMs() }, [x.buffer as ArrayBuffer]);
  },
  helperChunks: () => helpers ? need(setup, "core").core.raw.pool_helper_chunks() : 0,
  "mimi.parts": async () => (await Promise.all(mimiParts.map((p) => p.parts()))).flat(),
  "mimi.openEncoding": () => mimiPart(encoderPart).openEncoding(),
  // The encoder's products get the prefill helpers, if this worker has them, while no stream is generating.
  "mimi.encodeBlock": async (encoding: number, audio: Float32Array) => {
    const latents = await prefill(() => mimiPart(encoderPart).encodeBlock(encoding, audio));
    return transferring(latents, [latents.buffer as ArrayBuffer]);
  },
  "mimi.closeEncoding": (encoding: number) => mimiPart(encoderPart).closeEncoding(encoding),
  helperInit: async (h: HelperInit) => {
    const instance = await WebAssembly.instantiate(h.module, { env: { memory: h.memory } });
    // deno-lint-ignore no-explicit-any
    const x = instance.exports as any;
    x.__stack_pointer.value = h.stackTop; // before any call that uses the stack
    x.__wasm_init_tls(h.tlsBase);
    helper = { run: x.pool_helper_run, memory: h.memory, failedFlag: h.failedFlag };
  },
  helperRun: () => {
    const { run, memory, failedFlag } = need(helper, "helper instance (call helperInit first)");
    try {
      run();
    } catch (e) {
      Atomics.store(new Int32Array(memory.buffer), failedFlag >> 2, 1); // the core's thread stops waiting for us
      throw e;
    }
  },
  dispose: async () => {
    await flow?.dispose();
    for (const p of mimiParts) await p.dispose();
    await helpers?.terminate();
    flow = null;
    stepLatents.clear();
    firstFrames.clear();
    stepping.clear();
    mimiParts = [];
    encoderPart = -1;
    helpers = null;
    helped = null;
    setup = null;
  },
});
