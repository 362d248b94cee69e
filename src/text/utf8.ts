/**
 * UTF-8 helpers with SentencePiece's exact rules (its `string_util::DecodeUTF8`), which differ from WHATWG
 * `TextDecoder` on invalid input: every byte of an invalid or truncated sequence becomes its own U+FFFD.
 *
 * @module
 */

/**
 * Decodes bytes as SentencePiece does when decoding BYTE pieces: valid sequences (no overlongs, no surrogates,
 * nothing above U+10FFFF) decode normally; each byte that does not start a valid sequence becomes one U+FFFD.
 * `<0xE2><0x80>` therefore gives two U+FFFD where `TextDecoder` gives one.
 *
 * @param bytes the bytes
 * @param start first byte
 * @param end one past the last byte
 * @returns the decoded text
 */
export function decodeUtf8PerByteReplacement(bytes: ArrayLike<number>, start = 0, end = bytes.length): string {
  let out = "";
  let i = start;
  while (i < end) {
    const b0 = bytes[i];
    const left = end - i;
    let cp = -1;
    let len = 1;
    if (b0 < 0x80) {
      cp = b0;
    } else if (left >= 2 && (b0 & 0xe0) === 0xc0) {
      const b1 = bytes[i + 1];
      const c = ((b0 & 0x1f) << 6) | (b1 & 0x3f);
      if ((b1 & 0xc0) === 0x80 && c >= 0x80) {
        cp = c;
        len = 2;
      }
    } else if (left >= 3 && (b0 & 0xf0) === 0xe0) {
      const b1 = bytes[i + 1];
      const b2 = bytes[i + 2];
      const c = ((b0 & 0x0f) << 12) | ((b1 & 0x3f) << 6) | (b2 & 0x3f);
      if ((b1 & 0xc0) === 0x80 && (b2 & 0xc0) === 0x80 && c >= 0x800 && (c < 0xd800 || c > 0xdfff)) {
        cp = c;
        len = 3;
      }
    } else if (left >= 4 && (b0 & 0xf8) === 0xf0) {
      const b1 = bytes[i + 1];
      const b2 = bytes[i + 2];
      const b3 = bytes[i + 3];
      const c = ((b0 & 0x07) << 18) | ((b1 & 0x3f) << 12) | ((b2 & 0x3f) << 6) | (b3 & 0x3f);
      if ((b1 & 0xc0) === 0x80 && (b2 & 0xc0) === 0x80 && (b3 & 0xc0) === 0x80 && c >= 0x10000 && c <= 0x10ffff) {
        cp = c;
        len = 4;
      }
    }
    out += cp < 0 ? "\ufffd" : String.fromCodePoint(cp);
    i += len;
  }
  return out;
}

/** Index of the first lone surrogate in `text`, or −1 when the string is well-formed UTF-16. */
export function findLoneSurrogate(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++;
        continue;
      }
    }
    return i;
  }
  return -1;
}
