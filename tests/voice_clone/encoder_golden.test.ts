// The Mimi encoder against upstream's golden voice cloning (golden README §3(d)), starting from the stored
// `audio_24k`: every encoder intermediate of the first 2 latent frames, the raw latents, and — through FlowLM's
// speaker projection and voice prefill — the conditioning and the voice-state caches, all within relative 2e-5
// (README §4), for the tiny and full-size synthetic checkpoints, in each wasm variant this runtime runs. Also: block
// sizes do not change the latents, and encoding does not grow wasm memory after the first block. The full-size 2 s
// case (48000 samples, no padding) checks the latents.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { maxRelDiff, testVariants } from "../support/core.ts";
import { freshCore } from "../support/core.ts";
import { readFixture } from "../support/fixtures.ts";
import { openSafetensors } from "../../src/model/safetensors.ts";
import { loadWeightsIntoCore } from "../../src/runtime/load_weights.ts";
import { isEncoderTensor, MimiEncoder } from "../../src/runtime/mimi_encoder.ts";
import type { SimdVariant } from "../../src/runtime/wasm.ts";
import { readVoiceFile } from "../../src/voice/voice_state.ts";
import { loadFlowLM, readCase } from "../flow_lm/support.ts";
import { modelConfig, type ModelSize, transpose, weightsPath } from "../mimi/support.ts";

const TOL = 2e-5;

/** The encoder of `size` in a fresh core of `variant`. */
async function loadEncoder(size: ModelSize, variant: SimdVariant): Promise<MimiEncoder> {
  const core = await freshCore(variant);
  const reader = await openSafetensors(await weightsPath(size));
  try {
    await loadWeightsIntoCore(core, reader, isEncoderTensor);
  } finally {
    await reader.close();
  }
  return MimiEncoder.create(core, await modelConfig(size));
}

/** `[1, inner, F]` → `[F, inner]`. */
function latentRows(latents: Float32Array, inner: number): Float32Array {
  return transpose(latents, inner, latents.length / inner);
}

const cases: [ModelSize, string, string][] = [
  ["tiny", "tiny/voice_clone.safetensors", "tiny/voice_state.safetensors"],
  ["full", "full/voice_clone.safetensors", "full/voice_state.safetensors"],
  ["full", "full/voice_clone_2s.safetensors", "full/voice_state_2s.safetensors"],
];

for (const [size, caseRel, stateRel] of cases) {
  const name = caseRel.split("/")[1].replace(".safetensors", "");
  for (const variant of testVariants) {
    describe(`Mimi encoder, ${size} ${name} (${variant})`, () => {
      let ready: Promise<{ encoder: MimiEncoder; latents: Float32Array }> | null = null;
      const ctx = () =>
        ready ??= (async () => {
          const encoder = await loadEncoder(size, variant);
          const g = await readCase(caseRel);
          return { encoder, latents: encoder.encodeAll(g.f32("audio_24k")) };
        })();

      test("raw latents from audio_24k within rel 2e-5", async () => {
        const { encoder, latents } = await ctx();
        const g = await readCase(caseRel);
        const [, inner, frames] = g.shape("latents");
        assert.equal(encoder.innerDim, inner);
        assert.equal(latents.length, frames * inner, "frames = ceil(samples / 1920)");
        const d = maxRelDiff(latents, latentRows(g.f32("latents"), inner));
        assert.ok(d < TOL, `latents: rel ${d}`);
      });

      if (name === "voice_clone") {
        test("every encoder intermediate of the first 2 frames within rel 2e-5", async () => {
          const { encoder } = await ctx();
          const g = await readCase(caseRel);
          const state = encoder.createState({ maxFrames: 2 });
          state.setTaps(true);
          state.encode(g.f32("audio_24k").subarray(0, 2 * encoder.frameSamples));
          const want = [0, 1, 3, 4, 6, 7, 9, 11].map((i) => `enc.seanet.model.${i}`).concat("enc.transformer_out");
          for (const tapName of want) {
            const tap = state.tap(tapName);
            assert.ok(tap, `tap ${tapName} recorded`);
            const d = maxRelDiff(transpose(tap.data, tap.rows, tap.channels), g.f32(tapName));
            assert.ok(d < TOL, `${tapName}: rel ${d}`);
          }
          state.free();
        });

        test("block size does not change the latents; encoding does not grow memory after the first block", async () => {
          const { encoder, latents } = await ctx();
          const audio = (await readCase(caseRel)).f32("audio_24k");
          const fs = encoder.frameSamples, frames = Math.floor(audio.length / fs);
          const state = encoder.createState({ maxFrames: 3 });
          const out = new Float32Array(frames * encoder.innerDim);
          state.encodeInto(audio.subarray(0, 3 * fs), out);
          const bytes = encoder.core.memoryBytes;
          state.encodeInto(audio.subarray(3 * fs, frames * fs), out.subarray(3 * encoder.innerDim));
          assert.equal(encoder.core.memoryBytes, bytes, "wasm memory grew while encoding");
          assert.equal(state.position, 16 * frames);
          state.free();
          // Only rounding may differ (GEMM tiling follows the row count).
          const d = maxRelDiff(out, latents.subarray(0, out.length));
          assert.ok(d < 1e-5, `rel ${d}`);
        });
      }

      // The 2 s case (a whole number of frames: no padding) checks the latents; the FlowLM half is the same code.
      if (name === "voice_clone_2s") return;
      test("conditioning and voice-state caches from these latents within rel 2e-5", async () => {
        const { encoder, latents } = await ctx();
        const g = await readCase(caseRel);
        const flow = await loadFlowLM(size, variant);
        const frames = latents.length / encoder.innerDim;
        const st = flow.createState();
        try {
          const conditioning = flow.speakerProject(latents, frames);
          const dc = maxRelDiff(conditioning, g.f32("conditioning"));
          assert.ok(dc < TOL, `conditioning: rel ${dc}`);
          st.prefillEmbeddings(conditioning, { bosBeforeVoice: true });
          const want = await readVoiceFile(await readFixture(stateRel), stateRel);
          assert.ok(want.kind === "kv");
          assert.equal(st.offset, want.state.length);
          const got = st.exportVoice();
          for (let l = 0; l < flow.dims.numLayers; l++) {
            const d = maxRelDiff(got.layers[l], want.state.layers[l]);
            assert.ok(d < TOL, `layer ${l} cache: rel ${d}`);
          }
        } finally {
          st.free();
          flow.free();
        }
      });
    });
  }
}
