// Accuracy of the int8 FlowLM (`quantize: true`) against the exact model on the full-size synthetic checkpoint,
// with the runtime's best wasm variant: 150 teacher-forced AR steps after the 2 s voice and a 12-token text (the
// int8 model is fed the exact model's latents and the same x₀), then both latent sequences through the Mimi
// decoder. Checked: relative L2 error of `c`, the EOS logits and the latents over the first 100 steps, and the SNR
// of the int8 audio against the exact audio over all 150 frames. The figures are printed (README, issue #14).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readVoiceFile } from "../../src/voice/voice_state.ts";
import { MimiDecoder } from "../../src/runtime/mimi_decoder.ts";
import { bestSimdVariant } from "../../src/runtime/simd_detect.ts";
import { randomF32 } from "../support/core.ts";
import { readFixture } from "../support/fixtures.ts";
import { decoderCore } from "../mimi/support.ts";
import { loadFlowLM, readCase, row } from "./support.ts";

const STEPS = 150, ACCURACY_STEPS = 100;
const VOICE = "full/voice_state_2s.safetensors";

/** ‖a − b‖ / ‖b‖ over whole arrays. */
function relL2(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

/** Runs `steps` AR steps; `inputs` (teacher forcing) or, when null, each step's own latent feeds the next. */
async function trajectory(quantize: boolean, inputs: Float32Array | null) {
  const variant = bestSimdVariant()!;
  const m = await loadFlowLM("full", variant, { quantize });
  const { dModel: d, latentDim: ld } = m.dims;
  const st = m.createState();
  st.loadVoice(await readVoiceFile(await readFixture(VOICE), VOICE));
  const ids = Array.from((await readCase("full/flowlm_voice.safetensors")).i64("text_tokens"), Number);
  st.prepareChunk(ids.length);
  st.prefillText(ids);
  const c = new Float32Array(STEPS * d), eos = new Float32Array(STEPS), lat = new Float32Array(STEPS * ld);
  const fed = new Float32Array(STEPS * ld).fill(NaN);
  for (let j = 0; j < STEPS; j++) {
    if (j > 0) fed.set(inputs ? row(inputs, j, ld) : row(lat, j - 1, ld), j * ld);
    const x0 = randomF32(ld, 1000 + j).map((v) => v * Math.sqrt(0.7));
    eos[j] = st.step(row(fed, j, ld), x0, lat.subarray(j * ld, (j + 1) * ld)).eosLogit;
    c.set(m.lastC().c, j * d);
  }
  const weightBytes = m.stepWeightBytes;
  m.free();
  return { c, eos, lat, fed, d, ld, weightBytes };
}

async function decode(latents: Float32Array, ld: number): Promise<Float32Array> {
  const { core, config, mean, std } = await decoderCore("full", bestSimdVariant()!);
  const dec = MimiDecoder.create(core, config, { latentStats: { mean, std } });
  const st = dec.createState();
  const out = new Float32Array(STEPS * dec.frameSamples);
  for (let j = 0; j < STEPS; j++) {
    st.decodeInto(row(latents, j, ld), out.subarray(j * dec.frameSamples, (j + 1) * dec.frameSamples));
  }
  dec.free();
  return out;
}

test("int8 FlowLM vs exact on the full-size checkpoint: c, EOS, latents (100 steps), audio SNR (150 frames)", async () => {
  const exact = await trajectory(false, null);
  const q = await trajectory(true, exact.fed);
  const { d, ld } = exact;
  // the transformer's linears go from 2 bytes (BF16) to 1 byte per weight plus an f32 scale per output row
  const weights = 6 * (3072 + 1024 + 4096 + 4096) * 1024, rows = 6 * (3072 + 1024 + 4096 + 1024);
  assert.equal(exact.weightBytes - q.weightBytes, weights - 4 * rows);
  const n = ACCURACY_STEPS;
  const errC = relL2(q.c.subarray(0, n * d), exact.c.subarray(0, n * d));
  const errEos = relL2(q.eos.subarray(0, n), exact.eos.subarray(0, n));
  const errLat = relL2(q.lat.subarray(0, n * ld), exact.lat.subarray(0, n * ld));
  const [a, b] = [await decode(exact.lat, ld), await decode(q.lat, ld)];
  let sig = 0, noise = 0;
  for (let i = 0; i < a.length; i++) {
    sig += a[i] ** 2;
    noise += (a[i] - b[i]) ** 2;
  }
  const snr = 10 * Math.log10(sig / noise);
  console.log(
    `int8 vs exact (${bestSimdVariant()}): rel L2 c ${errC.toExponential(2)}, eos ${errEos.toExponential(2)}, ` +
      `latents ${errLat.toExponential(2)}; audio SNR ${snr.toFixed(1)} dB; step weights ${q.weightBytes} vs ` +
      `${exact.weightBytes} bytes`,
  );
  assert.ok(errC < 0.04, `c rel L2 ${errC}`);
  assert.ok(errEos < 0.04, `EOS rel L2 ${errEos}`);
  assert.ok(errLat < 0.04, `latent rel L2 ${errLat}`);
  assert.ok(snr > 26, `audio SNR ${snr} dB`);
});
