// FlowLM and the flow head on the full-size config (synthetic weights, generated on demand) against the golden
// vectors, both wasm variants: flow head and LSD, teacher-forced steps after the 2 s voice, voice prefill from the
// audio prompt, voice import/export. One model per variant, freed at the end (about 360 MB of f32 weights).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { FlowLM } from "../../src/runtime/flow_lm.ts";
import { testVariants } from "../support/core.ts";
import { flowHeadTests, teacherForcedTest, voiceCloneTest, voiceStateTests } from "./golden_cases.ts";
import { loadFlowLM } from "./support.ts";

for (const variant of testVariants) {
  describe(`FlowLM full (${variant})`, () => {
    let built: Promise<FlowLM> | null = null;
    const model = () => (built ??= loadFlowLM("full", variant));

    test("builds from the full checkpoint: dimensions and bytes read per AR step", async () => {
      const m = await model();
      assert.deepEqual(
        [m.dims.dModel, m.dims.numHeads, m.dims.headDim, m.dims.numLayers, m.dims.ffnDim, m.dims.flowDim],
        [1024, 16, 64, 6, 4096, 512],
      );
      assert.ok(m.hasBosBeforeVoice && m.insertBosBeforeVoice);
      // transformer 75,497,472 + input_linear 32,768 + out_eos 1,024 + flow head without its time embedders
      // (cond 524,288 + input 16,384 + 6 × 1,310,720 + final 524,288 + 16,384 rows padded to 32). The checkpoint
      // is BF16, so every linear's panels are stored as BF16 (2 bytes, lossless); out_eos is f32.
      const transformer = 6 * (3072 + 1024 + 4096 + 4096) * 1024;
      const flow = 512 * 1024 + 512 * 32 + 6 * (1536 + 512 + 512) * 512 + 1024 * 512 + 32 * 512;
      assert.equal(m.stepWeightBytes, 2 * (transformer + 1024 * 32 + flow) + 4 * 1024);
      // Everything held: beside the step's weights, the time embedders (2 × (512×256 + 512×512)), the token table
      // (4001 × 1024, kept BF16), speaker_proj (1024 × 32), the norms (6 × 4 × 1024) and bos/out_norm vectors.
      const extra = 2 * (2 * (512 * 256 + 512 * 512) + 4001 * 1024 + 1024 * 32) + 4 * (6 * 4 * 1024 + 32 + 3 * 1024);
      assert.equal(m.weightBytes, m.stepWeightBytes + extra);
    });

    test("loads into a wasm memory the size of its weights (linears packed as they arrive), BF16 and int8", async () => {
      // Wasm memory never shrinks, so what a load needed stays. Packing each planned linear as it arrives keeps the
      // excess to a few staging/transient blocks and scratch (about 5 MB here; holding the whole transformer in its
      // file form first, as before, left 237 MB for 179 MB of BF16 weights and 225 MB for 104 MB of int8).
      const excess = (f: FlowLM) => (f.core.memoryBytes - f.weightBytes) / 1e6;
      const m = await model();
      assert.ok(excess(m) < 8, `BF16: ${excess(m).toFixed(1)} MB beyond ${m.weightBytes} bytes of weights`);
      const q = await loadFlowLM("full", variant, { quantize: true });
      try {
        assert.ok(excess(q) < 8, `int8: ${excess(q).toFixed(1)} MB beyond ${q.weightBytes} bytes of weights`);
      } finally {
        q.free();
      }
    });

    flowHeadTests("full", model);
    teacherForcedTest("full", "flowlm_voice", "full/voice_state_2s.safetensors", model);
    voiceStateTests("full", model);
    voiceCloneTest("full", "full/voice_clone_2s.safetensors", "full/voice_state_2s.safetensors", model);

    test("free releases the model", async () => {
      const m = await model();
      const st = m.createState();
      m.free();
      assert.throws(() => st.offset, /freed/);
      built = null;
    });
  });
}
