/**
 * Copying checkpoint tensors from a safetensors file into a wasm core's weight store.
 *
 * @module
 */

import type { SafetensorsReader, TensorInfo } from "../model/safetensors.ts";
import { InvalidWeightsError } from "../errors.ts";
import type { PocketCore } from "./wasm.ts";

/**
 * Adds tensors to `core`'s weight store, one at a time (file → a staging block of wasm memory → the store), and
 * returns how many were added. `select` is either a list of names, added in that order (the order the model part
 * takes them: each packed copy then lands in the blocks the tensors taken before it freed) except that each bias
 * comes just before its weight, or a filter, whose tensors are added largest first.
 *
 * Why an order at all: wasm memory never shrinks, and packing leaves free blocks behind (staging copies, the f32
 * panels a BF16 weight was compacted from, the file form of a tensor already taken). Largest first, the blocks a big
 * planned tensor's packing frees (`WeightStore::plan`) are filled by the smaller ones after it; in take order, the
 * blocks of tensors already taken coalesce and are reused by the next ones' packed copies. Either way a `.bias` comes
 * just before its `.weight`, so a planned weight packs with it on arrival.
 *
 * @throws {InvalidWeightsError} for a tensor whose dtype the core cannot take (a listed name the file lacks is
 *   skipped: the model part's constructor names it, with its expected shape)
 */
export async function loadWeightsIntoCore(
  core: PocketCore,
  reader: SafetensorsReader,
  select: ((name: string) => boolean) | readonly string[] = () => true,
): Promise<number> {
  const order = typeof select === "function"
    ? largestFirst(reader.tensors.filter((t) => select(t.name)))
    : byName(reader, select);
  for (const info of order) {
    if (info.dtype !== "F32" && info.dtype !== "BF16" && info.dtype !== "F16") {
      throw new InvalidWeightsError(
        `${reader.source}: tensor "${info.name}" has dtype ${info.dtype}; weights must be F32, BF16 or F16`,
        { tensor: info.name, file: reader.source },
      );
    }
    await core.addWeight(info.name, info.dtype, info.shape, info.byteLength, (view) => reader.readInto(info, view));
  }
  return order.length;
}

/** The file's tensors named in `names`, in that order, but a listed `X.bias` just before its `X.weight`. */
function byName(reader: SafetensorsReader, names: readonly string[]): TensorInfo[] {
  const all = new Map(reader.tensors.map((t) => [t.name, t]));
  const listed = new Set(names);
  const order = new Set<string>();
  for (const name of names) {
    const bias = name.endsWith(".weight") ? `${name.slice(0, -".weight".length)}.bias` : "";
    if (listed.has(bias)) order.add(bias);
    order.add(name);
  }
  return [...order].flatMap((name) => all.get(name) ?? []);
}

/** Largest first; a `X.bias` just before its `X.weight` (ranked by the weight's size). */
function largestFirst(tensors: TensorInfo[]): TensorInfo[] {
  const size = new Map(tensors.map((t) => [t.name, t.byteLength]));
  const rank = (t: TensorInfo) =>
    t.name.endsWith(".bias") ? size.get(`${t.name.slice(0, -5)}.weight`) ?? t.byteLength : t.byteLength;
  return tensors.sort((a, b) => rank(b) - rank(a) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
