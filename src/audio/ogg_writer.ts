/**
 * Ogg page muxing (RFC 3533) for one logical stream: packets in, pages out, each page written as soon as it is
 * asked for, so an HTTP response can stream them.
 *
 * @module
 */
import { concat } from "./bytes.ts";

/** CRC-32 of Ogg pages: polynomial 0x04C11DB7, initial value 0, not reflected, no final XOR (RFC 3533 §6). */
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let k = 0; k < 8; k++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    table[i] = r >>> 0;
  }
  return table;
})();

/** The Ogg CRC-32 of `bytes`. */
export function oggCrc(bytes: Uint8Array): number {
  let crc = 0;
  for (let i = 0; i < bytes.length; i++) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ bytes[i]) & 0xff]) >>> 0;
  return crc;
}

/** Page flags (`header_type`). */
const CONTINUED = 1;
const BOS = 2;
const EOS = 4;

/**
 * Writes the pages of one logical Ogg stream: the first page written is flagged beginning-of-stream, page sequence
 * numbers count up, every page carries its CRC.
 *
 * @example
 * ```ts
 * const ogg = new OggWriter(1);
 * const head = ogg.pages([opusHead], [0]);           // BOS page
 * const audio = ogg.pages(packets, granules, true); // … the last one flagged EOS
 * ```
 */
export class OggWriter {
  #serial: number;
  #sequence = 0;
  #begun = false;

  /**
   * Create a writer for one logical stream.
   *
   * @param serial the stream's serial number (fixed, so that equal input gives equal bytes)
   */
  constructor(serial: number) {
    this.#serial = serial >>> 0;
  }

  /**
   * Pages holding `packets`; `granules[i]` is the granule position after packet i (codec-specific). Packets are laced
   * into as few pages as fit (255 lacing values a page, a long packet continuing on the next page); each page gets the
   * granule of the last packet that ends on it, or −1 when none does (RFC 3533). With `last`, the final page carries
   * the end-of-stream flag.
   */
  pages(packets: Uint8Array[], granules: number[], last = false): Uint8Array {
    // Lacing: each packet is 255-byte segments plus one shorter (possibly empty) final segment.
    const lacing: number[] = [];
    const endsPacket: number[] = []; // index of the packet a lacing value ends, or −1
    packets.forEach((p, i) => {
      for (let n = p.length;; n -= 255) {
        lacing.push(Math.min(n, 255));
        endsPacket.push(n < 255 ? i : -1);
        if (n < 255) break;
      }
    });
    const body = concat(packets);
    const out: Uint8Array[] = [];
    let offset = 0;
    let continued = false;
    for (let first = 0; first < lacing.length || out.length === 0; first += 255) {
      const table = lacing.slice(first, first + 255);
      const size = table.reduce((a, b) => a + b, 0);
      const lastEnded = Math.max(-1, ...endsPacket.slice(first, first + 255));
      const final = first + 255 >= lacing.length;
      const flags = (continued ? CONTINUED : 0) | (this.#begun ? 0 : BOS) | (final && last ? EOS : 0);
      out.push(
        this.#write(flags, lastEnded >= 0 ? granules[lastEnded] : -1, table, body.subarray(offset, offset + size)),
      );
      this.#begun = true;
      continued = table.length > 0 && table[table.length - 1] === 255;
      offset += size;
    }
    return concat(out);
  }

  #write(flags: number, granule: number, table: number[], data: Uint8Array): Uint8Array {
    const page = new Uint8Array(27 + table.length + data.length);
    const v = new DataView(page.buffer);
    page.set([0x4f, 0x67, 0x67, 0x53]); // "OggS"
    page[4] = 0; // version
    page[5] = flags;
    v.setBigInt64(6, BigInt(granule), true);
    v.setUint32(14, this.#serial, true);
    v.setUint32(18, this.#sequence++, true);
    page[26] = table.length;
    page.set(table, 27);
    page.set(data, 27 + table.length);
    v.setUint32(22, oggCrc(page), true);
    return page;
  }
}
