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
}

/** What `init` answers. */
export interface WorkerReady {
  variant: SimdVariant;
  /** The Mimi decoder's stages (to choose the cut from). */
  plan: MimiStage[];
  /** Bytes of weights one AR step reads, when this worker runs FlowLM. */
  stepWeightBytes: number | null;
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

// Module workers: the global scope, with no await, so the first message cannot arrive before the listener.
const parent = parentEndpoint();
serveRpc(parent instanceof Promise ? await parent : parent, {
  init: async (init: WorkerInit): Promise<WorkerReady> => {
    const threads = init.threads ?? 1;
    const core = await loadCore({ simd: init.simd, wasm: init.wasm, threads: threads > 1 });
    if (threads > 1) helpers = await startCoreHelpers(core, threads - 1, new URL(import.meta.url));
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
    };
  },
  loadMimi: async ({ stages, encoder }: MimiPartInit) => {
    const { core, init } = need(setup, "core (call init first)");
    const path = typeof init.weights === "string" ? init.weights : undefined;
    const part = await withReader(init.weights, (r) => LocalMimi.create(core, r, init.config, encoder, path, stages));
    if (encoder !== "none" || encoderPart < 0) encoderPart = mimiParts.length;
    return mimiParts.push(part) - 1;
  },
  "flow.importVoice": (bytes: Uint8Array, x0: Float32Array) => need(flow, "FlowLM").importVoice(bytes, x0),
  "flow.exportVoice": async (id: number) => {
    const bytes = await need(flow, "FlowLM").exportVoice(id);
    return transferring(bytes, [bytes.buffer as ArrayBuffer]); // a voice's KV state is MBs: moved, not copied
  },
  "flow.emptyVoice": () => need(flow, "FlowLM").emptyVoice(),
  "flow.freeVoice": (id: number) => need(flow, "FlowLM").freeVoice(id),
  "flow.openStream": () => need(flow, "FlowLM").openStream(),
  "flow.closeStream": (stream: number) => {
    stepLatents.delete(stream);
    return need(flow, "FlowLM").closeStream(stream);
  },
  "flow.beginChunk": (stream: number, voiceId: number, ids: number[], maxGenLen: number, x0: Float32Array) =>
    need(flow, "FlowLM").beginChunk(stream, voiceId, ids, maxGenLen, x0),
  "flow.step": async (stream: number, input: Float32Array | null, x0: Float32Array, lsdSteps: number) => {
    stepLatents.delete(stream); // a failed step leaves nothing a decode could take for its latent
    const r = await need(flow, "FlowLM").step(stream, input, x0, lsdSteps);
    stepLatents.set(stream, r.latent); // the reply is a copy: this one stays for the decode
    return r;
  },
  "flow.importLatents": (latents: Float32Array, voiceId?: number) =>
    need(flow, "FlowLM").importLatents(latents, voiceId),
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
    if (!(input instanceof Float32Array)) stepLatents.delete(input.stepOf);
    for (const [part, stream] of chain) x = await mimiPart(part).decode(stream, x);
    return transferring({ out: x, served: servedMs() }, [x.buffer as ArrayBuffer]);
  },
  "mimi.parts": async () => (await Promise.all(mimiParts.map((p) => p.parts()))).flat(),
  "mimi.openEncoding": () => mimiPart(encoderPart).openEncoding(),
  "mimi.encodeBlock": async (encoding: number, audio: Float32Array) => {
    const latents = await mimiPart(encoderPart).encodeBlock(encoding, audio);
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
    mimiParts = [];
    encoderPart = -1;
    helpers = null;
    setup = null;
  },
});
