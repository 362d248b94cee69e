/**
 * Entry point of a model-part worker: its own wasm instance and weights, serving one part (FlowLM or the Mimi
 * decoder) over {@link serveRpc}. The first call is `init`; every later call is a method of the part's service.
 *
 * @module
 */

import { openSafetensors } from "../model/safetensors.ts";
import type { PocketTtsConfig } from "../model/config.ts";
import { loadCore, type SimdVariant } from "../runtime/wasm.ts";
import { LocalFlowLm, LocalMimi } from "./local_services.ts";
import { serveRpc, transferring } from "./rpc.ts";
import type { EncoderLoading, FlowLmService, MimiService } from "./services.ts";
import { parentEndpoint } from "./worker_thread.ts";

/** What `init` receives. */
export interface WorkerInit {
  part: "flow_lm" | "mimi";
  /** The checkpoint: a local path, a URL, or its bytes. */
  weights: string | Uint8Array;
  config: PocketTtsConfig;
  simd: "auto" | SimdVariant;
  /** Int8 FlowLM linears. */
  quantize?: boolean;
  /** The wasm core when not the shipped file: a compiled module, its bytes, or its URL. */
  wasm?: WebAssembly.Module | Uint8Array | string;
  /** How the Mimi part gets its voice-cloning encoder (`"lazy"` reopens `weights`, a local path). */
  encoder?: EncoderLoading;
}

let flow: FlowLmService | null = null;
let mimi: MimiService | null = null;

function need<T>(part: T | null, name: string): T {
  if (!part) throw new Error(`worker has no ${name} part (call init first)`);
  return part;
}

// Module workers: the global scope, with no await, so the first message cannot arrive before the listener.
const parent = parentEndpoint();
serveRpc(parent instanceof Promise ? await parent : parent, {
  init: async (init: WorkerInit) => {
    const core = await loadCore({ simd: init.simd, wasm: init.wasm });
    const reader = await openSafetensors(init.weights);
    try {
      if (init.part === "flow_lm") {
        flow = await LocalFlowLm.create(core, reader, init.config, { quantize: init.quantize });
      } else {
        const path = typeof init.weights === "string" ? init.weights : undefined;
        mimi = await LocalMimi.create(core, reader, init.config, init.encoder, path);
      }
    } finally {
      await reader.close();
    }
    return core.variant;
  },
  importVoice: (bytes: Uint8Array, x0: Float32Array) => need(flow, "FlowLM").importVoice(bytes, x0),
  exportVoice: async (id: number) => {
    const bytes = await need(flow, "FlowLM").exportVoice(id);
    return transferring(bytes, [bytes.buffer as ArrayBuffer]); // a voice's KV state is MBs: moved, not copied
  },
  emptyVoice: () => need(flow, "FlowLM").emptyVoice(),
  freeVoice: (id: number) => need(flow, "FlowLM").freeVoice(id),
  openStream: () => (flow ?? need(mimi, "model")).openStream(),
  closeStream: (stream: number) => (flow ?? need(mimi, "model")).closeStream(stream),
  beginChunk: (stream: number, voiceId: number, ids: number[], maxGenLen: number, x0: Float32Array) =>
    need(flow, "FlowLM").beginChunk(stream, voiceId, ids, maxGenLen, x0),
  step: (stream: number, input: Float32Array | null, x0: Float32Array, lsdSteps: number) =>
    need(flow, "FlowLM").step(stream, input, x0, lsdSteps),
  reset: (stream: number) => need(mimi, "Mimi").reset(stream),
  decode: async (stream: number, latent: Float32Array) => {
    const audio = await need(mimi, "Mimi").decode(stream, latent);
    return transferring(audio, [audio.buffer as ArrayBuffer]);
  },
  importLatents: (latents: Float32Array, voiceId?: number) => need(flow, "FlowLM").importLatents(latents, voiceId),
  openEncoding: () => need(mimi, "Mimi").openEncoding(),
  encodeBlock: async (encoding: number, audio: Float32Array) => {
    const latents = await need(mimi, "Mimi").encodeBlock(encoding, audio);
    return transferring(latents, [latents.buffer as ArrayBuffer]);
  },
  closeEncoding: (encoding: number) => need(mimi, "Mimi").closeEncoding(encoding),
  dispose: async () => {
    await flow?.dispose();
    await mimi?.dispose();
    flow = mimi = null;
  },
});
