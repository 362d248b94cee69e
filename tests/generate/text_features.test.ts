// streamText, SSML breaks, captions and normalisation through the public API, on the tiny model: the same text
// gives the same samples whole, word by word or character by character; the first frame comes before the producer
// has finished; breaks are exact silence; captions line up with the chunk reports; an abort stops both sides.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChunkReport, SsmlError, toWebVtt, type TTSModel } from "../../mod.ts";
import { TINY_VOICE, withTinyModel } from "../support/tiny_model.ts";
import { workersAvailable } from "../../src/generate/create_services.ts";

const TEXT = "Hello there. This is a streamed test, with words. And a third sentence follows here! Last one";

async function* pieces(parts: string[], delayMs = 0): AsyncGenerator<string> {
  for (const p of parts) {
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    yield p;
  }
}

async function collect(frames: AsyncIterable<Float32Array>): Promise<Float32Array> {
  const list: Float32Array[] = [];
  for await (const f of frames) list.push(f);
  const out = new Float32Array(list.length * 1920);
  list.forEach((f, i) => out.set(f, i * 1920));
  return out;
}

async function withVoice<T>(fn: (tts: TTSModel, voice: Awaited<ReturnType<TTSModel["loadVoice"]>>) => Promise<T>) {
  return await withTinyModel({ workers: 0 }, async (tts) => fn(tts, await tts.loadVoice(TINY_VOICE)));
}

describe("streamText", () => {
  test("same samples for the text whole, word by word, character by character, and as a ReadableStream", async () => {
    await withVoice(async (tts, voice) => {
      const options = { voice, seed: 7, onWarning: () => {} };
      const whole = await collect(tts.streamText(pieces([TEXT]), options));
      assert.ok(whole.length > 0);
      assert.deepEqual(await collect(tts.streamText(pieces(TEXT.split(/(?= )/)), options)), whole);
      assert.deepEqual(await collect(tts.streamText(pieces(Array.from(TEXT)), options)), whole);
      const readable = new ReadableStream<string>({
        start(c) {
          for (const ch of TEXT) c.enqueue(ch);
          c.close();
        },
      });
      assert.deepEqual(await collect(tts.streamText(readable, options)), whole);
    });
  });

  test("with workers too: char by char equals whole (speculative prefills run in the FlowLM worker)", {
    skip: workersAvailable() ? false : "no module workers in this runtime",
  }, async () => {
    await withTinyModel({ workers: 2 }, async (tts) => {
      const voice = await tts.loadVoice(TINY_VOICE);
      const options = { voice, seed: 11, onWarning: () => {} };
      const whole = await collect(tts.streamText(pieces([TEXT]), options));
      assert.deepEqual(await collect(tts.streamText(pieces(Array.from(TEXT), 1), options)), whole);
    });
  });

  test("a wrong guess at a sentence end (3. → 3.14) changes nothing", async () => {
    await withVoice(async (tts, voice) => {
      const options = { voice, seed: 12, onWarning: () => {} };
      const parts = ["Pi is 3.", "14 or so. Then", " the end."];
      const whole = await collect(tts.streamText(pieces([parts.join("")]), options));
      assert.deepEqual(await collect(tts.streamText(pieces(parts, 30), options)), whole);
    });
  });

  test("the first frame arrives before the producer has finished", async () => {
    await withVoice(async (tts, voice) => {
      let firstFrame!: () => void;
      const gotFirstFrame = new Promise<void>((r) => firstFrame = r);
      let finished = false;
      async function* producer() {
        yield "Hello there.";
        yield " More";
        // The rest of the text only comes once audio has been heard (or the test gives up).
        const timeout = new Promise((_, reject) =>
          setTimeout(() => reject(new Error("no audio before the end")), 30000)
        );
        await Promise.race([gotFirstFrame, timeout]);
        yield " text follows now.";
        finished = true;
      }
      let frames = 0;
      for await (const _ of tts.streamText(producer(), { voice, seed: 1, onWarning: () => {} })) {
        if (frames++ === 0) {
          assert.equal(finished, false);
          firstFrame();
        }
      }
      assert.ok(finished);
    });
  });

  test("an abort stops generation and cancels the text source; the model stays usable", async () => {
    await withVoice(async (tts, voice) => {
      let cancelled = false;
      const source = new ReadableStream<string>({
        start(c) {
          c.enqueue("Hello there. And then ");
        },
        cancel() {
          cancelled = true;
        },
      });
      const controller = new AbortController();
      let frames = 0;
      await assert.rejects(async () => {
        for await (const _ of tts.streamText(source, { voice, seed: 1, signal: controller.signal })) {
          if (++frames === 2) controller.abort(new Error("stop"));
        }
      }, /stop/);
      assert.equal(frames, 2);
      assert.ok(cancelled, "the ReadableStream was cancelled");

      // Waiting for text that never comes: leaving the loop (break) ends the request without a hang.
      let returned = false;
      async function* silent() {
        try {
          yield "Hi there. Then";
          await new Promise(() => {});
        } finally {
          returned = true;
        }
      }
      for await (const _ of tts.streamText(silent(), { voice, seed: 1, onWarning: () => {} })) break;
      await new Promise((r) => setTimeout(r, 50));
      assert.ok(returned, "the async iterator was closed");
      assert.ok((await tts.generate("Still fine.", { voice, seed: 1, onWarning: () => {} })).length > 0);
    });
  });

  test("text is read only as generation needs it (a slow consumer does not drain the producer)", async () => {
    await withVoice(async (tts, voice) => {
      let pulled = 0;
      async function* many() {
        for (let i = 0; i < 200; i++) {
          pulled++;
          yield `Sentence number ${i} is here. `;
        }
      }
      const it = tts.streamText(many(), { voice, seed: 1, onWarning: () => {} })[Symbol.asyncIterator]();
      await it.next();
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(pulled < 10, `pulled ${pulled} deltas`);
      await it.return!(undefined);
    });
  });

  test("non-string deltas and empty streams are typed errors", async () => {
    await withVoice(async (tts, voice) => {
      // deno-lint-ignore no-explicit-any
      const bad = pieces([1 as any]);
      await assert.rejects(collect(tts.streamText(bad, { voice })), { code: "invalid_text" });
      await assert.rejects(collect(tts.streamText(pieces([" ", ""]), { voice })), { code: "empty_text" });
    });
  });
});

describe("SSML, captions and normalisation", () => {
  test("a break is exact silence of the nearest whole number of frames, between the chunks' captions", async () => {
    await withVoice(async (tts, voice) => {
      const ssml = '<speak><s>Hello there.</s><break time="500ms"/>Good &amp; bye.</speak>';
      const { audio, captions } = await tts.generateWithCaptions(ssml, { voice, seed: 3, onWarning: () => {} });
      assert.deepEqual(captions.map((c) => c.text), ["Hello there.", "Good & bye."]);
      assert.equal(captions[0].start, 0);
      assert.equal(captions[1].start - captions[0].end, 6 * 1920); // 500 ms = 6.25 frames → 6
      assert.ok(audio.subarray(captions[0].end, captions[1].start).every((v) => v === 0));
      assert.equal(captions[1].end, audio.length);

      // The same document streamed in pieces gives the same samples.
      const streamed = await collect(
        tts.streamText(pieces(ssml.match(/.{1,3}/gs)!), { voice, seed: 3, onWarning: () => {} }),
      );
      assert.deepEqual(streamed, audio);
    });
  });

  test("captions equal the chunk reports and tile the audio; WebVTT from them", async () => {
    await withVoice(async (tts, voice) => {
      const reports: ChunkReport[] = [];
      const { audio, captions } = await tts.generateWithCaptions(TEXT, {
        voice,
        seed: 5,
        maxTokens: 8,
        onWarning: () => {},
        onChunk: (r) => reports.push(r),
      });
      assert.ok(captions.length >= 3);
      assert.deepEqual(captions, reports.map((r) => ({ text: r.text, start: r.start, end: r.end })));
      captions.forEach((c, i) => {
        assert.equal(c.start, i === 0 ? 0 : captions[i - 1].end);
        assert.equal(c.end - c.start, reports[i].frames * 1920);
      });
      assert.equal(captions.at(-1)!.end, audio.length);
      assert.deepEqual(await tts.generate(TEXT, { voice, seed: 5, maxTokens: 8, onWarning: () => {} }), audio);
      const vtt = toWebVtt(captions, tts.sampleRate);
      assert.equal(vtt.split("-->").length - 1, captions.length);
    });
  });

  test("streamText reports each chunk once its frames were yielded", async () => {
    await withVoice(async (tts, voice) => {
      let yielded = 0;
      const seen: number[] = [];
      for await (
        const f of tts.streamText(pieces(TEXT.split(/(?= )/)), {
          voice,
          seed: 2,
          onWarning: () => {},
          onChunk: (r) => {
            assert.ok(r.end <= yielded, "reported after its audio");
            seen.push(r.end);
          },
        })
      ) yielded += f.length;
      assert.equal(seen.at(-1), yielded);
    });
  });

  test("normalize: 'en' in stream and streamText; SSML errors are typed", async () => {
    await withVoice(async (tts, voice) => {
      const texts: string[] = [];
      const onChunk = (r: ChunkReport) => texts.push(r.text);
      await tts.generate("It costs $5.", { voice, seed: 1, normalize: "en", onChunk, onWarning: () => {} });
      await collect(
        tts.streamText(pieces(["It costs ", "$", "5."]), {
          voice,
          seed: 1,
          normalize: "en",
          onChunk,
          onWarning: () => {},
        }),
      );
      assert.deepEqual(texts, ["It costs five dollars.", "It costs five dollars."]);
      await assert.rejects(
        tts.generate("<speak><emphasis>x</emphasis></speak>", { voice }),
        (e: unknown) => e instanceof SsmlError && e.code === "unsupported_ssml" && e.element === "emphasis",
      );
      await assert.rejects(
        collect(tts.streamText(pieces(["<speak>Hi <voice name='x'>"]), { voice })),
        (e: unknown) => e instanceof SsmlError && e.element === "voice",
      );
    });
  });
});

describe("CLI --normalize", () => {
  test("speaks the normalised text: same WAV as the written-out words", async () => {
    const { runCli } = await import("../../src/cli.ts");
    const { readFileSync } = await import("node:fs");
    const { tempDir } = await import("../support/temp_dir.ts");
    const { join } = await import("node:path");
    const { TINY_MODEL_DIR } = await import("../support/tiny_model.ts");
    const dir = tempDir("pocket-normalize-");
    const io = { stdout: () => {}, stderr: () => {} };
    const run = async (args: string[], out: string) => {
      const common = ["--model", TINY_MODEL_DIR, "--voice", TINY_VOICE, "--seed", "9", "--workers", "0", "-q"];
      assert.equal(await runCli([...args, ...common, "-o", join(dir, out)], io), 0);
      return new Uint8Array(readFileSync(join(dir, out)));
    };
    const normalised = await run(["It costs $5 on 3/4/2025.", "--normalize"], "a.wav");
    const written = await run(["It costs five dollars on March fourth, twenty twenty-five."], "b.wav");
    const raw = await run(["It costs $5 on 3/4/2025."], "c.wav");
    assert.deepEqual(normalised, written);
    assert.notDeepEqual(normalised, raw);
  });
});
