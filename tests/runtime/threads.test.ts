// The threads build (design (b) of issue #14): one core instance over a shared memory, helper instances in workers
// taking chunks of its matrix products (crates/pocket_core/src/pool.rs). Every result must equal the plain build's
// bit for bit, helpers must really take part (the core counts their chunks: proven by counts, never by time), and a
// model loaded with `threads: 2` must speak exactly as one thread.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { TTSModel } from "../../mod.ts";
import { loadCore, sharedMemoryAvailable, wasmUrl } from "../../src/runtime/wasm.ts";
import { createServices, workersAvailable } from "../../src/generate/create_services.ts";
import { resolveModel } from "../../src/model/assets.ts";
import { maxGenLen } from "../../src/runtime/flow_lm.ts";
import { randomF32, sharedCore, testVariants, threadedCore } from "../support/core.ts";
import type { PocketCore } from "../../src/runtime/wasm.ts";
import { fullModelDir, fullSizeFrames } from "../support/full_weights.ts";
import { TINY_MODEL_DIR } from "../support/tiny_model.ts";
import { readCase } from "../flow_lm/support.ts";

const skip = sharedMemoryAvailable() && workersAvailable() ? false : "no shared WebAssembly memory or workers here";

/** `m` rows through a `[n, k]` linear layer (int8 with `int8`), on `core`. */
function linear(core: PocketCore, m: number, n: number, k: number, int8: boolean, seed: number): Float32Array {
  const x = randomF32(m * k, seed), w = randomF32(n * k, seed + 1), b = randomF32(n, seed + 2);
  const [xp, wp, bp, yp] = [core.put(x), core.put(w), core.put(b), core.alloc(m * n * 4)];
  const raw = core.raw;
  if (int8) {
    const h = raw.linear_i8_new(wp, bp, n, k);
    raw.linear_i8_forward(h, xp, yp, m, 0);
    raw.linear_i8_free(h);
  } else {
    const h = raw.linear_new(wp, bp, n, k);
    raw.linear_forward(h, xp, yp, m);
    raw.linear_free(h);
  }
  const y = core.f32(yp, m * n).slice();
  [[xp, x], [wp, w], [bp, b]].forEach(([p, a]) => core.free(p as number, (a as Float32Array).byteLength));
  core.free(yp, m * n * 4);
  return y;
}

const SHAPES = [[1, 1024, 1024], [16, 512, 300], [3, 40, 2048], [7, 40, 9]] as const;

describe("threads build (wasm)", () => {
  for (const variant of testVariants) {
    test(
      `${variant}: linear layers split between two threads equal the plain build's bit for bit`,
      { skip },
      async () => {
        const plain = await sharedCore(variant);
        const { core, stop } = await threadedCore(variant, 2);
        try {
          assert.equal(core.raw.core_threads(), 1);
          assert.equal(core.raw.pool_helpers(), 1);
          for (const int8 of [false, true]) {
            for (const [m, n, k] of SHAPES) {
              assert.deepEqual(
                linear(core, m, n, k, int8, m + n),
                linear(plain, m, n, k, int8, m + n),
                `${m}×${n}×${k}`,
              );
            }
          }
          // The helper takes chunks as soon as it is awake: repeat a large product until it has (a count, not a time).
          const before = core.raw.pool_helper_chunks() as number;
          for (let i = 0; i < 2000 && core.raw.pool_helper_chunks() === before; i++) {
            linear(core, 16, 1024, 1024, false, i);
          }
          assert.ok((core.raw.pool_helper_chunks() as number) > before, "the helper never ran a chunk");
        } finally {
          await stop();
        }
      },
    );
  }

  test("the threads build and the plain one refuse each other's place", { skip }, async () => {
    await assert.rejects(loadCore({ threads: true, wasm: wasmUrl("baseline") }), /not a threads build/);
    await assert.rejects(loadCore({ wasm: wasmUrl("baseline", true) }), /is a threads build/);
    await assert.rejects(TTSModel.load({ model: TINY_MODEL_DIR, threads: 0 }), (e: Error) => e.name === "ConfigError");
    // two workers take a thread count too (their FlowLM worker's prefill helpers): checked the same way
    for (const threads of [0, 1.5, -2]) {
      await assert.rejects(
        TTSModel.load({ model: TINY_MODEL_DIR, workers: 2, threads }),
        (e: Error) => e.name === "ConfigError" && /threads must be a positive integer/.test(e.message),
      );
    }
  });

  test(
    "full-size checkpoint: threads here, in one worker and beside two workers give one thread's frames bit for bit",
    {
      skip,
    },
    async () => {
      const frames = async (options: { workers: 0 | 1 | 2; threads?: number }) => {
        const { frames, usesWorkers } = await fullSizeFrames("Hello there, my friend.", options);
        assert.equal(usesWorkers, options.workers > 0);
        return frames;
      };
      const one = await frames({ workers: 0 });
      assert.deepEqual(await frames({ workers: 0, threads: 2 }), one);
      assert.deepEqual(await frames({ workers: 1 }), one); // two threads by default
      assert.deepEqual(await frames({ workers: 2 }), one); // a prefill helper by default
      assert.deepEqual(await frames({ workers: 2, threads: 1 }), one);
    },
  );

  test("two workers: the FlowLM worker's helper takes an idle model's prefill and first frame, never a later frame", {
    skip,
  }, async () => {
    const model = await resolveModel({ model: await fullModelDir() });
    const s = await createServices(model, { workers: true, simd: "auto", prefillThreads: 2 });
    try {
      const chunks = () => s.flow.helperChunks!();
      const voice = await s.flow.emptyVoice();
      const ids = Array.from({ length: 12 }, (_, i) => (i * 97 + 5) % 4000);
      const frame = async (fs: number, ms: number, input: Float32Array | null) => {
        const step = s.flow.step(fs, input, new Float32Array(32), 1);
        const pending = s.mimi.decodeStep!(ms, fs);
        const { latent } = await step;
        pending.commit();
        await pending.frame;
        return latent;
      };
      for (let chunk = 0; chunk < 2; chunk++) {
        const [fs, ms] = [await s.flow.openStream(), await s.mimi.openStream()];
        // The helper takes chunks once it is awake: prefill again until it has (a count, not a time).
        const before = await chunks();
        for (let i = 0; i < 20 && (i === 0 || await chunks() === before); i++) {
          await s.flow.beginChunk(fs, voice.id, ids, maxGenLen(12), new Float32Array(32));
        }
        assert.ok(await chunks() > before, "the helper ran no chunk of the prefill");
        let latent = await frame(fs, ms, null);
        const first = await chunks(); // the first frame may or may not find the helper awake: no claim on it
        for (let i = 0; i < 4; i++) latent = await frame(fs, ms, latent);
        assert.equal(await chunks(), first, "the helper ran chunks of later frames");
        // Another stream's prefill while this one is generating (the decoder worker busy): on one thread.
        const other = await s.flow.openStream();
        await s.flow.beginChunk(other, voice.id, ids, maxGenLen(12), new Float32Array(32));
        assert.equal(await chunks(), first, "the helper took a prefill while a stream was generating");
        await s.flow.closeStream(other);
        await s.flow.closeStream(fs);
        await s.mimi.closeStream(ms);
      }
    } finally {
      await s.flow.dispose();
      await s.mimi.dispose();
    }
  });
  test("two workers: a clone encodes in the FlowLM worker, with its helper, to one thread's voice bit for bit", {
    skip,
  }, async () => {
    const model = await fullModelDir();
    const audio = (await readCase("full/voice_clone.safetensors")).f32("audio_24k");
    const cloned = async (workers: 0 | 2) => {
      const tts = await TTSModel.load({ model, workers });
      try {
        return tts.exportVoice(await tts.loadVoice({ samples: audio, sampleRate: 24000 }));
      } finally {
        tts.dispose();
      }
    };
    assert.deepEqual(await cloned(2), await cloned(0));

    const resolved = await resolveModel({ model });
    const s = await createServices(resolved, { workers: true, simd: "auto", prefillThreads: 2, encoder: "eager" });
    try {
      const encoding = await s.mimi.openEncoding();
      const before = await s.flow.helperChunks!(); // the encoder's worker is the FlowLM one: its helper counts
      // The helper takes chunks once it is awake: encode blocks until it has (a count, not a time).
      for (let i = 0; i < 20 && (i === 0 || await s.flow.helperChunks!() === before); i++) {
        const latents = await s.mimi.encodeBlock(encoding, audio.subarray(0, 2 * 1920));
        assert.equal(latents.length, 2 * 32);
      }
      assert.ok(await s.flow.helperChunks!() > before, "the helper ran no chunk of the encoder");
      await s.mimi.closeEncoding(encoding);
    } finally {
      await s.flow.dispose();
      await s.mimi.dispose();
    }
  });
});
