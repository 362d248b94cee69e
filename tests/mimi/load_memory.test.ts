// The Mimi decoder at full size loads into a wasm memory close to the weights it holds: its big weights are packed
// as they arrive (planned), not held in their file form beside the packed ones.
import { test } from "node:test";
import assert from "node:assert/strict";
import { LocalMimi } from "../../src/generate/local_services.ts";
import { openSafetensors } from "../../src/model/safetensors.ts";
import { freshCore, testVariants } from "../support/core.ts";
import { modelConfig, weightsPath } from "./support.ts";

test("the full-size Mimi decoder loads into a wasm memory within 12 MB of the weights it holds", async () => {
  // Wasm memory never shrinks, so what a load needed stays. Adding every tensor in its file form first and packing
  // them all at the end left 20.4 MB beyond the 28.6 MB of packed weights; packed on arrival, about 9 MB (staging
  // blocks and the f32 panels the transformer's BF16 ones are compacted from).
  const core = await freshCore(testVariants[0]);
  const path = await weightsPath("full");
  const reader = await openSafetensors(path);
  const before = core.memoryBytes;
  const mimi = await LocalMimi.create(core, reader, await modelConfig("full"), "lazy", path);
  await reader.close();
  try {
    const [part] = await mimi.parts();
    const excess = (core.memoryBytes - before - part.weightBytes) / 1e6;
    assert.ok(part.weightBytes > 28e6, `${part.weightBytes} bytes of weights`);
    assert.ok(excess < 12, `${excess.toFixed(1)} MB beyond ${part.weightBytes} bytes of weights`);
  } finally {
    await mimi.dispose();
  }
});
