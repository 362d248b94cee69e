import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFixture } from "../support/fixtures.ts";
import { alignedSnr } from "../support/signal.ts";
import {
  type AudioFormat,
  decodeAudio,
  decodeWav,
  detectAudioFormat,
  encodeWav,
  InvalidAudioError,
  resample,
  UnsupportedAudioError,
} from "../../src/audio/mod.ts";

// The fixtures in tests/fixtures/audio/formats/ were written by sox, libsndfile, flac and lame (make.py there) from
// this signal: channel c of frame i at 16 kHz, 3200 frames.
const RATE = 16000;
const FRAMES = 3200;
function signal(c: number, i: number): number {
  const t = i / RATE;
  return 0.5 * Math.sin(2 * Math.PI * (440 + 220 * c) * t + 0.3 * c) +
    0.2 * Math.sin(2 * Math.PI * (1250 + 50 * c) * t);
}
function monoSignal(channels: number): Float64Array {
  return Float64Array.from({ length: FRAMES }, (_, i) => {
    let s = 0;
    for (let c = 0; c < channels; c++) s += signal(c, i);
    return s / channels;
  });
}

const fixture = (name: string) => readFixture(`audio/formats/${name}`);

/** Lossless files: [file, format, channels, largest allowed |error| against the signal (half a quantisation step)]. */
const LOSSLESS: [string, AudioFormat, number, number][] = [
  ["pcm8.wav", "wav", 1, 0.5 / 128],
  ["pcm16.wav", "wav", 1, 0.5 / 32768],
  ["pcm16_odd_chunks.wav", "wav", 1, 0.5 / 32768],
  ["pcm24_plain.wav", "wav", 1, 0.5 / 2 ** 23],
  ["pcm24_stereo.wav", "wav", 2, 0.5 / 2 ** 23],
  ["pcm32_stereo.wav", "wav", 2, 0.5 / 2 ** 31],
  ["float32.wav", "wav", 1, 0],
  ["float64_stereo.wav", "wav", 2, 0],
  ["wavex_float32_stereo.wav", "wav", 2, 0],
  ["pcm16_6ch.wav", "wav", 6, 0.5 / 32768],
  ["stereo16.flac", "flac", 2, 0.5 / 32768],
  ["pcm24.flac", "flac", 1, 0.5 / 2 ** 23],
  ["mono16.oga", "ogg_flac", 1, 0.5 / 32768],
];

describe("decodeAudio: lossless files from independent encoders equal the signal", () => {
  for (const [name, format, channels, quantum] of LOSSLESS) {
    test(`${name}: ${format}, ${channels} channel(s)`, async () => {
      const bytes = await fixture(name);
      assert.equal(detectAudioFormat(bytes), format);
      const d = await decodeAudio(bytes);
      assert.deepEqual([d.format, d.sampleRate, d.channels, d.samples.length], [format, RATE, channels, FRAMES]);
      // Each channel is within half a step of the signal (+ float32 rounding), so their mean is too.
      const expected = monoSignal(channels);
      let worst = 0;
      for (let i = 0; i < FRAMES; i++) worst = Math.max(worst, Math.abs(d.samples[i] - expected[i]));
      assert.ok(worst <= quantum + 1e-7, `worst |error| ${worst} > ${quantum}`);
    });
  }

  test("FLAC and WAV of the same PCM decode to identical samples (16 and 24 bits)", async () => {
    for (const [flac, wav] of [["mono16.oga", "pcm16.wav"], ["pcm24.flac", "pcm24_plain.wav"]]) {
      assert.deepEqual(
        (await decodeAudio(await fixture(flac))).samples,
        (await decodeAudio(await fixture(wav))).samples,
      );
    }
  });

  test("WAV channel order: each channel of the interleaved data is its own signal", async () => {
    const wav = decodeWav(await fixture("pcm16_6ch.wav"));
    for (let c = 0; c < 6; c++) {
      for (let i = 0; i < FRAMES; i += 97) assert.ok(Math.abs(wav.samples[6 * i + c] - signal(c, i)) <= 2 / 32768);
    }
  });
});

/** Lossy files: [file, format, rate, channels, least SNR (dB) after alignment]. */
const LOSSY: [string, AudioFormat, number, number, number][] = [
  ["stereo.mp3", "mp3", 16000, 2, 15],
  ["id3_mono.mp3", "mp3", 16000, 1, 10],
  ["vorbis.ogg", "ogg_vorbis", 16000, 1, 15],
  ["opus_stereo.opus", "ogg_opus", 48000, 2, 10],
];

describe("decodeAudio: lossy files decode to the signal (aligned SNR)", () => {
  for (const [name, format, rate, channels, minSnr] of LOSSY) {
    test(`${name}: ${format} at ${rate} Hz, ${channels} channel(s), SNR ≥ ${minSnr} dB`, async () => {
      const d = await decodeAudio(await fixture(name));
      assert.deepEqual([d.format, d.sampleRate, d.channels], [format, rate, channels]);
      const at16k = resample(d.samples, d.sampleRate, RATE);
      assert.ok(Math.abs(at16k.length - FRAMES) <= 1500, `length ${at16k.length}`); // encoder delay and padding
      const { lag, snr } = alignedSnr(monoSignal(channels), at16k, 1500);
      console.log(`${name}: SNR ${snr.toFixed(1)} dB at lag ${lag}`);
      assert.ok(snr >= minSnr, `SNR ${snr} dB`);
    });
  }
});

function expectError(e: unknown, type: typeof InvalidAudioError | typeof UnsupportedAudioError, code: string) {
  assert.ok(e instanceof type, `expected ${type.name}, got ${e}`);
  assert.equal((e as InvalidAudioError).code, code, `code of "${(e as Error).message}"`);
  return true;
}

const SUPPORTED_NAMED = /WAV.*FLAC.*MP3.*Ogg Vorbis.*Ogg Opus/;

describe("decodeAudio: what it refuses, with typed errors", () => {
  const bytes = (...parts: (string | number[])[]) =>
    new Uint8Array(parts.flatMap((p) => typeof p === "string" ? Array.from(p, (c) => c.charCodeAt(0)) : p));
  const junk = Uint8Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24);
  const unsupported: [string, Uint8Array | Promise<Uint8Array>, RegExp][] = [
    ["M4A", bytes([0, 0, 0, 0x20], "ftypM4A ", new Array(24).fill(0)), /MP4\/M4A/],
    ["MP4 video", bytes([0, 0, 0, 0x18], "ftypisom", new Array(24).fill(0)), /MP4/],
    ["AAC (ADTS)", bytes([0xff, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc], new Array(64).fill(0)), /AAC/],
    ["WebM", bytes([0x1a, 0x45, 0xdf, 0xa3], new Array(32).fill(0)), /WebM/],
    ["AVI", bytes("RIFF", [4, 0, 0, 0], "AVI LIST"), /AVI/],
    ["Ogg Theora", bytes("OggS", new Array(22).fill(0), [1, 30, 0x80], "theora", new Array(23).fill(0)), /Theora/],
    ["AIFF (sox)", fixture("tone.aiff"), /AIFF/],
    ["Sun AU (sox)", fixture("tone.au"), /Sun AU/],
    ["a safetensors voice file", readFixture("tiny/voice_state.safetensors"), /safetensors/],
    ["junk", junk, /unrecognised/],
    ["text", bytes("hello, this is not audio"), /unrecognised/],
    ["empty", new Uint8Array(), /empty/],
  ];
  for (const [name, input, message] of unsupported) {
    test(`${name} → UnsupportedAudioError unsupported_audio naming the supported formats`, async () => {
      const b = await input;
      assert.throws(() => detectAudioFormat(b), (e) => expectError(e, UnsupportedAudioError, "unsupported_audio"));
      await assert.rejects(decodeAudio(b), (e: Error) => {
        expectError(e, UnsupportedAudioError, "unsupported_audio");
        assert.match(e.message, message);
        assert.match(e.message, SUPPORTED_NAMED);
        return true;
      });
    });
  }

  const cuttable = ["pcm16.wav", "pcm24_stereo.wav", "stereo16.flac", "stereo.mp3", "vorbis.ogg", "opus_stereo.opus"];
  for (const name of cuttable) {
    test(`${name} cut at 30% / 60% / 95% → InvalidAudioError truncated_audio`, async () => {
      const b = await fixture(name);
      for (const fraction of [0.3, 0.6, 0.95]) {
        await assert.rejects(
          decodeAudio(b.subarray(0, Math.floor(b.length * fraction))),
          (e) => expectError(e, InvalidAudioError, "truncated_audio"),
        );
      }
    });
  }

  test("an MP3 frame header followed by junk is not taken for MP3", async () => {
    const b = new Uint8Array(2048).map((_, i) => (i * 40503) >>> 8);
    b.set([0xff, 0xfb, 0x90, 0x64]);
    await assert.rejects(decodeAudio(b), (e) => expectError(e, UnsupportedAudioError, "unsupported_audio"));
  });

  test("a damaged Ogg Vorbis file → InvalidAudioError corrupt_audio", async () => {
    const b = (await fixture("vorbis.ogg")).slice();
    for (let i = 35; i < 57; i++) b[i] ^= 0x5a; // the identification header's fields (page 0's packet)
    await assert.rejects(decodeAudio(b), (e) => expectError(e, InvalidAudioError, "corrupt_audio"));
  });

  test("WAV problems keep decodeWav's codes (RF64, no data chunk)", async () => {
    await assert.rejects(
      decodeAudio(bytes("RF64", [0, 0, 0, 0], "WAVE")),
      (e) => expectError(e, InvalidAudioError, "unsupported_wav"),
    );
    const noData = bytes("RIFF", [28, 0, 0, 0], "WAVE", "fmt ", [16, 0, 0, 0, 1, 0, 1, 0, 0x80, 0x3e, 0, 0], [
      0,
      0x7d,
      0,
      0,
      2,
      0,
      16,
      0,
    ]);
    await assert.rejects(decodeAudio(noData), (e) => expectError(e, InvalidAudioError, "missing_wav_chunk"));
  });
});

describe("decodeAudio: streamed WAVs", () => {
  test("an unknown-length header (the reference's 10⁹ frames) decodes to the samples present", async () => {
    const x = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i / 10) * 0.5);
    const d = await decodeAudio(encodeWav(x, 24000, { unknownLength: true }));
    assert.equal(d.samples.length, 1000);
    assert.ok(d.samples.every((v, i) => Math.abs(v - x[i]) <= 2 / 32768));
    // float32 stereo: the claim is capped to fit 32 bits, still a placeholder
    const stereo = await decodeAudio(
      encodeWav(new Float32Array(200), 24000, { unknownLength: true, format: "float32", channels: 2 }),
    );
    assert.deepEqual([stereo.channels, stereo.samples.length], [2, 100]);
  });

  test("0xFFFFFFFF data sizes (pipes) are placeholders too", async () => {
    const wav = encodeWav(new Float32Array(500), 16000);
    new DataView(wav.buffer).setUint32(40, 0xffffffff, true);
    new DataView(wav.buffer).setUint32(4, 0xffffffff, true);
    assert.equal((await decodeAudio(wav)).samples.length, 500);
  });
});
