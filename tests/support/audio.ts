/** Test audio made at test time by this library's own encoders. */
import { createAudioEncoder } from "../../mod.ts";

/**
 * `seconds` of a 300 Hz tone at 8 kHz as Ogg Opus at 6 kbit/s (about 750 bytes a second, decoded at 48 kHz): a file
 * that is small for the audio it holds.
 */
export async function opusTone(seconds: number): Promise<Uint8Array<ArrayBuffer>> {
  const e = await createAudioEncoder("opus", 8000, { kbps: 6 });
  const second = Float32Array.from({ length: 8000 }, (_, i) => 0.3 * Math.sin(2 * Math.PI * 300 * i / 8000));
  const parts = Array.from({ length: seconds }, () => e.push(second));
  parts.push(e.end());
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}
