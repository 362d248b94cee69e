import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFixture } from "../support/fixtures.ts";
import { parseSafetensors } from "../../src/model/safetensors.ts";
import {
  decodeWav,
  encodeWav,
  toMono,
  WAV_UNKNOWN_LENGTH,
  wavHeader,
  type WavSampleEncoding,
  WavStreamWriter,
} from "../../src/audio/mod.ts";
import { InvalidAudioError } from "../../src/errors.ts";

// ---------------------------------------------------------------------------------------------------------------
// An independent little WAV builder (byte arrays by hand, not the module's DataView code) and field reader.
// ---------------------------------------------------------------------------------------------------------------

function le(value: number, bytes: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < bytes; i++) out.push(Math.floor(value / 2 ** (8 * i)) % 256);
  return out;
}
const str = (s: string) => Array.from(s, (c) => c.charCodeAt(0));

function chunk(id: string, body: ArrayLike<number>, pad = true): number[] {
  const out = [...str(id), ...le(body.length, 4), ...Array.from(body)];
  if (pad && body.length % 2 === 1) out.push(0);
  return out;
}

function riff(...chunks: number[][]): Uint8Array {
  const body = [...str("WAVE"), ...chunks.flat()];
  return new Uint8Array([...str("RIFF"), ...le(body.length, 4), ...body]);
}

const KSDATAFORMAT = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];

function fmtBody(tag: number, channels: number, rate: number, bits: number, extensible = false): number[] {
  const block = channels * bits / 8;
  const base = [
    ...le(extensible ? 0xfffe : tag, 2),
    ...le(channels, 2),
    ...le(rate, 4),
    ...le(rate * block, 4),
    ...le(block, 2),
    ...le(bits, 2),
  ];
  if (!extensible) return base;
  return [...base, ...le(22, 2), ...le(bits, 2), ...le(channels === 2 ? 3 : 4, 4), ...le(tag, 2), ...KSDATAFORMAT];
}

function u32At(b: Uint8Array, p: number): number {
  return b[p] + b[p + 1] * 256 + b[p + 2] * 65536 + b[p + 3] * 16777216;
}
function u16At(b: Uint8Array, p: number): number {
  return b[p] + b[p + 1] * 256;
}
function asciiAt(b: Uint8Array, p: number, n = 4): string {
  return String.fromCharCode(...b.subarray(p, p + n));
}

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function expectAudioError(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InvalidAudioError, `expected InvalidAudioError, got ${e}`);
    assert.equal(e.code, code, `code of "${e.message}"`);
    if (message) assert.match(e.message, message);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Golden: the reference CLI's WAV bytes (golden README §3(e)).
// ---------------------------------------------------------------------------------------------------------------

const CASES = [
  { name: "short", samples: 28_800 },
  { name: "normal", samples: 40_320 },
  { name: "long", samples: 286_080 },
];

async function goldenCase(name: string): Promise<{ audio: Float32Array; wav: Uint8Array }> {
  const st = parseSafetensors(await readFixture(`tiny/e2e_${name}.safetensors`), `e2e_${name}.safetensors`);
  return { audio: await st.float32("audio"), wav: await readFixture(`tiny/e2e_${name}.wav`) };
}

/** The 44-byte header the reference writes at 24 kHz, written out field by field from the README. */
const REFERENCE_HEADER = riff(
  chunk("fmt ", fmtBody(1, 1, 24000, 16)),
  [...str("data"), ...le(2_000_000_000, 4)],
).subarray(0, 44);
// riff() sized the RIFF body from what it holds; the reference claims 36 + 2·10⁹.
REFERENCE_HEADER.set(le(2_000_000_036, 4), 4);

describe("encodeWav: the reference CLI's bytes (golden e2e_*.wav)", () => {
  for (const { name, samples } of CASES) {
    test(`e2e_${name}: header exact, every sample exact, 200 ms of trailing zeros`, async () => {
      const { audio, wav } = await goldenCase(name);
      assert.equal(audio.length, samples);
      const ours = encodeWav(audio, 24000, { unknownLength: true, trailingSilenceMs: 200 });
      assert.equal(ours.length, wav.length);
      assert.deepEqual(ours.subarray(0, 44), wav.subarray(0, 44));
      assert.deepEqual(ours.subarray(0, 44), REFERENCE_HEADER);
      // The README allows ±1 LSB for a port's own audio; from the golden float audio itself the float32 product
      // reproduces the reference's conversion exactly, so require that (and report the worst difference if not).
      const a = new Int16Array(ours.buffer.slice(44));
      const g = new Int16Array(wav.buffer.slice(wav.byteOffset + 44, wav.byteOffset + wav.length));
      let worst = 0;
      let differing = 0;
      for (let i = 0; i < a.length; i++) {
        const d = Math.abs(a[i] - g[i]);
        if (d > 0) differing++;
        worst = Math.max(worst, d);
      }
      assert.ok(worst <= 1, `worst difference ${worst} LSB`);
      assert.equal(differing, 0, `${differing} samples differ by 1 LSB`);
      assert.ok(g.subarray(samples).every((x) => x === 0));
      assert.equal(g.length - samples, 4800);
    });
  }

  test("WavStreamWriter: header, then 1920-sample frames, then silence(200) gives the same bytes", async () => {
    for (const { name } of CASES) {
      const { audio, wav } = await goldenCase(name);
      const w = new WavStreamWriter(24000);
      const parts = [w.header()];
      for (let i = 0; i < audio.length; i += 1920) parts.push(w.encode(audio.subarray(i, i + 1920)));
      parts.push(w.silence(200));
      const total = parts.reduce((s, p) => s + p.length, 0);
      const joined = new Uint8Array(total);
      let off = 0;
      for (const p of parts) {
        joined.set(p, off);
        off += p.length;
      }
      assert.deepEqual(joined, encodeWav(audio, 24000, { unknownLength: true, trailingSilenceMs: 200 }));
      assert.deepEqual(joined, wav, name);
    }
  });

  test("the pcm16 conversion: clamp, float32 product with 32767, truncation toward zero, NaN → 0", () => {
    const x = new Float32Array([0, 1, -1, 2, -2, 0.5, -0.5, 1e-6, -1e-6, 0.99999994, NaN, Infinity, -Infinity]);
    const expected = [0, 32767, -32767, 32767, -32767, 16383, -16383, 0, 0, 32766, 0, 32767, -32767];
    const bytes = encodeWav(x, 8000);
    const got = Array.from({ length: x.length }, (_, i) => {
      const u = u16At(bytes, 44 + 2 * i);
      return u >= 32768 ? u - 65536 : u;
    });
    assert.deepEqual(got, expected);
    // A value whose exact product lies just below an integer but whose float32 product rounds up to it:
    // x = 3/32767 rounded to float32; float32(x·32767) = 3 while the double product is 2.9999999972…
    const y = Math.fround(3 / 32767);
    assert.ok(y * 32767 < 3 && Math.fround(y * 32767) === 3, "premise of the case");
    assert.equal(u16At(encodeWav(new Float32Array([y]), 8000), 44), 3);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------------------------------------------

describe("wavHeader", () => {
  test("pcm16 with a known length: the canonical 44 bytes", () => {
    const h = wavHeader(22050, { length: 1001, channels: 2 });
    const expected = riff(chunk("fmt ", fmtBody(1, 2, 22050, 16)), [...str("data"), ...le(4004, 4)]);
    assert.deepEqual(h.subarray(8), expected.subarray(8));
    assert.deepEqual(h.subarray(0, 4), expected.subarray(0, 4));
    assert.equal(u32At(h, 4), 36 + 4004);
  });

  test("pcm16 unknown length: claims 10⁹ frames (data 2·10⁹, RIFF 2·10⁹ + 36)", () => {
    const h = wavHeader(24000);
    assert.deepEqual(h, REFERENCE_HEADER);
    assert.equal(WAV_UNKNOWN_LENGTH, 1e9);
    assert.equal(u32At(wavHeader(24000, { channels: 2 }), 40), 4e9);
  });

  test("float32: 58 bytes, fmt of 18 bytes (format 3, cbSize 0), fact with the frame count, then data", () => {
    const h = wavHeader(48000, { format: "float32", length: 10 });
    assert.equal(h.length, 58);
    assert.equal(asciiAt(h, 0), "RIFF");
    assert.equal(u32At(h, 4), 50 + 40);
    assert.equal(asciiAt(h, 8), "WAVE");
    assert.equal(asciiAt(h, 12), "fmt ");
    assert.equal(u32At(h, 16), 18);
    assert.deepEqual([u16At(h, 20), u16At(h, 22), u32At(h, 24), u32At(h, 28)], [3, 1, 48000, 192000]);
    assert.deepEqual([u16At(h, 32), u16At(h, 34), u16At(h, 36)], [4, 32, 0]);
    assert.equal(asciiAt(h, 38), "fact");
    assert.deepEqual([u32At(h, 42), u32At(h, 46)], [4, 10]);
    assert.equal(asciiAt(h, 50), "data");
    assert.equal(u32At(h, 54), 40);
  });

  test("float32 unknown length: 10⁹ frames claimed in fact and data; capped to fit 32 bits for stereo", () => {
    const h = wavHeader(24000, { format: "float32" });
    assert.deepEqual([u32At(h, 46), u32At(h, 54), u32At(h, 4)], [1e9, 4e9, 4e9 + 50]);
    const s = wavHeader(24000, { format: "float32", channels: 2 });
    const frames = u32At(s, 46);
    assert.equal(frames, Math.floor((0xffffffff - 50) / 8));
    assert.equal(u32At(s, 54), frames * 8);
    assert.ok(u32At(s, 4) <= 0xffffffff && u32At(s, 4) === frames * 8 + 50);
  });

  test("out-of-range arguments are InvalidAudioError invalid_audio", () => {
    for (const rate of [0, -1, 1.5, NaN, 2 ** 32]) expectAudioError(() => wavHeader(rate), "invalid_audio", /rate/);
    expectAudioError(() => wavHeader(24000, { channels: 0 }), "invalid_audio", /channel/);
    expectAudioError(() => wavHeader(24000, { length: -1 }), "invalid_audio", /length/);
    expectAudioError(() => wavHeader(24000, { length: 2 ** 31 }), "invalid_audio", /4 GiB/);
    expectAudioError(() => wavHeader(2 ** 31, { channels: 4 }), "invalid_audio", /byte rate/);
    expectAudioError(() => wavHeader(24000, { format: "pcm24" as "pcm16" }), "invalid_audio", /format/);
    expectAudioError(() => encodeWav(new Float32Array(3), 24000, { channels: 2 }), "invalid_audio", /interleaved/);
    expectAudioError(() => encodeWav(new Float32Array(3), 24000, { trailingSilenceMs: -1 }), "invalid_audio");
    expectAudioError(() => new WavStreamWriter(0), "invalid_audio");
    expectAudioError(() => new WavStreamWriter(8000, { channels: 2 }).encode(new Float32Array(1)), "invalid_audio");
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------------------------

interface FormatCase {
  encoding: WavSampleEncoding;
  tag: number;
  bits: number;
  /** The i-th test value: its stored bytes and its expected float32. */
  make: (r: () => number, i: number) => { bytes: number[]; value: number };
}

function intCase(bits: number): FormatCase {
  const half = 2 ** (bits - 1);
  const extremes = [-half, half - 1, 0, -1, 1];
  return {
    encoding: `pcm${bits}` as WavSampleEncoding,
    tag: 1,
    bits,
    make: (r, i) => {
      const v = i < extremes.length ? extremes[i] : Math.floor(r() * 2 * half) - half;
      // 8-bit WAV is unsigned (offset 128); wider is two's complement little-endian.
      const stored = bits === 8 ? v + 128 : v < 0 ? v + 2 ** bits : v;
      return { bytes: le(stored, bits / 8), value: Math.fround(v / half) };
    },
  };
}

function floatCase(bits: 32 | 64): FormatCase {
  return {
    encoding: `float${bits}`,
    tag: 3,
    bits,
    make: (r, i) => {
      const v = [0, -0.5, 1.5, -3e-9][i] ?? (r() * 2 - 1) * 1.2;
      const arr = bits === 32 ? new Float32Array([v]) : new Float64Array([v]);
      return { bytes: Array.from(new Uint8Array(arr.buffer)), value: Math.fround(v) };
    },
  };
}

const FORMATS: FormatCase[] = [intCase(8), intCase(16), intCase(24), intCase(32), floatCase(32), floatCase(64)];

describe("decodeWav: every supported format", () => {
  for (const f of FORMATS) {
    for (const channels of [1, 2, 3]) {
      for (const extensible of [false, true]) {
        test(`${f.encoding}, ${channels} channel(s)${extensible ? ", WAVE_FORMAT_EXTENSIBLE" : ""}`, () => {
          const r = rng(f.bits * 10 + channels);
          const frames = 37;
          const stored: number[] = [];
          const expected: number[] = [];
          for (let i = 0; i < frames * channels; i++) {
            const { bytes, value } = f.make(r, i);
            stored.push(...bytes);
            expected.push(value);
          }
          const file = riff(
            chunk("fmt ", fmtBody(f.tag, channels, 44100, f.bits, extensible)),
            chunk("data", stored),
          );
          const d = decodeWav(file);
          assert.equal(d.sampleRate, 44100);
          assert.equal(d.channels, channels);
          assert.equal(d.length, frames);
          assert.equal(d.encoding, f.encoding);
          assert.equal(d.truncated, false);
          assert.deepEqual(Array.from(d.samples), expected);
        });
      }
    }
  }

  test("encodeWav → decodeWav: pcm16 within the conversion's step, float32 exactly, both header kinds", () => {
    const r = rng(7);
    const x = Float32Array.from({ length: 2 * 501 }, () => (r() * 2 - 1) * 1.1);
    for (const channels of [1, 2]) {
      for (const unknownLength of [false, true]) {
        const opts = { channels, unknownLength, trailingSilenceMs: 10 };
        const pcm = decodeWav(encodeWav(x, 16000, opts));
        const flt = decodeWav(encodeWav(x, 16000, { ...opts, format: "float32" }));
        const frames = x.length / channels + 160;
        for (const d of [pcm, flt]) {
          assert.deepEqual([d.sampleRate, d.channels, d.length, d.truncated], [16000, channels, frames, unknownLength]);
          assert.ok(d.samples.subarray(x.length).every((v) => v === 0));
        }
        assert.equal(pcm.encoding, "pcm16");
        assert.equal(flt.encoding, "float32");
        assert.deepEqual(flt.samples.subarray(0, x.length), x);
        for (let i = 0; i < x.length; i++) {
          const c = Math.max(-1, Math.min(1, x[i]));
          // int16 = trunc(c · 32767) decoded as /32768: off from c by < 1/32767 + |c|/32768
          assert.ok(Math.abs(pcm.samples[i] - c) < 1 / 32767 + Math.abs(c) / 32768 + 1e-9, `sample ${i}`);
        }
      }
    }
  });

  test("golden e2e WAVs: unknown-length header → truncated, the whole samples present, equal to the float audio", async () => {
    for (const { name, samples } of CASES) {
      const { audio, wav } = await goldenCase(name);
      const d = decodeWav(wav);
      assert.deepEqual([d.sampleRate, d.channels, d.encoding, d.truncated], [24000, 1, "pcm16", true]);
      assert.equal(d.length, samples + 4800);
      for (let i = 0; i < samples; i++) {
        const c = Math.max(-1, Math.min(1, audio[i]));
        assert.ok(Math.abs(d.samples[i] - c) < 1 / 32767 + Math.abs(c) / 32768 + 1e-9, `${name} sample ${i}`);
      }
      // a partial last sample is dropped, still truncated
      const cut = decodeWav(wav.subarray(0, 44 + 2 * 100 + 1));
      assert.deepEqual([cut.length, cut.truncated], [100, true]);
      assert.deepEqual(cut.samples, d.samples.subarray(0, 100));
      const headerOnly = decodeWav(wav.subarray(0, 44));
      assert.deepEqual([headerOnly.length, headerOnly.truncated], [0, true]);
    }
  });

  test("espeak_prompt_22050.wav: 22050 Hz mono pcm16, 100975 samples (MANIFEST), read as int16 / 32768", async () => {
    const bytes = await readFixture("audio/espeak_prompt_22050.wav");
    const d = decodeWav(bytes);
    assert.deepEqual([d.sampleRate, d.channels, d.encoding, d.truncated], [22050, 1, "pcm16", false]);
    assert.equal(d.length, 100975);
    assert.equal(d.samples.length, 100975);
    // the file's data chunk starts at byte 44 (a plain 44-byte header)
    assert.equal(asciiAt(bytes, 36), "data");
    const ints = new Int16Array(bytes.buffer.slice(bytes.byteOffset + 44, bytes.byteOffset + 44 + 2 * 100975));
    assert.deepEqual(d.samples, Float32Array.from(ints, (v) => v / 32768));
    assert.ok(d.samples.some((v) => Math.abs(v) > 0.1), "the prompt is not silence");
    assert.equal(toMono(d), d.samples);
  });

  test("odd-sized chunks with pad bytes, unknown chunks skipped, fmt after data, a missing final pad byte", () => {
    const fmt = chunk("fmt ", fmtBody(1, 1, 8000, 8));
    const data = chunk("data", [128, 255, 0, 192, 64]); // 5 bytes + pad
    const expected = [0, 127 / 128, -1, 0.5, -0.5];
    const files = [
      riff(chunk("LIST", [1, 2, 3]), fmt, chunk("junk", [9]), data, chunk("cue ", [1, 2, 3, 4, 5, 6, 7])),
      riff(data, chunk("bext", [0, 0, 0]), fmt),
      riff(fmt, chunk("data", [128, 255, 0, 192, 64], false)), // no pad byte at the end of the file
      riff(fmt, data, [...str("ab")]), // 2 stray bytes after the last chunk
    ];
    for (const file of files) {
      const d = decodeWav(file);
      assert.deepEqual(Array.from(d.samples), expected);
      assert.equal(d.truncated, false);
    }
    // an ArrayBuffer works too, and a Uint8Array view at an offset
    assert.equal(decodeWav(files[0].slice().buffer).length, 5);
    const shifted = new Uint8Array(files[1].length + 3);
    shifted.set(files[1], 3);
    assert.deepEqual(Array.from(decodeWav(shifted.subarray(3)).samples), expected);
  });

  test("every prefix of a file either decodes (flagging truncation) or throws a typed error", () => {
    const file = riff(chunk("fmt ", fmtBody(1, 2, 8000, 16)), chunk("LIST", [1, 2, 3]), chunk("data", le(0, 40)));
    let decoded = 0;
    for (let n = 0; n <= file.length; n++) {
      try {
        const d = decodeWav(file.subarray(0, n));
        decoded++;
        assert.equal(d.truncated, n < file.length);
        assert.equal(d.length, Math.max(0, Math.floor((n - 8 - (file.length - 8 - 40)) / 4)));
      } catch (e) {
        assert.ok(e instanceof InvalidAudioError, `prefix ${n}: ${e}`);
        assert.ok(["not_wav", "truncated_wav"].includes(e.code), `prefix ${n}: ${e.code}`);
      }
    }
    assert.equal(decoded, 41);
  });
});

describe("decodeWav: malformed input gives typed errors", () => {
  const fmt16 = chunk("fmt ", fmtBody(1, 1, 8000, 16));
  const data = chunk("data", [0, 0, 1, 0]);
  const withFmt = (body: number[]) => riff(chunk("fmt ", body), data);
  const cases: [string, Uint8Array, string, RegExp][] = [
    ["empty", new Uint8Array(), "not_wav", /empty/],
    ["text", new TextEncoder().encode("hello, this is not audio"), "not_wav", /RIFF/],
    ["RIFF but AVI", new Uint8Array([...str("RIFF"), ...le(4, 4), ...str("AVI ")]), "not_wav", /AVI/],
    ["RIFX", new Uint8Array([...str("RIFX"), ...le(4, 4), ...str("WAVE")]), "unsupported_wav", /RIFX/],
    ["RF64", new Uint8Array([...str("RF64"), ...le(4, 4), ...str("WAVE")]), "unsupported_wav", /RF64/],
    ["only 'RIFF'", new Uint8Array(str("RIFF")), "truncated_wav", /header/],
    ["ends inside fmt", riff(fmt16).subarray(0, 30), "truncated_wav", /fmt chunk declares 16/],
    ["ends inside a chunk header", riff(fmt16, data).subarray(0, 40), "truncated_wav", /chunk header/],
    ["a chunk runs past the end", riff(chunk("LIST", [1, 2, 3, 4]), fmt16).subarray(0, 22), "truncated_wav", /fmt/],
    ["no chunks", riff(), "missing_wav_chunk", /fmt/],
    ["no fmt", riff(data), "missing_wav_chunk", /fmt/],
    ["no data", riff(fmt16, chunk("LIST", [1])), "missing_wav_chunk", /data/],
    ["0 channels", withFmt(fmtBody(1, 0, 8000, 16)), "invalid_wav", /0 channels/],
    ["0 Hz", withFmt(fmtBody(1, 1, 0, 16)), "invalid_wav", /0 Hz/],
    ["fmt of 14 bytes", withFmt(fmtBody(1, 1, 8000, 16).slice(0, 14)), "invalid_wav", /14 bytes/],
    ["short extensible fmt", withFmt(fmtBody(1, 1, 8000, 16, true).slice(0, 24)), "invalid_wav", /EXTENSIBLE/],
    ["ADPCM", withFmt(fmtBody(2, 1, 8000, 4)), "unsupported_wav", /0x0002 \(Microsoft ADPCM\)/],
    ["µ-law", withFmt(fmtBody(7, 1, 8000, 8)), "unsupported_wav", /0x0007/],
    ["extensible µ-law", withFmt(fmtBody(7, 1, 8000, 8, true)), "unsupported_wav", /0x0007/],
    ["PCM 12-bit", withFmt(fmtBody(1, 1, 8000, 12)), "unsupported_wav", /bit depth 12/],
    ["PCM 0-bit", withFmt(fmtBody(1, 1, 8000, 0)), "unsupported_wav", /bit depth 0/],
    ["float 16-bit", withFmt(fmtBody(3, 1, 8000, 16)), "unsupported_wav", /float bit depth 16/],
    [
      "extensible with a foreign GUID",
      withFmt([...fmtBody(1, 1, 8000, 16, true).slice(0, 26), ...new Array(14).fill(7)]),
      "unsupported_wav",
      /GUID/,
    ],
  ];
  for (const [name, bytes, code, message] of cases) {
    test(`${name} → ${code}`, () => expectAudioError(() => decodeWav(bytes), code, message));
  }
});

describe("toMono", () => {
  test("averages the channels of each frame; mono is returned as is", () => {
    const r = rng(3);
    const x = Float32Array.from({ length: 3 * 50 }, () => r() * 2 - 1);
    const m = toMono({ channels: 3, samples: x });
    assert.equal(m.length, 50);
    for (let i = 0; i < 50; i++) {
      assert.ok(Math.abs(m[i] - (x[3 * i] + x[3 * i + 1] + x[3 * i + 2]) / 3) < 1e-7);
    }
    assert.deepEqual(Array.from(toMono({ channels: 2, samples: new Float32Array([1, 0, 0.5, 0.5]) })), [0.5, 0.5]);
    const mono = new Float32Array([1, 2]);
    assert.equal(toMono({ channels: 1, samples: mono }), mono);
    expectAudioError(() => toMono({ channels: 2, samples: new Float32Array(3) }), "invalid_audio");
    expectAudioError(() => toMono({ channels: 0, samples: new Float32Array(3) }), "invalid_audio");
  });
});
