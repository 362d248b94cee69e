/**
 * Voice files: reading the reference's three formats and writing the current one (spec §5.2).
 *
 * A voice is a FlowLM KV-cache prefix: for each layer, K (after RoPE) and V at positions `0…T−1`.
 *
 * - **Current** (what the reference's `export_model_state` writes, and what it ships): per layer `l`,
 *   `transformer.layers.{l}.self_attn/cache` `[2, 1, T, heads, head_dim]` (K then V) and
 *   `transformer.layers.{l}.self_attn/offset` I64 `[1]` = the number of used positions (a cache may be longer
 *   than its offset; only the used prefix counts).
 * - **v1.1** (`embeddings_v2/`): the same, with `…/current_end` (any dtype, `[T]`) instead of `offset`; the
 *   offset is its length.
 * - **v1.0** (`embeddings/`): one tensor `audio_prompt` `[1, T, d_model]`, the projected voice conditioning before
 *   the transformer. It must be prefilled through the model (after `bos_before_voice`, when the config inserts it);
 *   see `FlowLMState.loadVoice` in `src/runtime/flow_lm.ts`.
 *
 * {@link serializeVoiceState} writes the current format byte for byte as the reference does (tensor order by
 * dtype size then name, compact JSON header padded with spaces, no metadata), so an imported voice exports to the
 * identical file. This module has no runtime dependencies and is browser-safe.
 *
 * @module
 */
import { InvalidVoiceError } from "../errors.ts";
import {
  type DType,
  openSafetensors,
  parseSafetensors,
  planSafetensors,
  type SafetensorsReader,
  toFloat32,
} from "../model/safetensors.ts";

/** A voice as FlowLM KV-cache contents (the used positions only). */
export interface VoiceKvState {
  /** FlowLM layers. */
  numLayers: number;
  /** Attention heads. */
  numHeads: number;
  /** Head size. */
  headDim: number;
  /** Used positions T (the cache offset). */
  length: number;
  /** Per layer, `[2, T, heads, head_dim]`: K (after RoPE) then V. */
  layers: Float32Array[];
}

/** A KV-cache voice file (current or v1.1 format). */
export interface KvVoiceFile {
  /** Discriminant. */
  kind: "kv";
  /** `"current"` (`offset` tensors) or `"v1.1"` (`current_end` tensors). */
  format: "current" | "v1.1";
  /** The voice. */
  state: VoiceKvState;
  /** Where it was read from (for messages). */
  source: string;
}

/** A v1.0 audio-prompt voice file: conditioning rows to prefill. */
export interface AudioPromptVoiceFile {
  /** Discriminant. */
  kind: "audio_prompt";
  /** Conditioning rows T. */
  frames: number;
  /** Row width (the model's d_model). */
  dModel: number;
  /** `[T, d_model]` row-major. */
  conditioning: Float32Array;
  /** Where it was read from (for messages). */
  source: string;
}

/** Any voice file this library reads. */
export type VoiceFile = KvVoiceFile | AudioPromptVoiceFile;

/** The FlowLM dimensions a voice must match. */
export interface VoiceModelShape {
  /** FlowLM layers. */
  numLayers: number;
  /** Attention heads. */
  numHeads: number;
  /** Head size (`d_model / heads`). */
  headDim: number;
}

const KV_NAME = /^transformer\.layers\.(\d+)\.self_attn\/(cache|offset|current_end)$/;
const FLOATS: readonly DType[] = ["F32", "BF16", "F16", "F64"];

function fail(source: string, message: string): never {
  throw new InvalidVoiceError(`${source}: ${message}`, "invalid_voice", { file: source });
}

function intValue(source: string, name: string, dtype: DType, bytes: Uint8Array): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case "I64": {
      const v = dv.getBigInt64(0, true);
      if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) fail(source, `tensor "${name}" holds ${v}`);
      return Number(v);
    }
    case "I32":
      return dv.getInt32(0, true);
    default:
      return fail(source, `tensor "${name}" has dtype ${dtype}, expected I64`);
  }
}

/**
 * Reads a voice file from a reader: a KV state (current or v1.1 format) or a v1.0 audio prompt.
 *
 * @throws {InvalidVoiceError} when the file is neither, or its tensors are inconsistent (missing layers, mixed
 *   offsets, an offset beyond the cache, NaN in the used positions, …)
 */
export async function parseVoiceFile(reader: SafetensorsReader): Promise<VoiceFile> {
  const source = reader.source;
  const names = reader.names();
  if (names.length === 0) fail(source, "the file holds no tensors");
  if (names.includes("audio_prompt")) {
    if (names.length !== 1) fail(source, `an audio-prompt voice holds only "audio_prompt", found ${names.join(", ")}`);
    const info = reader.get("audio_prompt")!;
    const shape = info.shape.length === 3 && info.shape[0] === 1 ? info.shape.slice(1) : info.shape;
    if (shape.length !== 2 || shape[0] < 1) {
      fail(source, `"audio_prompt" has shape [${info.shape}], expected [1, frames, d_model]`);
    }
    if (!FLOATS.includes(info.dtype)) fail(source, `"audio_prompt" has dtype ${info.dtype}`);
    const conditioning = toFloat32(await reader.tensor(info));
    if (conditioning.some((v) => !Number.isFinite(v))) fail(source, `"audio_prompt" holds NaN or infinite values`);
    return { kind: "audio_prompt", frames: shape[0], dModel: shape[1], conditioning, source };
  }
  const byLayer = new Map<number, { cache?: string; offset?: string; currentEnd?: string }>();
  for (const n of names) {
    const m = KV_NAME.exec(n);
    if (!m) fail(source, `unexpected tensor "${n}": not a voice state (transformer.layers.{l}.self_attn/cache …)`);
    const l = Number(m[1]);
    const e = byLayer.get(l) ?? {};
    if (m[2] === "cache") e.cache = n;
    else if (m[2] === "offset") e.offset = n;
    else e.currentEnd = n;
    byLayer.set(l, e);
  }
  const numLayers = byLayer.size;
  let format: "current" | "v1.1" | undefined;
  let heads = 0, headDim = 0, length = -1;
  const layers: Float32Array[] = [];
  for (let l = 0; l < numLayers; l++) {
    const e = byLayer.get(l);
    if (!e) fail(source, `layer ${l} is missing (layers ${[...byLayer.keys()].sort((a, b) => a - b).join(", ")})`);
    const p = `transformer.layers.${l}.self_attn`;
    if (!e.cache) fail(source, `"${p}/cache" is missing`);
    if (e.offset && e.currentEnd) fail(source, `layer ${l} has both "offset" and "current_end"`);
    if (!e.offset && !e.currentEnd) fail(source, `layer ${l} has neither "${p}/offset" nor "${p}/current_end"`);
    const f = e.offset ? "current" : "v1.1";
    if (format && f !== format) fail(source, `layers mix the "offset" and "current_end" formats`);
    format = f;
    const cache = reader.get(e.cache)!;
    if (cache.shape.length !== 5 || cache.shape[0] !== 2 || cache.shape[1] !== 1) {
      fail(source, `"${e.cache}" has shape [${cache.shape}], expected [2, 1, positions, heads, head_dim]`);
    }
    if (!FLOATS.includes(cache.dtype)) fail(source, `"${e.cache}" has dtype ${cache.dtype}`);
    const [, , cap, h, d] = cache.shape;
    let off: number;
    if (e.offset) {
      const o = reader.get(e.offset)!;
      if (o.numel !== 1) fail(source, `"${e.offset}" has shape [${o.shape}], expected [1]`);
      off = intValue(source, e.offset, o.dtype, await reader.read(o));
    } else {
      const c = reader.get(e.currentEnd!)!;
      if (c.shape.length !== 1) fail(source, `"${e.currentEnd}" has shape [${c.shape}], expected [positions]`);
      off = c.shape[0];
    }
    if (l === 0) [heads, headDim, length] = [h, d, off];
    if (h !== heads || d !== headDim) {
      fail(source, `layer ${l} has ${h} heads × ${d}, layer 0 has ${heads} × ${headDim}`);
    }
    if (off !== length) fail(source, `layer ${l} has offset ${off}, layer 0 has ${length}`);
    if (off > cap) fail(source, `layer ${l}: offset ${off} is beyond its cache of ${cap} positions`);
    const all = toFloat32(await reader.tensor(cache));
    const row = h * d, n = off * row;
    const kv = new Float32Array(2 * n);
    kv.set(all.subarray(0, n), 0);
    kv.set(all.subarray(cap * row, cap * row + n), n);
    for (let i = 0; i < kv.length; i++) {
      if (!Number.isFinite(kv[i])) {
        const pos = Math.floor((i % n) / row);
        fail(source, `layer ${l}: ${i < n ? "K" : "V"} at used position ${pos} is not finite`);
      }
    }
    layers.push(kv);
  }
  if (length < 1) fail(source, "the voice state is empty (offset 0)");
  return { kind: "kv", format: format!, state: { numLayers, numHeads: heads, headDim, length, layers }, source };
}

/**
 * Reads a voice file from bytes, a path or a URL (see {@link parseVoiceFile}).
 *
 * @param source the file's bytes, a local path / `file:` URL, or an http(s) URL
 * @param name a name for messages when `source` is bytes
 * @throws {InvalidVoiceError} for a malformed or unrecognised voice file
 */
export async function readVoiceFile(source: Uint8Array | string | URL, name?: string): Promise<VoiceFile> {
  let reader: SafetensorsReader;
  try {
    reader = source instanceof Uint8Array ? parseSafetensors(source, name ?? "<voice>") : await openSafetensors(source);
  } catch (cause) {
    const where = name ?? (source instanceof Uint8Array ? "<voice>" : String(source));
    throw new InvalidVoiceError(
      `${where}: not a readable safetensors voice file: ${(cause as Error).message}`,
      "invalid_voice",
      {
        file: where,
        cause,
      },
    );
  }
  try {
    return await parseVoiceFile(reader);
  } finally {
    await reader.close();
  }
}

/**
 * Checks that a voice fits a model's FlowLM dimensions.
 *
 * @throws {InvalidVoiceError} with code `"voice_model_mismatch"` naming both shapes
 */
export function checkVoiceFits(voice: VoiceFile, model: VoiceModelShape): void {
  const dModel = model.numHeads * model.headDim;
  if (voice.kind === "audio_prompt") {
    if (voice.dModel !== dModel) {
      throw new InvalidVoiceError(
        `${voice.source}: the audio prompt has rows of width ${voice.dModel}, but the model's d_model is ${dModel}: ` +
          `the voice was made for another model`,
        "voice_model_mismatch",
        { file: voice.source },
      );
    }
    return;
  }
  const s = voice.state;
  if (s.numLayers !== model.numLayers || s.numHeads !== model.numHeads || s.headDim !== model.headDim) {
    throw new InvalidVoiceError(
      `${voice.source}: the voice state has ${s.numLayers} layers of ${s.numHeads} heads × ${s.headDim}, but the ` +
        `model has ${model.numLayers} layers of ${model.numHeads} heads × ${model.headDim}: the voice was made for ` +
        `another model`,
      "voice_model_mismatch",
      { file: voice.source },
    );
  }
}

/** A voice state's dimensions: {@link VoiceKvState} without its values. */
export type VoiceKvShape = Omit<VoiceKvState, "layers">;

/**
 * Serialises a voice state in the current format, byte-identical to the reference's `export_model_state` +
 * safetensors writer for the same contents.
 */
export function serializeVoiceState(state: VoiceKvState): Uint8Array {
  const n = 2 * state.length * state.numHeads * state.headDim;
  return serializeVoiceStateWith(state, (l, dest) => {
    const kv = state.layers[l];
    if (kv?.length !== n) {
      throw new InvalidVoiceError(`voice state layer ${l} holds ${kv?.length ?? 0} values, expected ${n}`);
    }
    dest.set(new Uint8Array(kv.buffer, kv.byteOffset, kv.byteLength));
  });
}

/**
 * {@link serializeVoiceState} for a state of `shape` whose values `readLayer` writes: layer `l`'s K then V
 * (`[2, T, heads, head_dim]`, little-endian f32) straight into their place in the file. The file is the only buffer:
 * a voice's state is MBs, and a copy of it beside the file would add to the peak memory of every voice load.
 */
export function serializeVoiceStateWith(
  shape: VoiceKvShape,
  readLayer: (layer: number, dest: Uint8Array) => void,
): Uint8Array {
  const specs: { name: string; dtype: DType; shape: number[]; layer: number; cache: boolean }[] = [];
  for (let l = 0; l < shape.numLayers; l++) {
    const p = `transformer.layers.${l}.self_attn`;
    const dims = [2, 1, shape.length, shape.numHeads, shape.headDim];
    specs.push({ name: `${p}/cache`, dtype: "F32", shape: dims, layer: l, cache: true });
    specs.push({ name: `${p}/offset`, dtype: "I64", shape: [1], layer: l, cache: false });
  }
  const plan = planSafetensors(specs);
  const out = new Uint8Array(plan.byteLength);
  out.set(plan.head);
  const byName = new Map(specs.map((s) => [s.name, s]));
  for (const { name, start, end } of plan.layout) {
    const spec = byName.get(name)!;
    if (spec.cache) readLayer(spec.layer, out.subarray(start, end));
    else new DataView(out.buffer, start, 8).setBigInt64(0, BigInt(shape.length), true);
  }
  return out;
}
