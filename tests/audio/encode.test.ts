import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { alignedSnr, blocks, harmonicSignal } from "../support/signal.ts";
import { concat } from "../../src/audio/bytes.ts";
import {
  type AudioEncoder,
  createAudioEncoder,
  decodeAudio,
  decodeWav,
  encodeWav,
  InvalidAudioError,
  resample,
  UnsupportedAudioError,
} from "../../src/audio/mod.ts";
import { oggCrc } from "../../src/audio/ogg_writer.ts";

const RATE = 24000;
const speech = harmonicSignal(RATE, RATE); // 1 s

/** Push `x` in blocks of the given sizes (cycled), then end; the bytes of every call, and the whole stream. */
function run(encoder: AudioEncoder, x: Float32Array, sizes = [1920]): { calls: Uint8Array[]; bytes: Uint8Array } {
  const calls = [...blocks(x.length, sizes)].map(([i, j]) => encoder.push(x.subarray(i, j)));
  calls.push(encoder.end());
  return { calls, bytes: concat(calls) };
}

describe("createAudioEncoder: pcm and wav", () => {
  test("pcm: raw s16le, the reference's int16 conversion, no header", async () => {
    const e = await createAudioEncoder("pcm", RATE);
    assert.equal(e.contentType, "audio/pcm");
    const { bytes } = run(e, speech, [1920, 7, 333]);
    assert.deepEqual(bytes, encodeWav(speech, RATE).subarray(44));
  });

  test("wav: the reference CLI's streaming bytes, the header in the first push", async () => {
    const e = await createAudioEncoder("wav", RATE);
    assert.equal(e.contentType, "audio/wav");
    const { calls, bytes } = run(e, speech, [1920, 1001]);
    assert.deepEqual(bytes, encodeWav(speech, RATE, { unknownLength: true }));
    assert.equal(calls[0].length, 44 + 2 * 1920);
    const empty = await createAudioEncoder("wav", RATE);
    assert.equal(empty.end().length, 44); // nothing pushed: still a valid (empty) WAV
  });
});

describe("createAudioEncoder: flac (own encoder), decoded back by libFLAC", () => {
  test("lossless: decodes to exactly the pcm16 samples, whatever the push sizes", async () => {
    const reference = decodeWav(encodeWav(speech, RATE)).samples;
    let first: Uint8Array | undefined;
    for (const sizes of [[1920], [1, 4000, 77], [RATE]]) {
      const e = await createAudioEncoder("flac", RATE);
      assert.equal(e.contentType, "audio/flac");
      const { bytes } = run(e, speech, sizes);
      const d = await decodeAudio(bytes);
      assert.deepEqual([d.format, d.sampleRate, d.channels], ["flac", RATE, 1]);
      assert.deepEqual(d.samples, reference);
      first ??= bytes;
      assert.deepEqual(bytes, first); // frames are fixed 1920-sample blocks: the bytes do not depend on pushes
    }
    assert.ok(first!.length < 0.75 * 2 * speech.length, `${first!.length} bytes: no smaller than pcm16`);
  });

  test("silence (CONSTANT), white noise (VERBATIM), full scale and a short last frame decode exactly", async () => {
    let seed = 1;
    const noise = Float32Array.from(
      { length: 5000 },
      () => ((seed = (seed * 48271) % 2147483647) / 2147483647) * 2 - 1,
    );
    const x = new Float32Array(1920 * 2 + 5000 + 1920 + 123);
    x.set(noise, 1920 * 2);
    x.fill(1, 1920 * 2 + 5000, 1920 * 2 + 5000 + 100);
    x.fill(-1, 1920 * 2 + 5000 + 100, 1920 * 2 + 5000 + 200);
    const { bytes } = run(await createAudioEncoder("flac", 16000), x);
    const d = await decodeAudio(bytes);
    assert.equal(d.sampleRate, 16000);
    assert.deepEqual(d.samples, decodeWav(encodeWav(x, 16000)).samples);
  });
});

describe("createAudioEncoder: opus (Ogg Opus, RFC 7845)", () => {
  test("decodes (ogg-opus-decoder) to the input's exact length at 48 kHz, SNR ≥ 12 dB after resampling", async () => {
    const e = await createAudioEncoder("opus", RATE);
    assert.equal(e.contentType, "audio/ogg; codecs=opus");
    const { calls, bytes } = run(e, speech);
    assert.ok(calls[0].length > 0, "the first push sends the headers and the first packets");
    const d = await decodeAudio(bytes);
    assert.deepEqual([d.format, d.sampleRate, d.channels], ["ogg_opus", 48000, 1]);
    assert.equal(d.samples.length, 2 * speech.length); // pre-skip and end trim
    const { lag, snr } = alignedSnr(speech, resample(d.samples, 48000, RATE), 50);
    console.log(`opus 32 kbit/s: SNR ${snr.toFixed(1)} dB at lag ${lag}, ${bytes.length} bytes for 1 s`);
    assert.ok(snr >= 12 && Math.abs(lag) <= 2, `SNR ${snr} dB at lag ${lag}`);
  });

  test("pages: CRCs, sequence numbers, BOS/EOS flags, granules, OpusHead fields", async () => {
    const { bytes } = run(await createAudioEncoder("opus", RATE), speech, [1000]);
    const pages: { flags: number; granule: bigint; sequence: number }[] = [];
    let preSkip = 0;
    for (let at = 0; at < bytes.length;) {
      const v = new DataView(bytes.buffer, bytes.byteOffset + at);
      assert.equal(String.fromCharCode(...bytes.subarray(at, at + 4)), "OggS");
      const segments = bytes[at + 26];
      let size = 27 + segments;
      for (let i = 0; i < segments; i++) size += bytes[at + 27 + i];
      const page = bytes.slice(at, at + size);
      const crc = v.getUint32(22, true);
      page.fill(0, 22, 26);
      assert.equal(oggCrc(page), crc);
      if (pages.length === 0) {
        assert.equal(String.fromCharCode(...bytes.subarray(at + 28, at + 36)), "OpusHead");
        assert.deepEqual([bytes[at + 36], bytes[at + 37]], [1, 1]); // version, channels
        preSkip = v.getUint16(38, true);
        assert.equal(v.getUint32(40, true), RATE);
      }
      pages.push({ flags: bytes[at + 5], granule: v.getBigInt64(6, true), sequence: v.getUint32(18, true) });
      at += size;
    }
    assert.equal(pages[0].flags, 2);
    assert.equal(pages.at(-1)!.flags, 4);
    assert.ok(pages.slice(1, -1).every((p) => p.flags === 0));
    assert.deepEqual(pages.map((p) => p.sequence), pages.map((_, i) => i));
    assert.equal(pages.at(-1)!.granule, BigInt(preSkip + 2 * speech.length));
    for (let i = 3; i < pages.length; i++) assert.ok(pages[i].granule >= pages[i - 1].granule);
  });

  test("deterministic: the same audio gives the same bytes", async () => {
    const a = run(await createAudioEncoder("opus", RATE), speech).bytes;
    const b = run(await createAudioEncoder("opus", RATE), speech).bytes;
    assert.deepEqual(a, b);
  });
});

describe("createAudioEncoder: mp3 (lamejs)", () => {
  test("decodes (mpg123) to the signal: SNR ≥ 12 dB after the encoder delay", async () => {
    const e = await createAudioEncoder("mp3", RATE);
    assert.equal(e.contentType, "audio/mpeg");
    const { bytes } = run(e, speech);
    const d = await decodeAudio(bytes);
    assert.deepEqual([d.format, d.sampleRate, d.channels], ["mp3", RATE, 1]);
    const { lag, snr } = alignedSnr(speech, d.samples, 2000);
    console.log(`mp3 64 kbit/s: SNR ${snr.toFixed(1)} dB at lag ${lag}, ${bytes.length} bytes for 1 s`);
    assert.ok(snr >= 12, `SNR ${snr} dB`);
  });
});

describe("createAudioEncoder: refusals", () => {
  for (const format of ["aac", "ogg", "WAV", "../etc/passwd", ""]) {
    test(`"${format}" → UnsupportedAudioError unsupported_audio listing the formats`, async () => {
      await assert.rejects(createAudioEncoder(format, RATE), (e: Error) => {
        assert.ok(e instanceof UnsupportedAudioError);
        assert.equal(e.code, "unsupported_audio");
        assert.match(e.message, /pcm, wav, mp3, opus, flac/);
        return true;
      });
    });
  }
  test("rates a format cannot encode → InvalidAudioError invalid_audio", async () => {
    for (const [format, rate] of [["opus", 44100], ["mp3", 7000], ["pcm", 0], ["flac", 1.5]] as const) {
      await assert.rejects(createAudioEncoder(format, rate), (e: Error) => {
        assert.ok(e instanceof InvalidAudioError, `${format} ${rate}: ${e}`);
        assert.equal(e.code, "invalid_audio");
        return true;
      });
    }
  });
});
