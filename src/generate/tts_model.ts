/**
 * `TTSModel`: the public entry point. Loads a model (built-in language or a directory/URL), its voices, and runs
 * requests through {@link generateFrames} on two model parts that live either in two workers (each its own wasm
 * instance and weights, latents passed as messages) or interleaved on this thread.
 *
 * @module
 */

import { ConfigError, PocketTtsError, VoiceCloningUnavailableError } from "../errors.ts";
import { type AssetOptions, fetchAsset, type ResolvedModel, resolveModel } from "../model/assets.ts";
import { openCache } from "../model/cache.ts";
import { builtinLanguage, DEFAULT_LANGUAGE, PREDEFINED_VOICES, predefinedVoiceUrl } from "../model/builtin_configs.ts";
import type { PocketTtsConfig } from "../model/config.ts";
import { openSafetensors } from "../model/safetensors.ts";
import type { ProgressCallback } from "../model/download.ts";
import { sharedMemoryAvailable, type SimdVariant, type WasmSource } from "../runtime/wasm.ts";
import { SentencePieceTokenizer } from "../text/tokenizer.ts";
import type { NormalizeLanguage } from "../text/normalize_en.ts";
import { type ChunkReport, generateFrames, type PlanItem, SAMPLES_PER_FRAME } from "./generation.ts";
import type { Caption } from "./captions.ts";
import { speechItemsFromDeltas, type StreamedItem, type TextDeltas } from "./text_stream.ts";
import { planSpeech, type SpeechItem } from "../text/speech_plan.ts";
import { StreamChunker } from "../text/stream_chunker.ts";
import { breakFrames } from "../text/ssml.ts";
import { GaussianNoise } from "./noise.ts";
import { RoundRobinScheduler } from "./scheduler.ts";
import type { FlowLmService, MimiService, VoiceRef } from "./services.ts";
import { createServices, type Services, workersAvailable } from "./create_services.ts";
import {
  type AudioSamples,
  BoundedCache,
  cloneKey,
  type CloneOptions,
  isAudioSamples,
  isSafetensorsFile,
  promptAudio,
} from "../voice/clone.ts";
import { encodeVoice } from "../voice/encode_voice.ts";

/**
 * Whether the checkpoint really holds a Mimi encoder: present and not zeroed (the ungated release zeroes it).
 * Checked on the first encoder weight of a local file; for other sources the resolution's answer stands.
 */
async function encoderPresent(model: ResolvedModel): Promise<boolean> {
  if (!model.weights.path) return true;
  const reader = await openSafetensors(model.weights.path);
  try {
    const probe = reader.tensors.find((t) => t.name.startsWith("mimi.encoder.") && t.name.endsWith(".weight"));
    return probe !== undefined && (await reader.read(probe)).some((b) => b !== 0);
  } finally {
    await reader.close();
  }
}

/** Options of {@link TTSModel.load}. */
export interface TTSModelLoadOptions {
  /** A published language (default `"english"`); ignored when `model` is given. */
  language?: string;
  /** A model directory or URL holding `config.json` (+ weights, tokenizer). */
  model?: string | URL;
  /**
   * Download cache directory (default `$POCKET_TTS_CACHE` or the platform cache; the Cache API in browsers; memory
   * where nothing can be written).
   */
  cacheDir?: string;
  /** Hugging Face token for the gated weights (default `$HF_TOKEN`). */
  token?: string;
  /** Never use the network. */
  offline?: boolean;
  /** Download progress. */
  onProgress?: ProgressCallback;
  /** Notices that are not errors (e.g. voice cloning unavailable). Default: `console.warn`. */
  onNotice?: (message: string) => void;
  /**
   * Where the model runs: `2`: FlowLM and Mimi in two workers (each its own wasm instance, frames pipelined); `1`: the
   * whole model in one worker (with `threads`); `0`: on this thread (with `threads`). `"auto"` (default): two workers
   * where workers exist (the highest throughput), else this thread. For the earliest first audio, use `1` (or `0`
   * with `threads: 2`): prefill and every frame then use both cores; two workers come close (see `threads`). Every
   * mode gives the same audio bit for bit.
   */
  workers?: "auto" | 0 | 1 | 2;
  /**
   * With `workers` 0 or 1: how many threads the core's kernels use. `N > 1` loads the threads build (shared memory;
   * `sharedMemoryAvailable()`) and starts `N − 1` helper workers that take shares of every large matrix product:
   * prefill, AR steps and Mimi frames all use N cores. Default: 2 for `workers: 1` where shared memory exists and the
   * machine has two cores or more, else 1; `"auto"` with `threads > 1` means `workers: 1`.
   *
   * With two workers: `N > 1` gives the FlowLM worker `N − 1` helpers for the work during which the other worker
   * waits: prefills (text, voice prompts, cloned voices), a clone's encoder (then held by that worker) and each
   * chunk's first frame, when no other stream is generating; later frames keep one thread per worker, both cores being
   * busy then. Default (also for `"auto"` without `threads`): 2 where shared memory exists, the machine has two cores
   * or more and `wasm` is not given (first audio ~20 % sooner, a clone ~35 % faster, for a few MB), else 1.
   *
   * @example
   * ```ts
   * const tts = await TTSModel.load({ workers: 0, threads: 2 }); // an edge function's two cores, no workers
   * ```
   */
  threads?: number;
  /**
   * With two workers, how many of the Mimi decoder's stages run in the FlowLM worker (the rest in the other one), so
   * that both carry about equal work per frame. Default `"auto"`: chosen from the model's shape, and when the stage
   * at the cut (or the one before it) is a feed-forward half, which keeps no state between frames, both workers hold
   * it and it runs in either, frame by frame, so as to even out their measured busy times. A number is an exact
   * placement; `0` runs the whole decoder in the second worker. Any value gives the same audio.
   */
  mimiSplit?: "auto" | number;
  /** The wasm variant (default `"auto"`, or `$POCKET_TTS_SIMD`). */
  simd?: "auto" | SimdVariant;
  /**
   * Int8 FlowLM transformer (the reference's `quantize`): about half the weight bytes per AR step, faster, not
   * bit-exact (its accuracy against F32 is in the README). Default false. The flow head and Mimi stay F32.
   */
  quantize?: boolean;
  /**
   * The wasm core, for platforms that cannot fetch the shipped file beside the module (e.g. Cloudflare Workers, which
   * import `.wasm` as a `WebAssembly.Module`): a module, its bytes or its URL. Default: the shipped file of `simd`.
   */
  wasm?: WasmSource;
  /**
   * The model-part worker script, when the package was bundled into an app (bundlers do not copy it): e.g. the npm
   * build's `bundle/pocket_tts_worker.mjs` served beside the app. Default: the script shipped beside the module.
   */
  workerUrl?: string | URL;
}

/** Where the model runs for the `workers` and `threads` load options (checked; see {@link TTSModelLoadOptions}). */
function placement(
  workers: "auto" | 0 | 1 | 2,
  threads?: number,
  givenWasm = false,
): { workers: 0 | 1 | 2; threads: number; prefillThreads: number } {
  if (!(["auto", 0, 1, 2] as unknown[]).includes(workers)) {
    throw new ConfigError(`workers must be "auto", 0, 1 or 2, got ${String(workers)}`);
  }
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) {
    throw new ConfigError(`threads must be a positive integer, got ${threads}`);
  }
  // deno-lint-ignore no-explicit-any
  const cores = (globalThis as any).navigator?.hardwareConcurrency ?? 2;
  const canThread = sharedMemoryAvailable() && workersAvailable() && cores >= 2;
  if (workers === 2 && (threads ?? 1) > 1 && !sharedMemoryAvailable()) {
    throw new ConfigError("threads > 1 needs shared WebAssembly memory (SharedArrayBuffer)");
  }
  if (workers === "auto") {
    if (!workersAvailable()) return { workers: 0, threads: threads ?? 1, prefillThreads: 1 };
    if ((threads ?? 1) > 1) return { workers: 1, threads: threads!, prefillThreads: 1 };
    workers = 2;
  }
  // A given wasm module is one build: the prefill helpers are chosen by default only with the shipped files.
  if (workers === 2) return { workers, threads: 1, prefillThreads: threads ?? (canThread && !givenWasm ? 2 : 1) };
  return { workers, threads: threads ?? (workers === 1 && canThread ? 2 : 1), prefillThreads: 1 };
}

/** Options of one request ({@link TTSModel.generate}, {@link TTSModel.stream}). */
export interface GenerateOptions {
  /** The voice (from {@link TTSModel.loadVoice}); default: the language's default voice, or none for custom models. */
  voice?: Voice;
  /** Noise temperature: x₀ has std √temperature (default: the config's, else 0.7). */
  temperature?: number;
  /** Flow-head LSD decoding steps (default 1). */
  lsdSteps?: number;
  /** Raw EOS logit threshold (default −4). */
  eosThreshold?: number;
  /** Frames generated after the end of speech (default: config, else 5 for ≤ 4 words, 3 otherwise). */
  framesAfterEos?: number;
  /** Maximum tokens per text chunk (default 50). */
  maxTokens?: number;
  /**
   * Text normalisation before the reference's text preparation: `"en"` writes out English numbers, currency,
   * dates, times, units, abbreviations, URLs and symbols (see `normalizeEnglish`). Default: none, like the reference.
   */
  normalize?: NormalizeLanguage;
  /** Seed of the built-in Gaussian sampler (default: random). */
  seed?: number;
  /** Fills each FlowLM call's x₀ (32 values, already scaled), in call order; replaces the built-in sampler. */
  noise?: (x0: Float32Array) => void;
  /** Aborts the request (within one frame). */
  signal?: AbortSignal;
  /** Warnings (e.g. a chunk that reached its maximum length without EOS). Default: `console.warn`. */
  onWarning?: (message: string) => void;
  /** Receives a report per text chunk (tokens, EOS step, frames). */
  onChunk?: (report: ChunkReport) => void;
}

/** A voice loaded into a model: use it in {@link GenerateOptions.voice}, save it with {@link TTSModel.exportVoice}. */
export class Voice {
  /** The name or source it was loaded from. */
  readonly name: string;
  /** KV-cache positions it fills. */
  readonly positions: number;
  /** @internal */
  readonly ref: VoiceRef;
  /** @internal voice-state file bytes (current format), kept when the model cannot export them at once */
  readonly state: Uint8Array | null;
  /** @internal the model it belongs to */
  readonly owner: object;

  /** @internal use {@link TTSModel.loadVoice}. */
  constructor(name: string, ref: VoiceRef, state: Uint8Array | null, owner: object) {
    this.name = name;
    this.positions = ref.positions;
    this.ref = ref;
    this.state = state;
    this.owner = owner;
  }
}

/**
 * A loaded Pocket TTS model.
 *
 * @example
 * ```ts
 * import { encodeWav, TTSModel } from "@pocket/tts";
 *
 * const tts = await TTSModel.load();                       // English, downloaded on first use
 * const voice = await tts.loadVoice("alba");
 * for await (const frame of tts.stream("Hello world.", { voice })) {
 *   // 1920 samples (80 ms at 24 kHz) per frame, as soon as each is decoded
 * }
 * const audio = await tts.generate("Hello again.", { voice });
 * await Deno.writeFile("hello.wav", encodeWav(audio, tts.sampleRate));
 * tts.dispose();
 * ```
 */
export class TTSModel {
  /** Output sample rate (24 kHz). */
  readonly sampleRate: number;
  /** Names of the voices the model's language offers (empty for custom models). */
  readonly predefinedVoices: readonly string[];
  /** False when the voice-cloning encoder weights are absent (ungated weights). */
  readonly hasVoiceCloning: boolean;
  /** The resolved model (config and files). */
  readonly model: ResolvedModel;
  /** Whether the two model parts run in workers. */
  readonly usesWorkers: boolean;

  #flow: FlowLmService;
  #mimi: MimiService;
  #stop: (() => Promise<void>) | undefined;
  #tokenizer: SentencePieceTokenizer;
  #assetOptions: AssetOptions;
  #language: string | null;
  #defaultVoice: Promise<Voice> | null = null;
  #scheduler: RoundRobinScheduler;
  #active = 0;
  #disposed = false;
  /** Clones by content key (see `src/voice/clone.ts`), so cloning the same recording twice is instant. */
  #clones = new BoundedCache<Promise<Voice>>(16);
  #cloneKeys = new WeakMap<Voice, string>();
  #freed = new WeakSet<Voice>();

  private constructor(
    model: ResolvedModel,
    tokenizer: SentencePieceTokenizer,
    services: Services & { workers: boolean },
    language: string | null,
    assetOptions: AssetOptions,
  ) {
    this.model = model;
    this.sampleRate = model.config.mimi.sample_rate;
    this.hasVoiceCloning = model.hasVoiceCloning;
    this.predefinedVoices = language ? PREDEFINED_VOICES : [];
    this.#tokenizer = tokenizer;
    this.#flow = services.flow;
    this.#mimi = services.mimi;
    this.#stop = services.stop;
    this.usesWorkers = services.workers;
    this.#scheduler = new RoundRobinScheduler(services.workers ? 2 : 1, { yieldBetweenTurns: !services.workers });
    this.#language = language;
    this.#assetOptions = assetOptions;
  }

  /**
   * Loads a model: resolves (and downloads when needed) its config, weights and tokenizer, and starts its two
   * model parts.
   *
   * @throws {ConfigError} unknown language or invalid config; {@link OfflineError} offline with missing files;
   *   {@link InvalidWeightsError} corrupt or mismatched weights; {@link WasmCoreError} no WebAssembly SIMD
   */
  static async load(options: TTSModelLoadOptions = {}): Promise<TTSModel> {
    const onNotice = options.onNotice ?? ((m: string) => console.warn(m));
    const assetOptions: AssetOptions = {
      cache: openCache(options.cacheDir, undefined, onNotice), // one cache for the model and every voice
      token: options.token,
      offline: options.offline,
      onProgress: options.onProgress,
      onNotice,
    };
    const language = options.model === undefined ? options.language ?? DEFAULT_LANGUAGE : null;
    const model = await resolveModel(
      language !== null ? { language } : { model: String(options.model) },
      assetOptions,
    );
    const tokenizer = SentencePieceTokenizer.fromModel(await model.tokenizer.read());
    const hasVoiceCloning = model.hasVoiceCloning && await encoderPresent(model);
    const wantWorkers = options.workers ?? "auto";
    const { threads, workers: mode, prefillThreads } = placement(
      wantWorkers,
      options.threads,
      options.wasm !== undefined,
    );
    let workers = mode > 0;
    const serviceOptions = {
      simd: options.simd ?? "auto",
      quantize: options.quantize ?? false,
      wasm: options.wasm,
      workerUrl: options.workerUrl === undefined ? undefined : new URL(options.workerUrl),
      encoder: hasVoiceCloning ? "lazy" as const : "none" as const,
      mimiSplit: options.mimiSplit,
      threads,
      prefillThreads,
    };
    let services;
    try {
      services = await createServices(model, { workers, ...serviceOptions });
    } catch (e) {
      // "auto" where the worker script cannot be started (e.g. an app bundle without it): one thread instead.
      if (!(wantWorkers === "auto" && workers && (e as PocketTtsError)?.code === "worker_failed")) throw e;
      onNotice(`${(e as Error).message}; running both model parts on this thread`);
      workers = false;
      services = await createServices(model, { workers, ...serviceOptions, threads: 1, prefillThreads: 1 });
    }
    // Downloaded weights held in memory are not kept alive by the model: the wasm instances hold what they need.
    const weights = model.weights.path !== null ? model.weights : {
      ...model.weights,
      read: async () => await (await fetchAsset(model.weights.ref, assetOptions)).read(),
    };
    return new TTSModel(
      { ...model, weights, hasVoiceCloning },
      tokenizer,
      { ...services, workers },
      language,
      assetOptions,
    );
  }

  /** The model's config. */
  get config(): PocketTtsConfig {
    return this.model.config;
  }

  /**
   * Loads a voice: a predefined name (e.g. `"alba"`, downloaded on first use), a path or URL of a voice file or of a
   * recording, the bytes of either, or decoded audio `{ samples, sampleRate }`. Voice files may be voice states
   * (current or v1.1 format) or v1.0 `audio_prompt` conditionings. Anything else is taken as a recording (WAV, FLAC,
   * MP3, Ogg; told by content, not by name) and cloned: the Mimi encoder turns its first `maxSeconds` into the voice.
   * Cloning the same recording again on this model returns the cached voice at once.
   *
   * @example
   * ```ts
   * const voice = await tts.loadVoice("me.wav", { maxSeconds: 10 });
   * await Deno.writeFile("me.safetensors", tts.exportVoice(voice)); // reusable here and upstream
   * ```
   * @throws {ConfigError} unknown voice name; {@link InvalidVoiceError} for a voice of another model;
   *   {@link UnsupportedAudioError} / {@link InvalidAudioError} for a recording that cannot be read;
   *   {@link VoiceCloningUnavailableError} for a recording when the weights have no encoder (ungated release)
   */
  async loadVoice(voice: string | URL | Uint8Array | AudioSamples, options: CloneOptions = {}): Promise<Voice> {
    this.#checkOpen();
    if (isAudioSamples(voice)) return await this.#clone(voice, "<samples>", options);
    let bytes: Uint8Array;
    let name: string;
    if (voice instanceof Uint8Array) {
      bytes = voice;
      name = "<bytes>";
    } else {
      const spec = String(voice);
      name = spec;
      const isName = /^[a-z_]+$/.test(spec);
      if (isName && !this.#language) {
        throw new ConfigError(`unknown voice "${spec}": a custom model has no predefined voices; give a voice file`);
      }
      const source = isName ? predefinedVoiceUrl(this.#language!, spec) : spec;
      bytes = await (await fetchAsset(source, this.#assetOptions)).read();
    }
    if (!isSafetensorsFile(bytes)) return await this.#clone(bytes, name, options);
    const x0 = new Float32Array(32); // the prefill's latent is discarded, so its noise does not matter
    const ref = await this.#flow.importVoice(bytes, x0);
    return new Voice(name, ref, await this.#voiceFile(ref), this);
  }

  /** A voice cloned from a recording: decoded and resampled here, encoded by the Mimi part, prefilled by FlowLM. */
  async #clone(input: Uint8Array | AudioSamples, name: string, options: CloneOptions): Promise<Voice> {
    const key = await cloneKey(input, options);
    let voice = this.#clones.get(key);
    if (!voice) {
      voice = (async () => {
        const audio = await promptAudio(input, this.sampleRate, options);
        // Never fall back to another voice: without the encoder, cloning is an error.
        if (!this.hasVoiceCloning) throw new VoiceCloningUnavailableError();
        const parts = {
          flow: this.#flow,
          mimi: this.#mimi,
          scheduler: this.#scheduler,
          frameSamples: SAMPLES_PER_FRAME,
        };
        const ref = await encodeVoice(parts, audio, options.onProgress); // in turns: other streams go on meanwhile
        const cloned = new Voice(name, ref, await this.#voiceFile(ref), this);
        this.#cloneKeys.set(cloned, key);
        return cloned;
      })();
      this.#clones.set(key, voice);
      voice.catch(() => this.#clones.delete(key));
    }
    return await voice;
  }

  /**
   * The voice as a voice-state safetensors file in the reference's current format (loadable here and upstream).
   *
   * @throws {PocketTtsError} `invalid_voice` for a voice of another model or one already freed, `disposed` after
   *   {@link dispose}
   */
  exportVoice(voice: Voice): Uint8Array {
    this.#checkOpen();
    this.#checkVoice(voice);
    if (this.#freed.has(voice)) throw new PocketTtsError("invalid_voice", "this voice was freed");
    return voice.state?.slice() ?? this.#flow.exportVoiceNow!(voice.ref.id);
  }

  /** What a new voice keeps for {@link exportVoice}: its file, unless FlowLM runs here and exports it at once. */
  async #voiceFile(ref: VoiceRef): Promise<Uint8Array | null> {
    return this.#flow.exportVoiceNow ? null : await this.#flow.exportVoice(ref.id);
  }

  /**
   * Frees a voice's state in the model (for servers that load and drop voices). Streams already using it must have
   * ended; using it afterwards fails with a typed error.
   *
   * @example
   * ```ts
   * const voice = await tts.loadVoice(bytes);
   * await tts.generate("Hi.", { voice });
   * await tts.freeVoice(voice);
   * ```
   */
  async freeVoice(voice: Voice): Promise<void> {
    this.#checkVoice(voice);
    const key = this.#cloneKeys.get(voice);
    if (key !== undefined) this.#clones.delete(key); // a clone of the same recording must not return a freed voice
    this.#freed.add(voice);
    if (!this.#disposed) await this.#flow.freeVoice(voice.ref.id);
  }

  /** Generates the whole audio of `text` (24 kHz mono float samples). */
  async generate(text: string, options: GenerateOptions = {}): Promise<Float32Array> {
    return (await this.generateWithCaptions(text, options)).audio;
  }

  /**
   * Generates the whole audio of `text` with its captions: each chunk's text and its span in samples (exact at
   * chunk level; the model gives no word timing). A separate method, so `generate` keeps returning a plain
   * `Float32Array` for its existing users.
   *
   * @example
   * ```ts
   * const { audio, captions } = await tts.generateWithCaptions("Hello. How are you?", { voice });
   * await Deno.writeTextFile("speech.vtt", toWebVtt(captions, tts.sampleRate));
   * ```
   */
  async generateWithCaptions(
    text: string,
    options: GenerateOptions = {},
  ): Promise<{ audio: Float32Array; captions: Caption[] }> {
    const frames: Float32Array[] = [];
    const captions: Caption[] = [];
    const onChunk = (r: ChunkReport) => {
      captions.push({ text: r.text, start: r.start, end: r.end });
      options.onChunk?.(r);
    };
    for await (const f of this.stream(text, { ...options, onChunk })) frames.push(f);
    const audio = new Float32Array(frames.length * SAMPLES_PER_FRAME);
    frames.forEach((f, i) => audio.set(f, i * SAMPLES_PER_FRAME));
    return { audio, captions };
  }

  /**
   * Streams the audio of text that arrives over time — an LLM's answer, token by token — as {@link stream} does
   * for whole text. `text` is an `AsyncIterable<string>` or a `ReadableStream<string>` of arbitrary deltas.
   * Speech starts as soon as the first chunk is decided: chunks follow a rule that depends only on the text (see
   * `StreamChunker`: the first sentence alone, then sentence ends once a chunk holds ≥ 20 tokens, never more than
   * `maxTokens`), so the same text and seed give the same samples however the text was split. SSML (a stream
   * starting with `<speak>`) and `normalize` work as in {@link stream}.
   *
   * Text is read only when the generator needs the next chunk, and audio only as fast as it is consumed; aborting
   * `signal` or leaving the loop stops the generation and cancels the text source.
   *
   * @example
   * ```ts
   * async function* llm() { yield "Hel"; yield "lo there. How"; yield " are you?"; }
   * for await (const frame of tts.streamText(llm(), { voice })) play(frame);
   * ```
   *
   * @throws {InvalidTextError} a stream without text, or a delta that is not a string
   * @throws {SsmlError} malformed SSML or an unsupported element
   */
  async *streamText(text: TextDeltas, options: GenerateOptions = {}): AsyncGenerator<Float32Array> {
    this.#checkOpen();
    const cfg = this.model.config;
    const chunker = new StreamChunker(this.#tokenizer, {
      maxTokens: options.maxTokens ?? 50,
      normalize: options.normalize,
      removeSemicolons: cfg.remove_semicolons,
      onWarning: options.onWarning ?? ((m: string) => console.warn(m)),
    });
    // Stops the text source when the request ends for any reason (done, error, abort, consumer gone).
    const cancel = new AbortController();
    const onAbort = () => cancel.abort(options.signal!.reason);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const items = speechItemsFromDeltas(text, chunker, cancel.signal);
    try {
      yield* this.#generate(this.#planItems(items), options);
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      cancel.abort(new PocketTtsError("aborted", "the speech stream ended"));
    }
  }

  /** Speech items with breaks turned into whole frames of silence. */
  async *#planItems(items: AsyncIterable<StreamedItem> | Iterable<SpeechItem>): AsyncGenerator<PlanItem> {
    for await (const item of items) {
      yield item.type === "break"
        ? { type: "break", frames: breakFrames(item.ms, this.sampleRate, SAMPLES_PER_FRAME) }
        : item;
    }
  }

  /**
   * Streams the audio of `text`: one `Float32Array` of 1920 samples (80 ms) per generated latent, as soon as it is
   * decoded. Concurrent streams on one model each own their state and are interleaved frame by frame, round-robin
   * (so each one's first audio comes early); a stream's audio is the same alone or among others. Leaving the loop
   * early (or aborting `signal`) stops the generation within one frame and frees the stream's state.
   *
   * Text starting with `<speak>` is the SSML subset (`<break>`, `<p>`, `<s>`): a break is exact silence of the
   * whole number of frames nearest its time. `onChunk` reports each chunk (with its span in samples) once its last
   * frame has been yielded.
   *
   * @throws {InvalidTextError} empty text
   * @throws {SsmlError} malformed SSML or an unsupported element
   */
  async *stream(text: string, options: GenerateOptions = {}): AsyncGenerator<Float32Array> {
    this.#checkOpen();
    const cfg = this.model.config;
    const items = planSpeech(this.#tokenizer, text, {
      maxTokens: options.maxTokens ?? 50,
      padWithSpacesForShortInputs: cfg.pad_with_spaces_for_short_inputs,
      removeSemicolons: cfg.remove_semicolons,
      normalize: options.normalize,
    });
    yield* this.#generate(this.#planItems(items), options);
  }

  /** Runs planned items through the generator on this request's own streams. */
  async *#generate(items: AsyncIterable<PlanItem>, options: GenerateOptions): AsyncGenerator<Float32Array> {
    const cfg = this.model.config;
    const voice = options.voice ?? await this.#defaultVoiceOrEmpty();
    if (voice) this.#checkVoice(voice);
    const temperature = options.temperature ?? cfg.default_temperature ?? 0.7;
    if (!(temperature >= 0)) throw new ConfigError(`temperature must be ≥ 0, got ${temperature}`);
    const lsdSteps = options.lsdSteps ?? 1;
    if (!Number.isInteger(lsdSteps) || lsdSteps < 1) throw new ConfigError(`lsdSteps must be a positive integer`);
    const sampler = new GaussianNoise(options.seed ?? Math.floor(Math.random() * 2 ** 32), temperature);
    const nextNoise = options.noise ?? ((x0: Float32Array) => void sampler.next(x0));
    const warn = options.onWarning ?? ((m: string) => console.warn(m));

    const voiceRef = voice ? voice.ref : await this.#flow.emptyVoice();
    this.#active++;
    const streams = Promise.all([this.#flow.openStream(), this.#mimi.openStream()]);
    streams.catch(() => {});
    try {
      const [flowStream, mimiStream] = await streams;
      const reports: ChunkReport[] = [];
      let reported = 0;
      let yielded = 0; // samples yielded so far
      for await (
        const frame of generateFrames(this.#flow, this.#mimi, {
          items,
          voiceId: voiceRef.id,
          flowStream,
          mimiStream,
          scheduler: this.#scheduler,
          eosThreshold: options.eosThreshold ?? -4,
          framesAfterEos: options.framesAfterEos ?? cfg.model_recommended_frames_after_eos ?? undefined,
          lsdSteps,
          nextNoise,
          onWarning: warn,
          signal: options.signal,
          maxAhead: this.usesWorkers ? 2 : 0,
        }, reports)
      ) {
        // A chunk is reported once all its frames were yielded: frames arrive in order and a chunk's `end` grows as
        // each of its frames is queued, so a chunk ending at or before this frame's start is complete.
        // (`?.` would skip evaluating `reported++`, so the index moves outside the call)
        for (; reported < reports.length && reports[reported].end <= yielded; reported++) {
          options.onChunk?.(reports[reported]);
        }
        yielded += frame.length;
        yield frame;
      }
      for (; reported < reports.length; reported++) options.onChunk?.(reports[reported]);
    } finally {
      this.#active--;
      // Every call on the streams has settled (generateFrames waits for its producer), so they can go.
      if (!this.#disposed) { // (a disposed model has freed them already)
        await streams.then(([f, m]) => Promise.all([this.#flow.closeStream(f), this.#mimi.closeStream(m)]))
          .catch(() => {});
      }
    }
  }

  /** Streams being generated right now (each holds its own state). */
  get activeStreams(): number {
    return this.#active;
  }

  /** Terminates the workers and frees every wasm instance. The model cannot be used afterwards. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    void Promise.allSettled([this.#flow.dispose(), this.#mimi.dispose()]).then(() => this.#stop?.());
  }

  #checkOpen(): void {
    if (this.#disposed) throw new PocketTtsError("disposed", "this TTSModel has been disposed");
  }

  #checkVoice(voice: Voice): void {
    if (!(voice instanceof Voice) || voice.owner !== this) {
      throw new PocketTtsError("invalid_voice", "this voice was loaded by another TTSModel; load it with this one");
    }
  }

  async #defaultVoiceOrEmpty(): Promise<Voice | null> {
    if (!this.#language) return null;
    const name = builtinLanguage(this.#language)?.defaultVoice;
    if (!name) return null;
    this.#defaultVoice ??= this.loadVoice(name);
    return await this.#defaultVoice;
  }
}
