/**
 * Copying checkpoint tensors from a safetensors file into a wasm core's weight store.
 *
 * @module
 */

import type { SafetensorsReader } from "../model/safetensors.ts";
import { InvalidWeightsError } from "../errors.ts";
import type { PocketCore } from "./wasm.ts";

/**
 * Adds every tensor whose name passes `include` to `core`'s weight store, one tensor at a time (file → wasm
 * memory), largest first. Returns the number of tensors added.
 *
 * Why largest first: wasm memory never shrinks, and packing a big tensor as it arrives (a planned linear,
 * `WeightStore::plan`) leaves free blocks behind (its staging copy, the f32 panels it was compacted from). Later,
 * smaller tensors fill those blocks instead of growing the memory past what the weights need.
 *
 * @throws {InvalidWeightsError} for a tensor whose dtype the core cannot take
 */
export async function loadWeightsIntoCore(
  core: PocketCore,
  reader: SafetensorsReader,
  include: (name: string) => boolean = () => true,
): Promise<number> {
  let added = 0;
  const order = reader.tensors.filter((t) => include(t.name)).sort((a, b) => b.byteLength - a.byteLength);
  for (const info of order) {
    if (info.dtype !== "F32" && info.dtype !== "BF16" && info.dtype !== "F16") {
      throw new InvalidWeightsError(
        `${reader.source}: tensor "${info.name}" has dtype ${info.dtype}; weights must be F32, BF16 or F16`,
        {
          tensor: info.name,
          file: reader.source,
        },
      );
    }
    await core.addWeight(info.name, info.dtype, info.shape, info.byteLength, (view) => reader.readInto(info, view));
    added++;
  }
  return added;
}
