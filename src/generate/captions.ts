/**
 * Captions: each text chunk with where its audio starts and ends, in samples of the output. Times are exact at
 * chunk (sentence) level, because each chunk is generated on its own; the model gives no word timing, so none is
 * claimed.
 *
 * @module
 */

/** One caption: a chunk's text and its audio span `[start, end)` in samples. */
export interface Caption {
  /** The chunk text as spoken (after normalisation and preparation). */
  text: string;
  /** First sample of the chunk's audio. */
  start: number;
  /** One past its last sample. */
  end: number;
}

function timestamp(samples: number, sampleRate: number): string {
  const ms = Math.round((samples / sampleRate) * 1000);
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor(ms / 60_000) % 60;
  const s = Math.floor(ms / 1000) % 60;
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${pad(h)}:${pad(m)}:${pad(s)}.${pad(ms % 1000, 3)}`;
}

/**
 * Writes captions as a WebVTT file (one cue per caption, times rounded to the millisecond; `&`, `<` and `>` in the
 * text escaped, so no cue text can end a cue).
 *
 * @example
 * ```ts
 * const { audio, captions } = await tts.generateWithCaptions("Hello. How are you?");
 * await Deno.writeTextFile("speech.vtt", toWebVtt(captions, tts.sampleRate));
 * ```
 *
 * @param captions the captions, in order
 * @param sampleRate samples per second of the audio they refer to
 * @returns the WebVTT text
 */
export function toWebVtt(captions: readonly Caption[], sampleRate: number): string {
  const cues = captions.map((c, i) => {
    const text = c.text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/\s*\n\s*/g, " ");
    return `${i + 1}\n${timestamp(c.start, sampleRate)} --> ${timestamp(c.end, sampleRate)}\n${text}\n`;
  });
  return ["WEBVTT\n", ...cues].join("\n");
}
