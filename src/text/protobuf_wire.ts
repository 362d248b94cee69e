/**
 * A minimal reader of the protobuf wire format (varints, length-delimited fields, fixed 32/64-bit fields), enough
 * to read a SentencePiece `.model` without dependencies. Every malformation becomes an
 * {@link InvalidTokenizerError} naming the byte offset and the message being read.
 *
 * @module
 */

import { InvalidTokenizerError } from "../errors.ts";

/** Protobuf wire types. Groups (3, 4) are obsolete and rejected. */
export const WireType = {
  VARINT: 0,
  FIXED64: 1,
  LENGTH_DELIMITED: 2,
  FIXED32: 5,
} as const;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Sequential reader over one protobuf message (a byte range of a larger buffer). */
export class ProtoReader {
  #bytes: Uint8Array;
  #view: DataView;
  #pos: number;
  #end: number;
  /** Name of the message being read, for error messages (e.g. `"ModelProto.trainer_spec"`). */
  readonly context: string;

  /**
   * @param bytes the buffer holding the message
   * @param context name of the message, used in error messages
   * @param start offset of the message's first byte
   * @param end offset one past the message's last byte
   */
  constructor(bytes: Uint8Array, context: string, start = 0, end = bytes.length) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#pos = start;
    this.#end = end;
    this.context = context;
  }

  /** Whether the whole message has been read. */
  get done(): boolean {
    return this.#pos >= this.#end;
  }

  /** Reads a field key; returns the field number and wire type. */
  key(): { field: number; wireType: number } {
    const at = this.#pos;
    const key = this.#varint64();
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (field === 0) this.#fail(at, "field number 0");
    if (wireType === 3 || wireType === 4 || wireType > 5) this.#fail(at, `unsupported wire type ${wireType}`);
    return { field, wireType };
  }

  /** Reads a varint as a signed 32-bit integer (its low 32 bits, as protobuf does for `int32`, enums and bools). */
  int32(): number {
    return this.#varintLow32() | 0;
  }

  /** Reads a varint as a boolean. */
  bool(): boolean {
    return this.#varint64() !== 0;
  }

  /** Reads a little-endian IEEE float32 (wire type 5) exactly, as a double. */
  float32(): number {
    this.#need(4);
    const value = this.#view.getFloat32(this.#pos, true);
    this.#pos += 4;
    return value;
  }

  /** Reads a length-delimited field as a byte view (no copy). */
  bytes(): Uint8Array {
    const [start, end] = this.#lengthDelimited();
    return this.#bytes.subarray(start, end);
  }

  /** Reads a length-delimited field as UTF-8 text; invalid UTF-8 is an error. */
  string(field: string): string {
    const at = this.#pos;
    const bytes = this.bytes();
    try {
      return utf8.decode(bytes);
    } catch (cause) {
      this.#fail(at, `${field} is not valid UTF-8`, cause);
    }
  }

  /** Reads a length-delimited field as a nested message reader, and skips past it. */
  message(context: string): ProtoReader {
    const [start, end] = this.#lengthDelimited();
    return new ProtoReader(this.#bytes, context, start, end);
  }

  /** Skips a field's value of the given wire type. */
  skip(wireType: number): void {
    switch (wireType) {
      case WireType.VARINT:
        this.#varint64();
        return;
      case WireType.FIXED64:
        this.#need(8);
        this.#pos += 8;
        return;
      case WireType.LENGTH_DELIMITED:
        this.#lengthDelimited();
        return;
      case WireType.FIXED32:
        this.#need(4);
        this.#pos += 4;
        return;
      default:
        this.#fail(this.#pos, `unsupported wire type ${wireType}`);
    }
  }

  /** Throws unless `actual` is the wire type a known field must have. */
  expect(field: string, actual: number, expected: number): void {
    if (actual !== expected) {
      this.#fail(this.#pos, `field ${field} has wire type ${actual}, expected ${expected}`);
    }
  }

  #lengthDelimited(): [number, number] {
    const at = this.#pos;
    const length = this.#varint64();
    if (length > this.#end - this.#pos) {
      this.#fail(at, `length ${length} runs past the end of the message (${this.#end - this.#pos} bytes left)`);
    }
    const start = this.#pos;
    this.#pos += length;
    return [start, this.#pos];
  }

  /** Reads a varint of up to 10 bytes; values above 2^53 lose precision but are only ever skipped or truncated. */
  #varint64(): number {
    const at = this.#pos;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.#pos >= this.#end) this.#fail(at, "truncated varint");
      const b = this.#bytes[this.#pos++];
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
    }
    this.#fail(at, "varint longer than 10 bytes");
  }

  #varintLow32(): number {
    const at = this.#pos;
    let low = 0;
    for (let i = 0; i < 10; i++) {
      if (this.#pos >= this.#end) this.#fail(at, "truncated varint");
      const b = this.#bytes[this.#pos++];
      if (i < 5) low |= (b & 0x7f) << (7 * i);
      if (b < 0x80) return low;
    }
    this.#fail(at, "varint longer than 10 bytes");
  }

  #need(n: number): void {
    if (this.#end - this.#pos < n) this.#fail(this.#pos, `truncated: needs ${n} bytes, ${this.#end - this.#pos} left`);
  }

  #fail(at: number, problem: string, cause?: unknown): never {
    throw new InvalidTokenizerError(`invalid SentencePiece model: ${this.context} at byte ${at}: ${problem}`, cause);
  }
}
