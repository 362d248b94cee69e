import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFixture } from "../support/fixtures.ts";
import { parseSafetensors } from "../../src/model/safetensors.ts";
import { decodeWav, InvalidAudioError, resample, resamplePoly, toMono } from "../../src/audio/mod.ts";

function worstDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

describe("resample: scipy.signal.resample_poly", () => {
  test("golden audio_24k: espeak_prompt_22050.wav → 24 kHz equals the reference's resampling", async () => {
    const st = parseSafetensors(await readFixture("tiny/voice_clone.safetensors"), "voice_clone.safetensors");
    const golden = await st.float32("audio_24k");
    const prompt = toMono(decodeWav(await readFixture("audio/espeak_prompt_22050.wav")));
    const ours = resample(prompt, 22050, 24000);
    assert.equal(ours.length, 109905);
    const worst = worstDiff(ours, golden);
    console.log(`resample 22050 → 24000 vs golden audio_24k: worst |diff| ${worst}`);
    // SciPy's float32 path is reproduced operation by operation; allow one float32 rounding step of the largest
    // sample in case a float64 sin of the filter design differs in its last bit on some platform.
    assert.ok(worst <= 6e-8, `worst |diff| ${worst}`);
  });

  test("SciPy 1.17 references for 13 factor pairs (resample_poly.safetensors)", async () => {
    const st = parseSafetensors(await readFixture("audio/resample_poly.safetensors"), "resample_poly.safetensors");
    const x = await st.float32("x");
    let count = 0;
    for (const name of st.names()) {
      const m = /^y_(\d+)_(\d+)$/.exec(name);
      if (!m) continue;
      const [up, down] = [Number(m[1]), Number(m[2])];
      const expected = await st.float32(name);
      const worst = worstDiff(resamplePoly(x, up, down), expected);
      assert.ok(worst <= 6e-8, `${up}/${down}: worst |diff| ${worst}`);
      count++;
    }
    assert.equal(count, 13);
  });

  test("output length is ceil(n·up/down); equal rates copy; tiny inputs", () => {
    for (const n of [0, 1, 2, 3, 146, 147, 148, 1000]) {
      assert.equal(resamplePoly(new Float32Array(n), 160, 147).length, Math.ceil((n * 160) / 147));
      assert.equal(resample(new Float32Array(n), 48000, 24000).length, Math.ceil(n / 2));
    }
    const x = new Float32Array([1, 2, 3]);
    const same = resample(x, 24000, 24000);
    assert.deepEqual(same, x);
    assert.notEqual(same, x);
  });

  test("a band-limited sine keeps its amplitude and phase: 44.1 kHz → 24 kHz", () => {
    const f = 1000;
    const x = Float32Array.from({ length: 44100 }, (_, i) => 0.5 * Math.sin((2 * Math.PI * f * i) / 44100));
    const y = resample(x, 44100, 24000);
    let worst = 0;
    // Away from the edges (the filter's half-length in output samples), y[i] = x(i / 24000).
    for (let i = 200; i < y.length - 200; i++) {
      worst = Math.max(worst, Math.abs(y[i] - 0.5 * Math.sin((2 * Math.PI * f * i) / 24000)));
    }
    assert.ok(worst < 2e-3, `worst ${worst}`);
  });

  test("invalid factors are InvalidAudioError invalid_audio", () => {
    for (const [up, down] of [[0, 1], [1, 0], [1.5, 2], [-3, 2], [NaN, 1]]) {
      assert.throws(() => resamplePoly(new Float32Array(4), up, down), (e: unknown) => {
        assert.ok(e instanceof InvalidAudioError);
        assert.equal(e.code, "invalid_audio");
        return true;
      });
    }
    assert.throws(() => resample(new Float32Array(4), 0, 24000), InvalidAudioError);
  });
});
