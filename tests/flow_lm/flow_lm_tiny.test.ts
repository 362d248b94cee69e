// FlowLM and the flow head on the tiny config against the golden vectors (README §3(a), (b), (d)), both wasm
// variants: flow head and LSD, teacher-forced prefill + AR steps after a voice and with none, voice prefill from
// an audio prompt, voice import/export; plus state handling (clone, copy, capacity, errors).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type FlowLM, maxGenLen } from "../../src/runtime/flow_lm.ts";
import { readVoiceFile } from "../../src/voice/voice_state.ts";
import { readFixture } from "../support/fixtures.ts";
import { maxRelDiff, testVariants } from "../support/core.ts";
import { flowHeadTests, teacherForcedTest, voiceCloneTest, voiceStateTests } from "./golden_cases.ts";
import { loadFlowLM } from "./support.ts";

test("max_gen_len = ceil((N/3 + 2)·12.5) for the golden chunks (7, 12, 20, 38, 50 tokens)", () => {
  // golden MANIFEST: e2e chunks (7 → 55, 20 → 109, 50 → 234, 38 → 184) and flowlm cases (12 → 75)
  assert.deepEqual([7, 12, 20, 38, 50].map((n) => maxGenLen(n)), [55, 75, 109, 184, 234]);
});

for (const variant of testVariants) {
  describe(`FlowLM tiny (${variant})`, () => {
    let built: Promise<FlowLM> | null = null;
    const model = () => (built ??= loadFlowLM("tiny", variant));

    flowHeadTests("tiny", model);
    teacherForcedTest("tiny", "flowlm_voice", "tiny/voice_state.safetensors", model);
    teacherForcedTest("tiny", "flowlm_text_only_temp0", null, model);
    voiceStateTests("tiny", model);
    voiceCloneTest("tiny", "tiny/voice_clone.safetensors", "tiny/voice_state.safetensors", model);

    test("clone copies only the used prefix; chunks from a copied voice are independent and repeatable", async () => {
      const m = await model();
      const voice = m.createState();
      voice.loadVoice(await readVoiceFile(await readFixture("tiny/voice_state.safetensors")));
      const a = voice.clone();
      assert.deepEqual([a.offset, a.capacity], [59, 59]);
      assert.equal(a.prepareChunk(12), 75);
      assert.equal(a.capacity, 146);
      const ids = [2994, 578, 262, 285, 277, 267, 1115, 263, 17, 3999, 1024, 4];
      const x0 = new Float32Array(32).fill(0.25);
      a.prefillText(ids);
      const bos = new Float32Array(32).fill(NaN);
      const first = a.step(bos, x0);
      const second = a.step(first.latent, x0);
      assert.equal(voice.offset, 59, "the voice is untouched");
      // reuse a's buffers for the next chunk: copy the voice back in, capacity is kept
      a.copyFrom(voice);
      assert.deepEqual([a.offset, a.capacity], [59, 146]);
      a.prefillText(ids);
      const again = a.step(bos, x0);
      assert.deepEqual(again.latent, first.latent);
      assert.equal(again.eosLogit, first.eosLogit);
      assert.ok(maxRelDiff(a.step(again.latent, x0).latent, second.latent) === 0);
      voice.free();
      a.free();
    });

    test("a step past the planned capacity grows the cache; reset keeps the buffers", async () => {
      const m = await model();
      const st = m.createState();
      st.prefillText([1, 2, 3]);
      assert.deepEqual([st.offset, st.capacity], [3, 3]);
      const x0 = new Float32Array(32);
      let inp: Float32Array = new Float32Array(32).fill(NaN);
      for (let i = 0; i < 5; i++) inp = st.step(inp, x0).latent;
      assert.equal(st.offset, 8);
      assert.ok(st.capacity >= 8);
      const cap = st.capacity;
      st.reset();
      assert.deepEqual([st.offset, st.capacity], [0, cap]);
      st.free();
      assert.throws(() => st.offset, (e: Error) => e.name === "WasmCoreError" && /freed/.test(e.message));
    });

    test("a voice for another model, or made with other weights, is a typed error", async () => {
      const m = await model();
      const st = m.createState();
      const full = await readVoiceFile(await readFixture("full/voice_state_2s.safetensors"), "full voice");
      assert.throws(
        () => st.loadVoice(full),
        (e: Error & { code?: string }) =>
          e.name === "InvalidVoiceError" && e.code === "voice_model_mismatch" &&
          /6 layers of 16 heads × 64/.test(e.message) && /2 layers of 4 heads × 16/.test(e.message),
      );
      const fullPrompt = await readVoiceFile(await readFixture("full/voice_audio_prompt.safetensors"), "prompt");
      assert.throws(
        () => st.loadVoice(fullPrompt),
        (e: Error & { code?: string }) => e.code === "voice_model_mismatch",
      );
      const tiny = await readVoiceFile(await readFixture("tiny/voice_state.safetensors"), "tampered");
      assert.equal(tiny.kind, "kv");
      if (tiny.kind !== "kv") return;
      // another model's weights: position 0 (bos_before_voice) no longer matches
      for (let i = 0; i < 64; i++) tiny.state.layers[0][i] *= -1;
      assert.throws(
        () => st.loadVoice(tiny),
        (e: Error & { code?: string }) => e.code === "voice_model_mismatch" && /other weights/.test(e.message),
      );
      st.loadVoice(tiny, { verifyModel: false });
      assert.equal(st.offset, 59);
      st.free();
    });

    test("bad inputs are clear errors", async () => {
      const m = await model();
      const st = m.createState();
      assert.throws(() => st.prefillText([4001]), /token id 4001 out of range/);
      assert.throws(() => st.step(new Float32Array(31), new Float32Array(32)), RangeError);
      assert.throws(
        () => st.prefillText([]),
        (e: Error) => e.name === "WasmCoreError" && /at least one/.test(e.message),
      );
      assert.equal(st.offset, 0);
      st.free();
    });

    test("free releases the model and its states", async () => {
      const m = await model();
      const st = m.createState();
      m.free();
      assert.throws(() => st.offset, /freed/);
      built = null;
    });
  });
}
