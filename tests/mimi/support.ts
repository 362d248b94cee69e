/**
 * Shared setup of the Mimi decoder tests: a core of a given variant with the decoder-side `mimi.*` tensors of the
 * tiny or full-size synthetic checkpoint, and the golden `mimi_decode` case.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { fixtureUrl } from "../support/fixtures.ts";
import { ensureFullWeights, fullConfigPath } from "../support/full_weights.ts";
import { freshCore } from "../support/core.ts";
import { parseConfigText, type PocketTtsConfig } from "../../src/model/config.ts";
import { openSafetensors, type SafetensorsReader } from "../../src/model/safetensors.ts";
import { loadWeightsIntoCore } from "../../src/runtime/load_weights.ts";
import type { PocketCore, SimdVariant } from "../../src/runtime/wasm.ts";

/** The two golden model sizes. */
export type ModelSize = "tiny" | "full";

/** Tensors the decoder takes (the encoder side stays out of the store). */
export function isDecoderTensor(name: string): boolean {
  return /^mimi\.(decoder\.|decoder_transformer\.|quantizer\.|upsample\.)/.test(name);
}

/** Config of a model size. */
export async function modelConfig(size: ModelSize): Promise<PocketTtsConfig> {
  const path = size === "full" ? fullConfigPath() : fileURLToPath(fixtureUrl("model/tiny/config.json"));
  return parseConfigText(await readFile(path, "utf8"), { source: path });
}

/** Path of a model size's checkpoint (the full one is generated on demand). */
export function weightsPath(size: ModelSize): Promise<string> {
  return size === "full"
    ? ensureFullWeights()
    : Promise.resolve(fileURLToPath(fixtureUrl("model/tiny/model.safetensors")));
}

/**
 * A fresh core of `variant` (or `into`) whose store holds the decoder-side tensors of `size`, plus the latent
 * statistics.
 */
export async function decoderCore(
  size: ModelSize,
  variant: SimdVariant,
  into?: PocketCore,
): Promise<{ core: PocketCore; config: PocketTtsConfig; mean: Float32Array; std: Float32Array }> {
  const core = into ?? await freshCore(variant);
  const reader = await openSafetensors(await weightsPath(size));
  try {
    await loadWeightsIntoCore(core, reader, isDecoderTensor);
    const mean = await reader.float32("flow_lm.emb_mean");
    const std = await reader.float32("flow_lm.emb_std");
    return { core, config: await modelConfig(size), mean, std };
  } finally {
    await reader.close();
  }
}

/** The golden `mimi_decode` case of a model size. */
export async function goldenCase(size: ModelSize): Promise<SafetensorsReader> {
  return await openSafetensors(fileURLToPath(fixtureUrl(`${size}/mimi_decode.safetensors`)));
}

/** `[rows × cols]` → `[cols × rows]`. */
export function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}
