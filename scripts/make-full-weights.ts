/**
 * Generate the full-size synthetic checkpoint (219,029,196 bytes, BF16) into `tests/fixtures/full/model.safetensors`
 * and check its sha256 against the golden value. Does nothing when the file is already there and correct.
 *
 *     deno run -A scripts/make-full-weights.ts      (or: bun scripts/make-full-weights.ts)
 */
import { ensureFullWeights, FULL_WEIGHTS_SHA256 } from "../tests/support/full_weights.ts";

const t0 = performance.now();
const path = await ensureFullWeights();
console.log(`${path}: sha256 ${FULL_WEIGHTS_SHA256} ok (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
