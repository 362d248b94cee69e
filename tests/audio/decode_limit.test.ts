// decodeAudio's limit: a small, highly compressed file (10 minutes of audio in ~1 MB) is decoded only up to the
// limit. Memory is proven bounded by counting what the codec loop produced (`framesDecoded`), not by timing.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { opusTone } from "../support/audio.ts";
import { decodeAudio, DEFAULT_MAX_DECODE_SECONDS, InvalidAudioError } from "../../src/audio/mod.ts";

const RATE = 8000;
const MINUTES = 10;
const TOTAL = MINUTES * 60 * RATE;
/** The decoding loop's largest input piece (`MAX_PIECE_BYTES` in decode.ts). */
const MAX_PIECE_BYTES = 16 * 1024;

let dir = "";
const files: Record<string, Uint8Array> = {};

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { cwd: dir });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr}`);
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), "pocket-decode-limit-"));
  // 10 minutes at 8 kHz: a tone (MP3 at 8 kbit/s, Vorbis at sox's lowest quality) and silence (FLAC).
  const synth = (file: string, ...effects: string[]) =>
    run("sox", ["-n", "-r", String(RATE), "-c", "1", "-b", "16", file, "synth", String(MINUTES * 60), ...effects]);
  synth("tone.wav", "sine", "300");
  synth("silence.wav", "sine", "300", "vol", "0");
  run("lame", ["--quiet", "-b", "8", "tone.wav", "tone.mp3"]);
  run("sox", ["tone.wav", "-C", "-1", "tone.ogg"]);
  run("flac", ["-s", "-f", "-o", "silence.flac", "silence.wav"]);
  for (const f of ["tone.wav", "tone.mp3", "tone.ogg", "silence.flac"]) {
    files[f] = new Uint8Array(readFileSync(join(dir, f)));
  }
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** Frames one input piece of a file can hold at the file's average rate, plus one codec frame (≤ 4096 here). */
function onePiece(bytes: Uint8Array, totalFrames: number): number {
  return Math.ceil(totalFrames * MAX_PIECE_BYTES / bytes.length) + 4096;
}

describe("decodeAudio: decoding stops at maxSeconds", () => {
  for (
    const [name, format] of [["tone.mp3", "mp3"], ["tone.ogg", "ogg_vorbis"], ["silence.flac", "flac"], [
      "tone.wav",
      "wav",
    ]]
  ) {
    test(`${name}: 10 minutes in the file, 30 s decoded (+ at most one input piece), truncated`, async () => {
      const bytes = files[name];
      const d = await decodeAudio(bytes, { maxSeconds: 30 });
      assert.equal(d.format, format);
      assert.equal(d.sampleRate, RATE);
      assert.equal(d.samples.length, 30 * RATE);
      assert.equal(d.truncated, true);
      assert.ok(d.framesDecoded > 30 * RATE, "one frame past the limit tells a longer file");
      assert.ok(
        d.framesDecoded <= 30 * RATE + onePiece(bytes, TOTAL),
        `${d.framesDecoded} frames decoded for a limit of ${30 * RATE} (the file holds ${TOTAL})`,
      );
    });
  }

  test("where the pieces are cut does not change the samples (MP3 decoded with two limits)", async () => {
    const head = await decodeAudio(files["tone.mp3"], { maxSeconds: 2 });
    const longer = await decodeAudio(files["tone.mp3"], { maxSeconds: 10 });
    assert.deepEqual(head.samples, longer.samples.subarray(0, head.samples.length));
  });

  test(`the default limit is ${DEFAULT_MAX_DECODE_SECONDS} s`, async () => {
    const d = await decodeAudio(files["tone.mp3"]);
    assert.equal(d.samples.length, DEFAULT_MAX_DECODE_SECONDS * RATE);
    assert.equal(d.truncated, true);
    assert.ok(d.framesDecoded <= DEFAULT_MAX_DECODE_SECONDS * RATE + onePiece(files["tone.mp3"], TOTAL));
  });

  test("Ogg Opus (this library's encoder, 6 kbit/s): 3 minutes in the file, 30 s decoded", async () => {
    const bytes = await opusTone(180);
    const d = await decodeAudio(bytes, { maxSeconds: 30 });
    assert.deepEqual([d.format, d.sampleRate, d.samples.length, d.truncated], ["ogg_opus", 48000, 30 * 48000, true]);
    assert.ok(d.framesDecoded <= 30 * 48000 + onePiece(bytes, 180 * 48000), `${d.framesDecoded} frames decoded`);
  });

  test("a file shorter than the limit is whole and not truncated; exactly the limit is not truncated", async () => {
    const d = await decodeAudio(files["tone.mp3"], { maxSeconds: 3600 });
    assert.equal(d.truncated, false);
    assert.equal(d.framesDecoded, d.samples.length);
    assert.ok(d.samples.length >= TOTAL);
    const wav = await decodeAudio(files["tone.wav"], { maxSeconds: MINUTES * 60 });
    assert.deepEqual([wav.samples.length, wav.truncated], [TOTAL, false]);
  });

  test("a bad maxSeconds is a typed error", async () => {
    for (const maxSeconds of [0, -1, NaN, Infinity]) {
      await assert.rejects(
        decodeAudio(files["tone.wav"], { maxSeconds }),
        (e) => e instanceof InvalidAudioError && e.code === "invalid_audio",
      );
    }
  });
});
