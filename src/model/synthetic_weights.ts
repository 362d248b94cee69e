/**
 * Deterministic synthetic checkpoints (the project's implementation of `SYNTHETIC-WEIGHTS.md` in the golden set):
 * every tensor the config implies, BF16, values from a per-tensor seeded PRNG with the scale rules of that
 * document, serialized as safetensors sorted by name. The full-size English layout gives a 219,029,196-byte file
 * whose sha256 the golden README records; tests and benchmarks generate it on demand instead of committing it.
 *
 * @module
 */
import type { PocketTtsConfig } from "./config.ts";
import { decoderOutputConvName, type ExpectedTensor, expectedTensors } from "./layout.ts";
import { planSafetensors } from "./safetensors.ts";

/** FNV-1a, 32 bits, over the UTF-8 bytes of `text`: the per-tensor seed. */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h >>> 0;
}

/** A mulberry32 stream: each call returns the next uint32. */
export function mulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t = (t + Math.imul(t ^ (t >>> 7), t | 61)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** How one tensor's values are made: `center + halfwidth · u` with u uniform in [-1, 1), or the timestep freqs. */
export type SyntheticInit = { kind: "uniform"; center: number; halfwidth: number; rule: number } | {
  kind: "freqs";
  rule: 1;
};

/** Share of the variance-preserving scale given to the SEANet decoder's output conv (rule 9). */
const OUTPUT_CONV_SCALE = 0.15;

/**
 * The rule of `SYNTHETIC-WEIGHTS.md` §2 that applies to a tensor (first match wins), with its center and halfwidth.
 *
 * @param t the tensor, as the layout describes it
 * @param outputConv the name of the SEANet decoder's last conv weight
 */
export function syntheticInit(t: ExpectedTensor, outputConv: string): SyntheticInit {
  const n = t.name;
  const u = (rule: number, center: number, halfwidth: number): SyntheticInit => ({
    kind: "uniform",
    center,
    halfwidth,
    rule,
  });
  if (/^flow_lm\.flow_net\.time_embed\.[01]\.freqs$/.test(n)) return { kind: "freqs", rule: 1 };
  if (n === "flow_lm.bos_emb" || n === "flow_lm.bos_before_voice" || n === "flow_lm.conditioner.embed.weight") {
    return u(2, 0, 1);
  }
  if (n === "flow_lm.emb_std") return u(3, 1, 0.1);
  if (n === "flow_lm.emb_mean") return u(4, 0, 0.1);
  if (n.endsWith(".mlp.3.alpha")) return u(5, 1, 0.1);
  if (/\.layer_scale_[12]\.scale$/.test(n)) return u(6, 0.1, 0.01);
  if (/\.(norm1|norm2|in_ln)\.weight$/.test(n) || n === "flow_lm.out_norm.weight") return u(7, 1, 0.1);
  if (n.endsWith(".bias")) return u(8, 0, 0.05);
  if (t.fanIn <= 0) throw new Error(`synthetic weights: no rule for "${n}"`);
  const scale = Math.sqrt(3 / t.fanIn);
  if (n === outputConv) return u(9, 0, OUTPUT_CONV_SCALE * scale);
  if (t.shape.length === 2) return u(10, 0, scale);
  if (t.shape.length === 3) return u(11, 0, scale);
  throw new Error(`synthetic weights: no rule for "${n}" of rank ${t.shape.length}`);
}

/**
 * The flow head's timestep frequencies as upstream computes them in float32:
 * `f32(exp(f32(f32(f32(-ln 10000) · i) / half)))`.
 */
export function timestepFrequencies(half = 128, maxPeriod = 10000): Float32Array {
  const out = new Float32Array(half);
  const c = Math.fround(-Math.log(maxPeriod));
  for (let i = 0; i < half; i++) out[i] = Math.exp(Math.fround(Math.fround(c * i) / half));
  return out;
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** Round a float64 to float32 (nearest-even), then to BF16 (nearest-even on the float32 bits): the BF16 bit pattern. */
export function toBf16Bits(x: number): number {
  scratchF32[0] = x;
  const b = scratchU32[0];
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * Fill `out` with the BF16 bit patterns of one synthetic tensor (row-major).
 *
 * @param name the tensor name (seeds the PRNG)
 * @param init the tensor's rule (see {@link syntheticInit})
 * @param out destination, one element per value
 */
export function fillSyntheticTensor(name: string, init: SyntheticInit, out: Uint16Array): void {
  if (init.kind === "freqs") {
    const f = timestepFrequencies(out.length);
    for (let i = 0; i < out.length; i++) out[i] = toBf16Bits(f[i]);
    return;
  }
  const { center, halfwidth } = init;
  const f32 = scratchF32;
  const u32 = scratchU32;
  let a = fnv1a32(name) | 0;
  for (let i = 0; i < out.length; i++) {
    // mulberry32, inlined for speed (100 M+ draws for the full-size model)
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t = (t + Math.imul(t ^ (t >>> 7), t | 61)) ^ t;
    const r = (t ^ (t >>> 14)) >>> 0;
    f32[0] = center + halfwidth * (((r >>> 8) / 16777216) * 2 - 1);
    const b = u32[0];
    out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
}

/** One tensor of a synthetic checkpoint: layout entry, rule and BF16 values. */
export interface SyntheticTensor {
  /** Layout entry (name, shape, role, fan-in). */
  readonly tensor: ExpectedTensor;
  /** Rule applied. */
  readonly init: SyntheticInit;
  /** BF16 bit patterns, row-major. */
  readonly data: Uint16Array;
}

/** Generate one named tensor of the synthetic checkpoint for `config` (for spot checks). */
export function syntheticTensor(config: PocketTtsConfig, name: string): SyntheticTensor {
  const tensor = expectedTensors(config).find((t) => t.name === name);
  if (!tensor) throw new Error(`synthetic weights: the config has no tensor "${name}"`);
  const init = syntheticInit(tensor, decoderOutputConvName(config));
  const data = new Uint16Array(tensor.shape.reduce((a, b) => a * b, 1));
  fillSyntheticTensor(name, init, data);
  return { tensor, init, data };
}

/**
 * The complete synthetic checkpoint for `config` as safetensors bytes (BF16, sorted by name, compact header padded
 * to 8 bytes). Values are generated straight into the output buffer: memory use is the file size.
 */
export function syntheticCheckpoint(config: PocketTtsConfig): Uint8Array {
  const tensors = expectedTensors(config);
  const outputConv = decoderOutputConvName(config);
  const plan = planSafetensors(tensors.map((t) => ({ name: t.name, dtype: "BF16" as const, shape: t.shape })));
  const out = new Uint8Array(plan.byteLength);
  out.set(plan.head);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  for (const l of plan.layout) {
    const t = byName.get(l.name)!;
    fillSyntheticTensor(
      t.name,
      syntheticInit(t, outputConv),
      new Uint16Array(out.buffer, l.start, (l.end - l.start) / 2),
    );
  }
  return out;
}

/**
 * Write the synthetic checkpoint for `config` to `path` (temporary file + rename, so a reader never sees a partial
 * file).
 */
export async function writeSyntheticCheckpoint(config: PocketTtsConfig, path: string): Promise<number> {
  const fs = await import("node:fs/promises");
  const bytes = syntheticCheckpoint(config);
  const tmp = `${path}.${Math.random().toString(36).slice(2, 10)}.tmp`;
  try {
    await fs.writeFile(tmp, bytes);
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  return bytes.length;
}
