/**
 * Signal comparison helpers for the audio tests.
 */

/**
 * The best alignment of `y` to `x` within ±maxLag samples, and the signal-to-noise ratio there in dB. `edge` samples
 * at each end of `x` are left out (codecs fade in and out there).
 */
export function alignedSnr(x: ArrayLike<number>, y: ArrayLike<number>, maxLag: number, edge = 320) {
  let best = { lag: 0, snr: -Infinity };
  for (let lag = -maxLag; lag <= maxLag; lag++) {
    let signalPower = 0;
    let noisePower = 0;
    for (let i = edge; i < x.length - edge; i++) {
      const j = i + lag;
      if (j < 0 || j >= y.length) continue;
      signalPower += x[i] * x[i];
      noisePower += (y[j] - x[i]) ** 2;
    }
    const snr = 10 * Math.log10(signalPower / noisePower);
    if (snr > best.snr) best = { lag, snr };
  }
  return best;
}

/** The blocks `[start, end)` that cover `length` samples, with sizes taken from `sizes` in turn (the last cut short). */
export function* blocks(length: number, sizes: number[]): Generator<[number, number]> {
  for (let i = 0, c = 0; i < length; c++) {
    const end = Math.min(length, i + sizes[c % sizes.length]);
    yield [i, end];
    i = end;
  }
}

/** A voice-like test signal: a 150 Hz harmonic series (harmonics to 3.9 kHz, falling 6 dB/octave), swelling. */
export function harmonicSignal(length: number, sampleRate: number, f0 = 150): Float32Array {
  return Float32Array.from({ length }, (_, i) => {
    const t = i / sampleRate;
    let s = 0;
    for (let h = 1; h * f0 < 4000; h++) s += Math.sin(2 * Math.PI * h * f0 * t + h) / h;
    return 0.25 * s * (0.6 + 0.4 * Math.sin(2 * Math.PI * 2 * t));
  });
}
