/**
 * Starting the two model parts: in two threads (each its own wasm instance and weights; the reference's two-thread
 * design without shared memory), or both in one instance: on one core of this thread (edge functions, or on request)
 * or, with `threads > 1`, on the threads build whose kernels helper threads share (`core_helpers.ts`), either on this
 * thread or in one worker (`workers` true), which keeps the caller's thread free.
 *
 * The threads are module workers (Deno, Bun, browsers) or Node's `worker_threads`, started from `worker.ts`
 * beside this module (`worker.js` in the npm build), from `pocket_tts_worker.mjs` beside a bundle
 * (`shipped_file.ts`), or from the URL the caller gives.
 *
 * @module
 */

import { ConfigError, PocketTtsError } from "../errors.ts";
import type { ResolvedModel } from "../model/assets.ts";
import { openSafetensors } from "../model/safetensors.ts";
import { shippedFileUrl } from "../runtime/shipped_file.ts";
import { loadCore, type SimdVariant, type WasmSource } from "../runtime/wasm.ts";
import { startCoreHelpers } from "./core_helpers.ts";
import { LocalFlowLm, LocalMimi } from "./local_services.ts";
import { RpcClient } from "./rpc.ts";
import type { EncoderLoading, FlowLmService, MimiPartInfo, MimiService, PendingFrame, VoiceRef } from "./services.ts";
import type { DecodeInput, WorkerInit, WorkerReady } from "./worker.ts";
import { chooseMimiSplit, sharedStage, SwingBalance } from "./mimi_split.ts";
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
  /**
   * With workers: how many of the Mimi decoder's stages (`mimiDecoderPlan`) the FlowLM worker runs before the other
   * worker runs the rest; 0 = the whole decoder in the second worker. Default `"auto"` (`chooseMimiSplit`).
   */
  mimiSplit?: number | "auto";
  /**
   * Whether a position-wise stage next to the cut is held by both workers and balanced frame by frame
   * (`sharedStage`). Default: with the automatic cut only (a numeric `mimiSplit` is an exact placement).
   */
  shareStage?: boolean;
  /**
   * Threads the core's kernels use (`> 1`: the threads build with `threads − 1` helpers). With `workers`, `> 1` means
   * one worker holding the whole model and its helpers instead of two workers.
   */
  threads?: number;
  /**
   * With two workers: `> 1` puts the FlowLM worker on the threads build with `prefillThreads − 1` helpers that take
   * shares of its prefills only (text, voice prompts, cloned latents: work that finds the other worker idle, and
   * decides when the first audio comes); its steps and decoder stages stay on one thread. Default 1.
   */
  prefillThreads?: number;
}

/** The started parts; `stop` ends what they share (the core's helper threads), after both are disposed. */
export interface Services {
  flow: FlowLmService;
  mimi: MimiService;
  stop?: () => Promise<void>;
}

/** Starts FlowLM and the Mimi decoder for `model`. */
export async function createServices(model: ResolvedModel, options: CreateServicesOptions): Promise<Services> {
  const weights = model.weights.path ?? await model.weights.read();
  const threads = options.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1) {
    throw new ConfigError(`threads must be a positive integer (got ${threads})`);
  }
  if (!options.workers) {
    const core = await loadCore({ simd: options.simd, wasm: options.wasm, threads: threads > 1 });
    const helpers = threads > 1
      ? await startCoreHelpers(core, threads - 1, options.workerUrl ?? defaultWorkerUrl())
      : null;
    const reader = await openSafetensors(weights);
    try {
      return {
        flow: await LocalFlowLm.create(core, reader, model.config, { quantize: options.quantize }),
        mimi: await LocalMimi.create(core, reader, model.config, options.encoder, model.weights.path ?? undefined),
        stop: helpers ? () => helpers.terminate() : undefined,
      };
    } catch (e) {
      await helpers?.terminate();
      throw e;
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
  const init = { weights: shared, config: model.config, simd: options.simd, wasm, quantize: options.quantize };
  if (threads > 1) {
    // One worker: the whole model on the threads build, its helpers started from inside it.
    const w = await startWorker(url, { ...init, flow: true, threads });
    try {
      await w.rpc.call("loadMimi", [{
        stages: { from: 0, to: w.ready.plan.length },
        encoder: options.encoder ?? "none",
      }]);
    } catch (e) {
      await stop(w);
      throw e;
    }
    return {
      flow: new WorkerFlowLm(w),
      mimi: new PipelineMimi([w.rpc], { parts: [[0, 0]], flowWorker: 0 }, w.rpc, () => stop(w)),
    };
  }
  const started = await Promise.allSettled([
    startWorker(url, { ...init, flow: true, threads: options.prefillThreads ?? 1, helpers: "prefill" }),
    startWorker(url, { ...init, flow: false }),
  ]);
  const [flowWorker, mimiWorker] = started.map((r) => r.status === "fulfilled" ? r.value : null);
  // Through `dispose`: a FlowLM worker's helpers must leave the pool before its thread ends (`core_helpers.ts`).
  const stopAll = () => Promise.all([flowWorker && stop(flowWorker), mimiWorker && stop(mimiWorker)]);
  if (!flowWorker || !mimiWorker) {
    await stopAll();
    throw (started.find((r) => r.status === "rejected") as PromiseRejectedResult).reason;
  }
  // The FlowLM worker also runs the decoder's first `cut` stages, so both carry about the same work per frame; a
  // position-wise stage next to the cut is held by both and balanced frame by frame (`sharedStage`, `SwingBalance`).
  const plan = mimiWorker.ready.plan;
  // Each worker loads its stage ranges in order (answering each part's index); one worker's last part gets the
  // voice-cloning encoder: the FlowLM worker's when it has a prefill helper (which then splits the encoder's products
  // too: a clone's encoding and prefill, one after the other on two threads, finish sooner than side by side on one
  // each), else the second worker's.
  const loadAll = async (w: PartWorker, ranges: [number, number][], encoder: EncoderLoading) => {
    const parts: number[] = [];
    for (const [i, [from, to]] of ranges.entries()) {
      const enc = i === ranges.length - 1 ? encoder : "none";
      parts.push(await w.rpc.call<number>("loadMimi", [{ stages: { from, to }, encoder: enc }]));
    }
    return parts;
  };
  let layout: MimiLayout;
  let encodeInFlow = false;
  try {
    const auto = options.mimiSplit === undefined || options.mimiSplit === "auto";
    const cut = auto
      ? chooseMimiSplit(plan, flowWorker.ready.stepWeightBytes!)
      : checkSplit(options.mimiSplit as number, plan.length);
    const s = (options.shareStage ?? auto) ? sharedStage(plan, cut) : null;
    const [front, back]: [number, number][][] = s === null
      ? [cut > 0 ? [[0, cut]] : [], [[cut, plan.length]]]
      : [[[0, s], [s, s + 1]], [[s, s + 1], [s + 1, plan.length]]];
    encodeInFlow = flowWorker.ready.helpers > 0 && front.length > 0;
    const encoder = options.encoder ?? "none";
    const [inFlow, inMimi] = await Promise.all([
      loadAll(flowWorker, front, encodeInFlow ? encoder : "none"),
      loadAll(mimiWorker, back, encodeInFlow ? "none" : encoder),
    ]);
    layout = {
      parts: [...inFlow.map((p) => [0, p] as [number, number]), ...inMimi.map((p) => [1, p] as [number, number])],
      flowWorker: 0,
    };
    // The shared stage's copies: the FlowLM worker's last part and the other worker's first.
    if (s !== null) layout.shared = { parts: [inFlow.length - 1, inFlow.length], balance: new SwingBalance() };
  } catch (e) {
    await stopAll();
    throw e;
  }
  return {
    flow: new WorkerFlowLm(flowWorker),
    mimi: new PipelineMimi(
      [flowWorker.rpc, mimiWorker.rpc],
      layout,
      (encodeInFlow ? flowWorker : mimiWorker).rpc,
      () => Promise.all([stop(flowWorker), stop(mimiWorker)]),
    ),
  };
}

function checkSplit(cut: number, stages: number): number {
  if (!Number.isInteger(cut) || cut < 0 || cut >= stages) {
    throw new ConfigError(`mimiSplit must be "auto" or an integer in 0…${stages - 1}, got ${cut}`);
  }
  return cut;
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

/** A started worker, its RPC client and what its `init` answered. */
interface PartWorker {
  thread: ModelThread;
  rpc: RpcClient;
  ready: WorkerReady;
  stopped?: Promise<void>;
}

async function startWorker(url: URL, init: WorkerInit): Promise<PartWorker> {
  const thread = await startThread(url);
  const rpc = new RpcClient(thread.endpoint);
  thread.onFailure((message) => {
    rpc.failAll(new PocketTtsError("worker_failed", `model worker (${url.href}) failed: ${message}`));
  });
  try {
    return { thread, rpc, ready: await rpc.call<WorkerReady>("init", [init]) };
  } catch (e) {
    thread.terminate();
    throw e;
  }
}

/** Frees the worker's wasm state and ends it; once (the FlowLM and Mimi services may share a worker). */
function stop(w: PartWorker): Promise<void> {
  w.stopped ??= (async () => {
    try {
      await w.rpc.call("dispose");
    } catch {
      // a worker that failed or was stopped has nothing left to free
    } finally {
      w.thread.terminate();
      w.rpc.failAll(new PocketTtsError("disposed", "the TTSModel was disposed"));
    }
  })();
  return w.stopped;
}

/** FlowLM in a worker. */
class WorkerFlowLm implements FlowLmService {
  #w: PartWorker;
  constructor(w: PartWorker) {
    this.#w = w;
  }
  importVoice(bytes: Uint8Array, x0: Float32Array): Promise<VoiceRef> {
    return this.#w.rpc.call("flow.importVoice", [bytes, x0]);
  }
  exportVoice(id: number): Promise<Uint8Array> {
    return this.#w.rpc.call("flow.exportVoice", [id]);
  }
  emptyVoice(): Promise<VoiceRef> {
    return this.#w.rpc.call("flow.emptyVoice");
  }
  freeVoice(id: number): Promise<void> {
    return this.#w.rpc.call("flow.freeVoice", [id]);
  }
  openStream(): Promise<number> {
    return this.#w.rpc.call("flow.openStream");
  }
  closeStream(stream: number): Promise<void> {
    return this.#w.rpc.call("flow.closeStream", [stream]);
  }
  beginChunk(stream: number, voiceId: number, ids: number[], maxGenLen: number, x0: Float32Array): Promise<void> {
    return this.#w.rpc.call("flow.beginChunk", [stream, voiceId, ids, maxGenLen, x0]);
  }
  step(stream: number, input: Float32Array | null, x0: Float32Array, lsdSteps: number) {
    return this.#w.rpc.call<{ latent: Float32Array; eosLogit: number }>("flow.step", [stream, input, x0, lsdSteps]);
  }
  importLatents(latents: Float32Array, voiceId?: number): Promise<VoiceRef> {
    return this.#w.rpc.call("flow.importLatents", [latents, voiceId]);
  }
  helperChunks(): Promise<number> {
    return this.#w.rpc.call("helperChunks");
  }
  dispose(): Promise<void> {
    return stop(this.#w);
  }
}

/**
 * Where a {@link PipelineMimi}'s parts live: `parts` in stage order as `[worker, part index in that worker]`; with a
 * shared stage, `shared.parts` are the positions in `parts` of its two copies (a frame runs one of them) (never the
 * first part); `flowWorker`: the worker that also runs FlowLM.
 */
interface MimiLayout {
  parts: [number, number][];
  shared?: { parts: [number, number]; balance: SwingBalance };
  flowWorker: number;
}

/** A stream's ids on every part, and per worker the promise that its previous call was posted. */
interface PipelineStream {
  ids: number[];
  posted: Promise<void>[];
}

/**
 * The Mimi decoder as a pipeline of parts in workers (one part: the whole decoder, in the second worker or in the
 * threads build's one; with two workers, the first stages in the FlowLM worker, a position-wise stage next to the cut
 * possibly in both). A stream has its own state in each part. A frame's activation goes from one worker to the next
 * as a transferred buffer, handed on as soon as the earlier worker answers; consecutive parts in one worker run in
 * one call. Calls reach each worker in the order they were made: a worker's call is posted only after the previous
 * call for that worker and stream was posted, so a `reset` never overtakes a frame still in an earlier part, while
 * it needs not wait for work of other streams (a later part resets while the first one still runs a prefill).
 */
class PipelineMimi implements MimiService {
  #workers: RpcClient[];
  #layout: MimiLayout;
  #encoder: RpcClient;
  #stop: () => Promise<unknown>;
  #streams = new Map<number, PipelineStream>();
  #next = 1;

  constructor(workers: RpcClient[], layout: MimiLayout, encoder: RpcClient, stop: () => Promise<unknown>) {
    this.#workers = workers;
    this.#layout = layout;
    this.#encoder = encoder;
    this.#stop = stop;
    // The first stages can take a step's latent where they live with FlowLM (not when the whole decoder is in the
    // other worker).
    if (layout.parts[0][0] !== layout.flowWorker) this.decodeStep = undefined;
  }

  async openStream(): Promise<number> {
    const ids = await Promise.all(
      this.#layout.parts.map(([w, part]) => this.#workers[w].call<number>("mimi.openStream", [part])),
    );
    const id = this.#next++;
    this.#streams.set(id, { ids, posted: this.#workers.map(() => Promise.resolve()) });
    return id;
  }

  /** The stream's ids, or a rejection (never a synchronous throw) when it is not open. */
  #stream(id: number): PipelineStream | Promise<never> {
    const s = this.#streams.get(id);
    return s ?? Promise.reject(new PocketTtsError("stream_closed", `stream ${id} is not open`));
  }

  /** Posts `call` to worker `w` once `input` is ready and the stream's previous call to that worker was posted. */
  #post<T>(
    s: PipelineStream,
    w: number,
    input: Promise<unknown>,
    call: (rpc: RpcClient, x: unknown) => Promise<T>,
  ): Promise<T> {
    let posted!: () => void;
    const before = s.posted[w];
    s.posted[w] = new Promise<void>((r) => posted = r);
    return Promise.all([input, before]).then(
      ([x]) => {
        try {
          return call(this.#workers[w], x);
        } finally {
          posted();
        }
      },
      (e) => {
        posted();
        throw e;
      },
    );
  }

  /** The stream's `[part, id]` pairs in each worker that holds parts (all of them, or those a frame runs through). */
  #chains(s: PipelineStream, only?: number[]): [number, [number, number][]][] {
    const chains: [number, [number, number][]][] = [];
    for (const i of only ?? this.#layout.parts.keys()) {
      const [w, part] = this.#layout.parts[i];
      if (chains.at(-1)?.[0] !== w) chains.push([w, []]);
      chains.at(-1)![1].push([part, s.ids[i]]);
    }
    return chains;
  }

  /** Runs `method` on every part of the stream, in each worker in order with the stream's other calls. */
  #everyPart(stream: number, method: string): Promise<void> {
    const s = this.#stream(stream);
    if (s instanceof Promise) return s;
    const done = this.#chains(s).map(([w, chain]) =>
      this.#post(s, w, Promise.resolve(), (rpc) => rpc.call(method, [chain]))
    );
    return Promise.all(done).then(() => {});
  }

  closeStream(stream: number): Promise<void> {
    if (!this.#streams.has(stream)) return Promise.resolve();
    const done = this.#everyPart(stream, "mimi.closeStream");
    this.#streams.delete(stream);
    return done;
  }

  reset(stream: number): Promise<void> {
    return this.#everyPart(stream, "mimi.reset");
  }

  decode(stream: number, latent: Float32Array): Promise<Float32Array> {
    return this.#decode(stream, latent, null);
  }

  decodeStep: MimiService["decodeStep"] = (stream: number, flowStream: number): PendingFrame => {
    let commit!: () => void, cancel!: () => void;
    const gate = new Promise<void>((resolve, reject) => {
      commit = resolve;
      cancel = () => reject(new PocketTtsError("aborted", "the step ended its chunk: its frame is not decoded"));
    });
    gate.catch(() => {});
    return { frame: this.#decode(stream, { stepOf: flowStream }, gate), commit, cancel };
  };

  /** A frame through the parts, its first worker's call posted at once; with `gate`, the next ones only after it. */
  #decode(stream: number, latent: DecodeInput, gate: Promise<void> | null): Promise<Float32Array> {
    const s = this.#stream(stream);
    if (s instanceof Promise) return s;
    const { parts, shared } = this.#layout;
    let route = [...parts.keys()];
    if (shared) {
      const skip = shared.parts[shared.balance.next() ? 1 : 0];
      route = route.filter((i) => i !== skip);
    }
    let x: Promise<unknown> = Promise.resolve(latent);
    for (const [i, [w, chain]] of this.#chains(s, route).entries()) {
      if (i === 1 && gate) x = Promise.all([x, gate]).then(([out]) => out);
      x = this.#post(s, w, x, async (rpc, input) => {
        const a = input as DecodeInput;
        const transfer = a instanceof Float32Array ? [a.buffer as ArrayBuffer] : [];
        const r = await rpc.call<{ out: Float32Array; served: number }>("mimi.decode", [chain, a], transfer);
        shared?.balance.served(w as 0 | 1, r.served);
        return r.out;
      });
    }
    if (shared) x = x.then((out) => (shared.balance.frame(), out));
    return x as Promise<Float32Array>;
  }

  async parts(): Promise<MimiPartInfo[]> {
    return (await Promise.all(this.#workers.map((w) => w.call<MimiPartInfo[]>("mimi.parts")))).flat();
  }

  openEncoding(): Promise<number> {
    return this.#encoder.call("mimi.openEncoding");
  }
  encodeBlock(encoding: number, audio: Float32Array): Promise<Float32Array> {
    return this.#encoder.call("mimi.encodeBlock", [encoding, audio]);
  }
  closeEncoding(encoding: number): Promise<void> {
    return this.#encoder.call("mimi.closeEncoding", [encoding]);
  }

  dispose(): Promise<void> {
    return this.#stop().then(() => {});
  }
}
