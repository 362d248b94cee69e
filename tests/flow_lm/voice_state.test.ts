// Voice files (src/voice/voice_state.ts), without the wasm core: the three reference formats, byte-identical
// export, and the validation errors.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { checkVoiceFits, readVoiceFile, serializeVoiceState, type VoiceFile } from "../../src/voice/voice_state.ts";
import { serializeSafetensors, type TensorEntry } from "../../src/model/safetensors.ts";
import { readFixture } from "../support/fixtures.ts";
import { readCase } from "./support.ts";

const TINY = { numLayers: 2, numHeads: 4, headDim: 16 };

function kv(v: VoiceFile) {
  assert.equal(v.kind, "kv");
  if (v.kind !== "kv") throw new Error("unreachable");
  return v;
}

/** The tiny voice state's tensors, rebuilt: per layer the `[2, 1, T, 4, 16]` cache and the offset. */
async function tinyTensors() {
  const g = await readCase("tiny/voice_state.safetensors");
  return [0, 1].map((l) => ({
    cache: g.f32(`transformer.layers.${l}.self_attn/cache`),
    offset: g.i64(`transformer.layers.${l}.self_attn/offset`),
  }));
}

function file(entries: TensorEntry[]): Uint8Array {
  return serializeSafetensors(entries);
}

async function rejects(bytes: Uint8Array, pattern: RegExp, code = "invalid_voice") {
  await assert.rejects(
    readVoiceFile(bytes, "test.safetensors"),
    (e: Error & { code?: string }) => e.name === "InvalidVoiceError" && e.code === code && pattern.test(e.message),
  );
}

describe("voice files", () => {
  test("current format: dimensions, offset and the K/V of the used positions", async () => {
    const bytes = await readFixture("tiny/voice_state.safetensors");
    const v = kv(await readVoiceFile(bytes, "tiny"));
    assert.equal(v.format, "current");
    assert.deepEqual([v.state.numLayers, v.state.numHeads, v.state.headDim, v.state.length], [2, 4, 16, 59]);
    const t = await tinyTensors();
    for (let l = 0; l < 2; l++) assert.deepEqual(v.state.layers[l], t[l].cache);
    checkVoiceFits(v, TINY);
  });

  test("export is byte-identical to the reference's writer (tiny, full, full 2 s)", async () => {
    for (
      const rel of ["tiny/voice_state.safetensors", "full/voice_state.safetensors", "full/voice_state_2s.safetensors"]
    ) {
      const bytes = await readFixture(rel);
      const out = serializeVoiceState(kv(await readVoiceFile(bytes, rel)).state);
      assert.equal(out.length, bytes.length, rel);
      assert.ok(out.every((b, i) => b === bytes[i]), `${rel}: identical bytes`);
    }
  });

  test("v1.1 format (current_end) and a cache longer than its offset import the same state", async () => {
    const t = await tinyTensors();
    const want = kv(await readVoiceFile(await readFixture("tiny/voice_state.safetensors"))).state;
    const v11 = kv(
      await readVoiceFile(
        file(t.flatMap(({ cache }, l) => [
          { name: `transformer.layers.${l}.self_attn/cache`, dtype: "F32", shape: [2, 1, 59, 4, 16], data: cache },
          {
            name: `transformer.layers.${l}.self_attn/current_end`,
            dtype: "F32",
            shape: [59],
            data: new Float32Array(59),
          },
        ])),
      ),
    );
    assert.equal(v11.format, "v1.1");
    assert.deepEqual(v11.state, want);
    // a cache of capacity 80 (NaN beyond the offset, as after _expand_kv_cache) with offset 59
    const long = t.map(({ cache }) => {
      const c = new Float32Array(2 * 80 * 64).fill(NaN);
      c.set(cache.subarray(0, 59 * 64), 0);
      c.set(cache.subarray(59 * 64), 80 * 64);
      return c;
    });
    const expanded = kv(
      await readVoiceFile(
        file(long.flatMap((cache, l) => [
          { name: `transformer.layers.${l}.self_attn/cache`, dtype: "F32", shape: [2, 1, 80, 4, 16], data: cache },
          { name: `transformer.layers.${l}.self_attn/offset`, dtype: "I64", shape: [1], data: BigInt64Array.of(59n) },
        ])),
      ),
    );
    assert.deepEqual(expanded.state, want);
  });

  test("v1.0 audio prompt: conditioning rows", async () => {
    const v = await readVoiceFile(await readFixture("tiny/voice_audio_prompt.safetensors"));
    assert.equal(v.kind, "audio_prompt");
    if (v.kind !== "audio_prompt") return;
    assert.deepEqual([v.frames, v.dModel], [58, 64]);
    assert.deepEqual(v.conditioning, (await readCase("tiny/voice_audio_prompt.safetensors")).f32("audio_prompt"));
    checkVoiceFits(v, TINY);
    assert.throws(() => checkVoiceFits(v, { numLayers: 6, numHeads: 16, headDim: 64 }), /width 64.*d_model is 1024/);
  });

  test("a voice for another model is a voice_model_mismatch naming both shapes", async () => {
    const v = await readVoiceFile(await readFixture("full/voice_state_2s.safetensors"), "full2s");
    assert.throws(
      () => checkVoiceFits(v, TINY),
      (e: Error & { code?: string }) =>
        e.code === "voice_model_mismatch" && /6 layers of 16 heads × 64/.test(e.message) &&
        /2 layers of 4 heads × 16/.test(e.message),
    );
  });

  test("malformed files are invalid_voice errors naming the problem", async () => {
    const t = await tinyTensors();
    const layer = (l: number, extra: Partial<Record<"cache" | "offset", TensorEntry>> = {}): TensorEntry[] => [
      extra.cache ??
        {
          name: `transformer.layers.${l}.self_attn/cache`,
          dtype: "F32",
          shape: [2, 1, 59, 4, 16],
          data: t[l % 2].cache,
        },
      extra.offset ??
        { name: `transformer.layers.${l}.self_attn/offset`, dtype: "I64", shape: [1], data: BigInt64Array.of(59n) },
    ];
    await rejects(new Uint8Array([1, 2, 3]), /not a readable safetensors/);
    await rejects(file([]), /no tensors/);
    await rejects(file([...layer(0), { name: "foo", dtype: "F32", shape: [1], data: new Float32Array(1) }]), /"foo"/);
    await rejects(file([...layer(0), ...layer(2)]), /layer 1 is missing/);
    await rejects(
      file([
        ...layer(0),
        ...layer(1, {
          offset: {
            name: "transformer.layers.1.self_attn/offset",
            dtype: "I64",
            shape: [1],
            data: BigInt64Array.of(58n),
          },
        }),
      ]),
      /layer 1 has offset 58, layer 0 has 59/,
    );
    await rejects(
      file(layer(0, {
        offset: {
          name: "transformer.layers.0.self_attn/offset",
          dtype: "I64",
          shape: [1],
          data: BigInt64Array.of(60n),
        },
      })),
      /offset 60 is beyond its cache of 59/,
    );
    await rejects(
      file([
        ...layer(0),
        { name: "transformer.layers.0.self_attn/current_end", dtype: "F32", shape: [59], data: new Float32Array(59) },
      ]),
      /both "offset" and "current_end"/,
    );
    const nan = t[0].cache.slice();
    nan[3 * 64 + 5] = NaN;
    await rejects(
      file(layer(0, {
        cache: { name: "transformer.layers.0.self_attn/cache", dtype: "F32", shape: [2, 1, 59, 4, 16], data: nan },
      })),
      /K at used position 3 is not finite/,
    );
    await rejects(
      file([{ name: "audio_prompt", dtype: "F32", shape: [1, 2, 3, 4], data: new Float32Array(24) }]),
      /expected \[1, frames, d_model\]/,
    );
  });
});
