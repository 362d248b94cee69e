/**
 * Byte-array helpers shared by the audio encoders.
 *
 * @module
 */

/** Concatenate byte arrays (the one array itself when there is only one). */
export function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
