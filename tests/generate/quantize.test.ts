// The opt-in int8 FlowLM through the public API (`TTSModel.load({ quantize: true })`) on the tiny golden e2e cases:
// with the recorded noise, every chunk ends at the reference's EOS step with the same frame count, the audio stays
// close to the reference's exact audio (SNR printed, ≥ 20 dB), and worker and single-thread modes agree bit for bit.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { workersAvailable } from "../../src/generate/create_services.ts";
import { e2eCase, generateCase, withTinyModel } from "../support/tiny_model.ts";

const modes: (0 | 2)[] = workersAvailable() ? [0, 2] : [0];

describe("int8 FlowLM (quantize) on the golden e2e cases", () => {
  for (const name of ["short", "normal", "long"] as const) {
    test(`${name}: same EOS steps and frame counts as the exact reference, audio SNR ≥ 20 dB`, async () => {
      const c = await e2eCase(name);
      const outputs: Float32Array[] = [];
      for (const workers of modes) {
        await withTinyModel({ workers, quantize: true }, async (tts) => {
          const { audio, reports } = await generateCase(tts, c);
          assert.deepEqual(
            reports.map((r) => [r.eosStep, r.frames]),
            c.chunks.map((k) => [k.eos_step, k.frames_emitted]),
          );
          assert.equal(audio.length, c.audio_samples);
          outputs.push(audio);
        });
      }
      let sig = 0, err = 0;
      for (let i = 0; i < c.audio.length; i++) {
        sig += c.audio[i] ** 2;
        err += (outputs[0][i] - c.audio[i]) ** 2;
      }
      const snr = 10 * Math.log10(sig / err);
      console.log(`int8 ${name}: audio SNR ${snr.toFixed(1)} dB against the exact reference`);
      assert.ok(snr >= 20, `SNR ${snr} dB`);
      if (outputs.length === 2) assert.deepEqual(outputs[1], outputs[0], "workers and single thread agree");
    });
  }
});
