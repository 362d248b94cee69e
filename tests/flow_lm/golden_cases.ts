/**
 * The golden FlowLM checks shared by the tiny and the full config (golden README §3(a), (b), (d)): each function
 * registers `node:test` tests against a lazily built model.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { FlowLM } from "../../src/runtime/flow_lm.ts";
import { readVoiceFile, serializeVoiceState } from "../../src/voice/voice_state.ts";
import { readFixture } from "../support/fixtures.ts";
import { maxRelDiff } from "../support/core.ts";
import { caseMeta, readCase, row, type Size } from "./support.ts";

/** Golden flow-head and FlowLM tolerance per config (README §4: 10× the worst f32-vs-f64 gap). */
export const TOL: Record<Size, number> = { tiny: 5e-6, full: 1e-5 };

function close(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  const r = maxRelDiff(got, want);
  assert.ok(r <= tol, `${what}: relative difference ${r} > ${tol}`);
}

/**
 * A single logit: its rounding error scales with the terms of its dot product, not with its value, so a logit
 * near zero (0.027 for the full voice prefill) is compared with an absolute floor: `|got − want| ≤ tol·max(1, |want|)`.
 */
function closeLogit(got: number, want: number, tol: number, what: string): void {
  const d = Math.abs(got - want);
  assert.ok(d <= tol * Math.max(1, Math.abs(want)), `${what}: ${got} vs ${want} (difference ${d}, tolerance ${tol})`);
}

/** (a) The flow head alone (v and every intermediate) and LSD with 1, 2 and 4 steps. */
export function flowHeadTests(size: Size, model: () => Promise<FlowLM>): void {
  const tol = TOL[size];
  test(`${size}: flow head v and intermediates (te0, te1, t_combined, cond, y, h_in, res*) within ${tol}`, async () => {
    const m = await model();
    const g = await readCase(`${size}/flow_head.safetensors`);
    const { v, trace } = m.flowHead(g.f32("c"), g.f32("s"), g.f32("t"), g.f32("x"), { trace: true });
    close(v, g.f32("v"), tol, "v");
    const n = 4 * m.dims.flowDim;
    const names = ["te0", "te1", "t_combined", "cond", "y", "h_in"];
    for (let k = 0; k < m.dims.flowDepth; k++) names.push(`res${k}`);
    names.forEach((name, i) => close(trace!.subarray(i * n, (i + 1) * n), g.f32(name), tol, name));
  });

  test(`${size}: LSD decoding with 1, 2 and 4 steps within ${tol}`, async () => {
    const m = await model();
    const g = await readCase(`${size}/flow_head.safetensors`);
    for (const steps of [1, 2, 4]) {
      close(m.lsdDecode(g.f32("lsd_c"), g.f32("lsd_x0"), steps), g.f32(`lsd_n${steps}`), tol, `n=${steps}`);
    }
    // each of the 4 steps from its stored input: x_{k+1} = x_k + v(c, k/4, (k+1)/4, x_k)/4
    const inputs = g.f32("lsd_n4_inputs"), c = g.f32("lsd_c"), ld = m.dims.latentDim;
    for (let k = 0; k < 4; k++) {
      const x = inputs.subarray(k * 4 * ld, (k + 1) * 4 * ld);
      const { v } = m.flowHead(c, new Float32Array(4).fill(k / 4), new Float32Array(4).fill((k + 1) / 4), x);
      const next = x.map((xi, i) => xi + v[i] / 4);
      const want = k < 3 ? inputs.subarray((k + 1) * 4 * ld, (k + 2) * 4 * ld) : g.f32("lsd_n4");
      close(next, want, tol, `LSD step ${k} of 4`);
    }
  });
}

interface Call {
  offset_before: number;
  offset_after: number;
  cache_capacity: number;
  eos_logit: number;
}
interface FlowCaseMeta {
  N_text_tokens: number;
  S_steps: number;
  max_gen_len: number;
  kv_capacity_after_expand: number;
  voice_positions: number;
  calls: Call[];
}

/**
 * (b) Teacher-forced text prefill + AR steps from a voice (or from nothing): per call the trace (input rows and
 * layer outputs), `c`, the EOS logit, `v` and the latent; offsets, capacities and `max_gen_len` exactly.
 */
export function teacherForcedTest(
  size: Size,
  caseName: string,
  voiceRel: string | null,
  model: () => Promise<FlowLM>,
): void {
  const tol = TOL[size];
  test(`${size}: ${caseName} teacher-forced (c, EOS, v, latent, layer outputs within ${tol}; offsets exact)`, async () => {
    const m = await model();
    const g = await readCase(`${size}/${caseName}.safetensors`);
    const meta = await caseMeta<FlowCaseMeta>(size, caseName);
    const { dModel: d, latentDim: ld, numLayers: L } = m.dims;
    const st = m.createState();
    try {
      if (voiceRel) {
        assert.equal(st.loadVoice(await readVoiceFile(await readFixture(voiceRel), voiceRel)), null);
      }
      assert.equal(st.offset, meta.voice_positions);
      assert.equal(st.capacity, meta.voice_positions);
      const ids = Array.from(g.i64("text_tokens"), Number);
      assert.equal(ids.length, meta.N_text_tokens);
      assert.equal(st.prepareChunk(ids.length), meta.max_gen_len);
      assert.equal(st.capacity, meta.kv_capacity_after_expand);

      const noise = g.f32("noise");
      const offsets = Array.from(g.i64("call_offset_before"), Number);
      m.setTrace(true);
      assert.equal(st.offset, offsets[0]);
      const pre = st.prefillText(ids, row(noise, 0, ld));
      const trace = m.lastTrace()!;
      const N = ids.length;
      close(trace.subarray(0, N * d), g.f32("prefill_text_embeddings"), 0, "prefill_text_embeddings (exact rows)");
      close(trace.subarray(N * d), g.f32("prefill_layer_out"), tol, "prefill_layer_out");
      close(m.lastC().c, g.f32("prefill_c"), tol, "prefill_c");
      closeLogit(pre.eosLogit, g.f32("prefill_eos_logit")[0], tol, "prefill_eos_logit");
      close(pre.latent!, g.f32("prefill_latent"), tol, "prefill_latent");
      assert.equal(st.offset, meta.calls[0].offset_after);

      const S = meta.S_steps;
      const inputs = g.f32("ar_input_latent"), ar_noise = g.f32("ar_noise");
      const c = new Float32Array(S * d), v = new Float32Array(S * ld), lat = new Float32Array(S * ld);
      const eos = new Float32Array(S), emb = new Float32Array(S * d), layers = new Float32Array(2 * L * d);
      for (let j = 0; j < S; j++) {
        assert.equal(st.offset, offsets[1 + j], `offset before step ${j}`);
        const r = st.step(row(inputs, j, ld), row(ar_noise, j, ld), lat.subarray(j * ld, (j + 1) * ld));
        eos[j] = r.eosLogit;
        const last = m.lastC();
        c.set(last.c, j * d);
        v.set(last.v, j * ld);
        const tr = m.lastTrace()!;
        emb.set(tr.subarray(0, d), j * d);
        if (j < 2) layers.set(tr.subarray(d), j * L * d);
        assert.equal(st.offset, meta.calls[1 + j].offset_after);
        assert.equal(st.capacity, meta.calls[1 + j].cache_capacity);
      }
      m.setTrace(false);
      assert.ok(Number.isNaN(inputs[0]), "step 0 feeds the NaN BOS row");
      close(emb, g.f32("ar_input_embedding"), tol, "ar_input_embedding");
      close(layers, g.f32("ar_layer_out_first2"), tol, "ar_layer_out_first2");
      close(c, g.f32("ar_c"), tol, "ar_c");
      close(eos, g.f32("ar_eos_logit"), tol, "ar_eos_logit");
      close(v, g.f32("ar_flow_v"), tol, "ar_flow_v");
      close(lat, g.f32("ar_output_latent"), tol, "ar_output_latent");
      const metaEos = meta.calls.slice(1).map((x) => x.eos_logit);
      close(eos, metaEos, tol, "EOS logits of meta.calls");
    } finally {
      m.setTrace(false);
      st.free();
    }
  });
}

/**
 * (d) Prefilling the v1.0 `audio_prompt` (after `bos_before_voice`) reproduces the voice state within 2e-5, and
 * importing then exporting the reference's voice state gives the identical file.
 */
export function voiceStateTests(size: Size, model: () => Promise<FlowLM>): void {
  test(`${size}: prefilling voice_audio_prompt reproduces voice_state (2e-5), offset and capacity exact`, async () => {
    const m = await model();
    const prompt = await readVoiceFile(await readFixture(`${size}/voice_audio_prompt.safetensors`), "audio_prompt");
    const want = await readVoiceFile(await readFixture(`${size}/voice_state.safetensors`), "voice_state");
    assert.equal(prompt.kind, "audio_prompt");
    assert.equal(want.kind, "kv");
    const st = m.createState();
    try {
      const r = st.loadVoice(prompt);
      assert.ok(r !== null && r.latent === null && Number.isFinite(r.eosLogit));
      if (want.kind !== "kv") return;
      assert.equal(st.offset, want.state.length);
      assert.equal(st.capacity, want.state.length);
      const got = st.exportVoice();
      for (let l = 0; l < m.dims.numLayers; l++) close(got.layers[l], want.state.layers[l], 2e-5, `layer ${l} cache`);
    } finally {
      st.free();
    }
  });

  test(`${size}: an audio prompt imported in pieces equals one prefill of it, bit for bit`, async () => {
    const m = await model();
    const prompt = await readVoiceFile(await readFixture(`${size}/voice_audio_prompt.safetensors`), "audio_prompt");
    if (prompt.kind !== "audio_prompt") throw new Error("an audio prompt fixture");
    assert.ok(prompt.frames > 32, `${prompt.frames} frames: more than one piece`);
    const [pieces, whole] = [m.createState(), m.createState()];
    try {
      const a = pieces.loadVoice(prompt)!;
      const b = whole.prefillEmbeddings(prompt.conditioning, { bosBeforeVoice: true });
      assert.equal(a.eosLogit, b.eosLogit);
      assert.equal(pieces.capacity, whole.capacity, "reserved once, exactly");
      assert.deepEqual(pieces.exportVoiceFile(), whole.exportVoiceFile());
    } finally {
      pieces.free();
      whole.free();
    }
  });

  test(`${size}: voice_state import → export is byte-identical to the reference's file`, async () => {
    const m = await model();
    const bytes = await readFixture(`${size}/voice_state.safetensors`);
    const st = m.createState();
    try {
      st.loadVoice(await readVoiceFile(bytes, "voice_state"));
      const out = serializeVoiceState(st.exportVoice());
      assert.equal(out.length, bytes.length);
      assert.ok(out.every((b, i) => b === bytes[i]), "identical bytes");
    } finally {
      st.free();
    }
  });
}

/**
 * (d) The FlowLM half of voice cloning: `conditioning = latentsᵀ · speaker_projᵀ`, then one prefill of
 * `[bos_before_voice; conditioning]` (its `c`, EOS logit and discarded latent from `prefill_noise`) filling exactly
 * the reference's voice state. Tolerance 2e-5 (README §4, voice_clone).
 */
export function voiceCloneTest(size: Size, cloneRel: string, stateRel: string, model: () => Promise<FlowLM>): void {
  test(`${size}: ${cloneRel.split("/")[1]}: speaker projection, voice prefill (c, EOS, latent) and state (2e-5)`, async () => {
    const m = await model();
    const g = await readCase(cloneRel);
    const [, inner, frames] = g.shape("latents");
    const latents = g.f32("latents"); // [1, inner, F]
    const rows = new Float32Array(frames * inner);
    for (let f = 0; f < frames; f++) for (let i = 0; i < inner; i++) rows[f * inner + i] = latents[i * frames + f];
    const conditioning = m.speakerProject(rows, frames);
    close(conditioning, g.f32("conditioning"), 2e-5, "conditioning");
    const st = m.createState();
    try {
      const r = st.prefillEmbeddings(g.f32("conditioning"), { bosBeforeVoice: true, x0: g.f32("prefill_noise") });
      assert.equal(st.offset, frames + 1);
      assert.equal(st.capacity, frames + 1);
      close(m.lastC().c, g.f32("prefill_c"), 2e-5, "prefill_c");
      closeLogit(r.eosLogit, g.f32("prefill_eos_logit")[0], 2e-5, "prefill_eos_logit");
      close(r.latent!, g.f32("prefill_latent"), 2e-5, "prefill_latent");
      const want = await readVoiceFile(await readFixture(stateRel), stateRel);
      assert.equal(want.kind, "kv");
      if (want.kind !== "kv") return;
      const got = st.exportVoice();
      for (let l = 0; l < m.dims.numLayers; l++) close(got.layers[l], want.state.layers[l], 2e-5, `layer ${l} cache`);
    } finally {
      st.free();
    }
  });
}
