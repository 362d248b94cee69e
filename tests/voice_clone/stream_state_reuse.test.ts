// A request after a voice is cloned (or a voice file loaded) takes the stream states the previous request left instead
// of allocating new ones: the clone's allocations may have taken the blocks a freed state leaves, so a new state would
// come from freshly grown memory, whose page faults cost 20–35 ms of first audio at full size. Proved by counting the
// states created (none), never by time; and the reused states give a fresh state's audio, byte for byte.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { LocalFlowLm, LocalMimi } from "../../src/generate/local_services.ts";
import { IdleStates } from "../../src/generate/idle_states.ts";
import { RoundRobinScheduler } from "../../src/generate/scheduler.ts";
import { SAMPLES_PER_FRAME } from "../../src/generate/generation.ts";
import { FlowLM, maxGenLen } from "../../src/runtime/flow_lm.ts";
import { MimiDecoder } from "../../src/runtime/mimi_decoder.ts";
import { loadCore } from "../../src/runtime/wasm.ts";
import { openSafetensors } from "../../src/model/safetensors.ts";
import { resolveModel } from "../../src/model/assets.ts";
import { encodeVoice } from "../../src/voice/encode_voice.ts";
import { readFixture } from "../support/fixtures.ts";
import { TINY_MODEL_DIR } from "../support/tiny_model.ts";
import { readCase } from "../flow_lm/support.ts";

const IDS = [3, 17, 42, 5, 99, 7, 61, 2, 30, 11, 8, 250]; // a 12-token chunk
const FRAMES = 3;

/** The tiny model's two parts on one core of this thread, as `createServices` builds them for `workers: 0`. */
async function parts() {
  const model = await resolveModel({ model: TINY_MODEL_DIR }, { cache: null, offline: true });
  const core = await loadCore();
  const reader = await openSafetensors(model.weights.path!);
  try {
    const flow = await LocalFlowLm.create(core, reader, model.config);
    const mimi = await LocalMimi.create(core, reader, model.config, "eager");
    return { core, flow, mimi };
  } finally {
    await reader.close();
  }
}

/** One request's calls in the generator's order: open, begin the chunk, FRAMES steps and decodes, close. */
async function request(flow: LocalFlowLm, mimi: LocalMimi, voiceId: number): Promise<Float32Array[]> {
  const [fs, ms] = [await flow.openStream(), await mimi.openStream()];
  const x0 = (i: number) => new Float32Array(32).map((_, j) => Math.sin(i * 32 + j) * 0.7);
  await flow.beginChunk(fs, voiceId, IDS, maxGenLen(IDS.length), x0(0));
  await mimi.reset(ms);
  const audio: Float32Array[] = [];
  let input: Float32Array | null = null;
  for (let i = 1; i <= FRAMES; i++) {
    input = (await flow.step(fs, input, x0(i), 1)).latent;
    audio.push(await mimi.decode(ms, input.slice()));
  }
  await flow.closeStream(fs);
  await mimi.closeStream(ms);
  return audio;
}

/** 10 s of speech at 24 kHz (126 voice positions, like a predefined voice). */
async function recording(): Promise<Float32Array> {
  const speech = (await readCase("tiny/voice_clone.safetensors")).f32("audio_24k");
  return new Float32Array(10 * 24000).map((_, i) => speech[i % speech.length]);
}

describe("stream states are reused across requests", () => {
  test("IdleStates keeps at most max states, reset; frees the rest and all on free()", () => {
    const log: string[] = [];
    const state = (n: string) => ({ reset: () => log.push(`reset ${n}`), free: () => log.push(`free ${n}`), n });
    const idle = new IdleStates<ReturnType<typeof state>>(1);
    const a = idle.take(() => state("a"));
    const b = idle.take(() => state("b"));
    idle.give(a);
    idle.give(b);
    assert.deepEqual(log, ["reset a", "free b"]);
    assert.equal(idle.size, 1);
    assert.equal(idle.take(() => state("c")).n, "a", "the kept state comes back");
    assert.equal(idle.take(() => state("d")).n, "d", "then new ones");
    idle.give(a);
    idle.free();
    assert.deepEqual(log.slice(2), ["reset a", "free a"]);
    assert.equal(idle.size, 0);
  });

  test("after a clone and after a voice file, a request creates no state; its audio is a fresh state's", async () => {
    const file = await readFixture("tiny/voice_state.safetensors");
    const x0 = new Float32Array(32); // an audio-prompt voice's prefill latent is discarded
    const { flow, mimi } = await parts();
    const created = countStatesCreated();
    try {
      const voice = await flow.importVoice(file, x0);
      const want = await onFreshParts(file);
      created.reset();
      assert.deepEqual(await request(flow, mimi, voice.id), want);
      assert.deepEqual(created.counts(), { flow: 1, mimi: 1 }, "the first request creates its states");

      const scheduler = new RoundRobinScheduler();
      const cloned = await encodeVoice({ flow, mimi, scheduler, frameSamples: SAMPLES_PER_FRAME }, await recording());
      assert.equal(cloned.positions, 126);
      created.reset();
      const afterClone = await request(flow, mimi, cloned.id);
      assert.deepEqual(created.counts(), { flow: 0, mimi: 0 }, "the request after the clone reuses the states");
      assert.deepEqual(afterClone, await onFreshParts(await flow.exportVoice(cloned.id)), "reused = fresh states");

      const again = await flow.importVoice(file, x0);
      created.reset();
      assert.deepEqual(await request(flow, mimi, again.id), want);
      assert.deepEqual(created.counts(), { flow: 0, mimi: 0 }, "the request after a voice file reuses the states");
    } finally {
      created.restore();
      await flow.dispose();
      await mimi.dispose();
    }
  });
});

/** Counts the FlowLM and Mimi decoder states created from now on (`restore` ends counting). */
function countStatesCreated() {
  const n = { flow: 0, mimi: 0 };
  const flowCreate = FlowLM.prototype.createState, mimiCreate = MimiDecoder.prototype.createState;
  FlowLM.prototype.createState = function (this: FlowLM, ...a) {
    n.flow++;
    return flowCreate.apply(this, a);
  };
  MimiDecoder.prototype.createState = function (this: MimiDecoder, ...a) {
    n.mimi++;
    return mimiCreate.apply(this, a);
  };
  return {
    counts: () => ({ ...n }),
    reset: () => Object.assign(n, { flow: 0, mimi: 0 }),
    restore: () => {
      FlowLM.prototype.createState = flowCreate;
      MimiDecoder.prototype.createState = mimiCreate;
    },
  };
}

/** The request's audio with `voiceFile` on a new core (states never used before). */
async function onFreshParts(voiceFile: Uint8Array): Promise<Float32Array[]> {
  const { flow, mimi } = await parts();
  try {
    return await request(flow, mimi, (await flow.importVoice(voiceFile, new Float32Array(32))).id);
  } finally {
    await flow.dispose();
    await mimi.dispose();
  }
}
