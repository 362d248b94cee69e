import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { blocks, harmonicSignal } from "../support/signal.ts";
import { InvalidAudioError, TimeStretcher } from "../../src/audio/mod.ts";

const RATE = 24000;
const sine = (f: number, seconds: number) =>
  Float32Array.from({ length: Math.round(RATE * seconds) }, (_, i) => 0.5 * Math.sin((2 * Math.PI * f * i) / RATE));

/** Stretch `x`, pushing blocks of the given sizes (cycled). */
function stretch(x: Float32Array, speed: number, sizes = [1920]): Float32Array {
  const s = new TimeStretcher(speed, RATE);
  const parts = [...blocks(x.length, sizes)].map(([i, j]) => s.push(x.subarray(i, j)));
  parts.push(s.end());
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), at += p.length);
  return out;
}

/** Frequency from upward zero crossings, away from the edges. */
function zeroCrossingFrequency(y: Float32Array): number {
  let count = 0;
  let first = -1;
  let last = -1;
  for (let i = 1000; i < y.length - 1000; i++) {
    if (y[i - 1] < 0 && y[i] >= 0) {
      if (first < 0) first = i;
      last = i;
      count++;
    }
  }
  return ((count - 1) * RATE) / (last - first);
}

const SPEEDS = [0.25, 0.5, 0.8, 1.25, 1.5, 2, 3, 4];

describe("TimeStretcher (WSOLA)", () => {
  for (const speed of SPEEDS) {
    test(`speed ${speed}: length round(n / speed), pitch kept, no discontinuity, amplitude kept`, () => {
      for (const f of [220, 1000]) {
        const x = sine(f, 1);
        const y = stretch(x, speed);
        assert.equal(y.length, Math.round(x.length / speed));
        const measured = zeroCrossingFrequency(y);
        assert.ok(Math.abs(measured - f) / f < 0.01, `${f} Hz came out at ${measured.toFixed(1)} Hz`);
        // Segments are spliced in phase: no step between samples larger than the sine's own steepest.
        const slope = (2 * Math.PI * f * 0.5) / RATE;
        let step = 0;
        let peak = 0;
        for (let i = 1; i < y.length; i++) step = Math.max(step, Math.abs(y[i] - y[i - 1]));
        for (let i = 100; i < y.length - 100; i++) peak = Math.max(peak, Math.abs(y[i]));
        assert.ok(step <= slope * 1.05, `largest step ${step} > ${slope}`);
        assert.ok(Math.abs(peak - 0.5) < 0.01, `peak ${peak}`);
      }
    });
  }

  test("a voice-like harmonic signal keeps its energy at every speed", () => {
    const x = harmonicSignal(RATE, RATE);
    const rms = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
    for (const speed of SPEEDS) {
      const ratio = rms(stretch(x, speed)) / rms(x);
      assert.ok(Math.abs(ratio - 1) < 0.1, `speed ${speed}: RMS ratio ${ratio}`);
    }
  });

  test("streaming equals one shot, whatever the push sizes", () => {
    const x = harmonicSignal(RATE / 2, RATE);
    for (const speed of [0.5, 1.7, 4]) {
      const whole = stretch(x, speed, [x.length]);
      assert.deepEqual(stretch(x, speed, [1920]), whole);
      assert.deepEqual(stretch(x, speed, [1, 333, 4096, 17]), whole);
    }
  });

  test("speed 1 passes samples through; short and empty inputs", () => {
    const x = harmonicSignal(5000, RATE);
    assert.deepEqual(stretch(x, 1, [700]), x);
    for (const n of [0, 1, 100, 719, 721]) {
      for (const speed of [0.25, 2.5]) {
        assert.equal(stretch(new Float32Array(n).fill(0.1), speed).length, Math.round(n / speed));
      }
    }
  });

  test("speeds outside 0.25–4 and push after end are InvalidAudioError", () => {
    for (const speed of [0, 0.2, 4.5, NaN, -1, Infinity]) {
      assert.throws(() => new TimeStretcher(speed, RATE), (e: unknown) => e instanceof InvalidAudioError);
    }
    const s = new TimeStretcher(2, RATE);
    s.end();
    assert.throws(() => s.push(new Float32Array(10)), InvalidAudioError);
  });
});
