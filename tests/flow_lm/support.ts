/**
 * Shared helpers of the FlowLM tests: building FlowLM (tiny or full synthetic weights) in a fresh core, and reading
 * golden case files.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { FlowLM, type FlowLMOptions } from "../../src/runtime/flow_lm.ts";
import { parseConfigText, type PocketTtsConfig } from "../../src/model/config.ts";
import { type DType, openSafetensors, parseSafetensors, toBigInt64, toFloat32 } from "../../src/model/safetensors.ts";
import type { SimdVariant } from "../../src/runtime/wasm.ts";
import { fixtureUrl, readFixture, readFixtureJson } from "../support/fixtures.ts";
import { freshCore } from "../support/core.ts";
import { ensureFullWeights, fullConfigPath } from "../support/full_weights.ts";

/** The two golden configs. */
export type Size = "tiny" | "full";

/** The config of a size. */
export async function loadConfig(size: Size): Promise<PocketTtsConfig> {
  const path = size === "full" ? fullConfigPath() : fileURLToPath(fixtureUrl("model/tiny/config.json"));
  return parseConfigText(await readFile(path, "utf8"), { source: path });
}

/** FlowLM of a size in a fresh core of `variant`. */
export async function loadFlowLM(size: Size, variant: SimdVariant, options: FlowLMOptions = {}): Promise<FlowLM> {
  const path = size === "full" ? await ensureFullWeights() : fileURLToPath(fixtureUrl("model/tiny/model.safetensors"));
  const reader = await openSafetensors(path);
  try {
    return await FlowLM.fromReader(await freshCore(variant), reader, await loadConfig(size), options);
  } finally {
    await reader.close();
  }
}

/** A golden case file's tensors: F32 as `Float32Array`, I64 as `BigInt64Array`. */
export interface GoldenCase {
  f32(name: string): Float32Array;
  i64(name: string): BigInt64Array;
  shape(name: string): readonly number[];
}

/** Reads `tests/fixtures/<rel>`. */
export async function readCase(rel: string): Promise<GoldenCase> {
  const r = parseSafetensors(await readFixture(rel), rel);
  const data = new Map<string, { dtype: DType; bytes: Uint8Array; shape: readonly number[] }>();
  for (const info of r.tensors) {
    data.set(info.name, { dtype: info.dtype, bytes: await r.read(info), shape: info.shape });
  }
  const get = (n: string) => {
    const t = data.get(n);
    if (!t) throw new Error(`${rel}: no tensor ${n}`);
    return t;
  };
  return { f32: (n) => toFloat32(get(n)), i64: (n) => toBigInt64(get(n)), shape: (n) => get(n).shape };
}

/** A case's `meta` from `tests/fixtures/<size>/flowlm_meta.json` (copied from the golden MANIFEST). */
export async function caseMeta<T = Record<string, unknown>>(size: Size, name: string): Promise<T> {
  const m = await readFixtureJson<{ cases: Record<string, { meta: T }> }>(`${size}/flowlm_meta.json`);
  return m.cases[name].meta;
}

/** Rows `[i·w, (i+1)·w)` of a flat array. */
export function row(a: Float32Array, i: number, w: number): Float32Array {
  return a.subarray(i * w, (i + 1) * w);
}
