/**
 * safetensors: reading (from bytes, a file path or a URL), validation and writing.
 *
 * The format is an 8-byte little-endian header length, a JSON header mapping each tensor name to
 * `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the data section that follows the header), an
 * optional `__metadata__` map of strings, then the raw little-endian tensor data.
 *
 * The reader validates everything a loader relies on before any tensor is touched: the header length, the JSON,
 * every entry's dtype and shape, that `dtype size × element count` equals the byte range, that ranges lie inside
 * the file and neither overlap nor leave holes. Errors are {@link InvalidWeightsError}s naming the tensor.
 *
 * A file path is read lazily: only the header is read when opening; each tensor is read on demand with a
 * positioned read, so a 220 MB checkpoint is never held twice in memory.
 *
 * @module
 */
import { InvalidWeightsError } from "../errors.ts";

/** Element types this reader understands (the safetensors names). */
export type DType = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

/** Bytes per element of each supported dtype. */
export const DTYPE_SIZES: Readonly<Record<DType, number>> = Object.freeze({
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
});

/** Floating-point dtypes that {@link toFloat32} converts. */
export const FLOAT_DTYPES: readonly DType[] = ["F32", "BF16", "F16", "F64"];

/** Largest header this reader accepts (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

/** One tensor's entry in a safetensors header, with its position resolved. */
export interface TensorInfo {
  /** Tensor name (a module path such as `flow_lm.out_norm.weight`). */
  readonly name: string;
  /** Element type. */
  readonly dtype: DType;
  /** Shape, outermost dimension first (row-major). `[]` is a scalar. */
  readonly shape: readonly number[];
  /** Number of elements (product of the shape). */
  readonly numel: number;
  /** Start of the data, relative to the data section. */
  readonly begin: number;
  /** End (exclusive) of the data, relative to the data section. */
  readonly end: number;
  /** Size of the data in bytes (`end - begin`). */
  readonly byteLength: number;
  /** Absolute position of the data in the file. */
  readonly fileOffset: number;
}

/** The parsed and validated header of a safetensors file. */
export interface SafetensorsHeader {
  /** Length of the JSON header in bytes (the value of the 8-byte prefix). */
  readonly headerLength: number;
  /** Absolute position of the data section (`8 + headerLength`). */
  readonly dataOffset: number;
  /** Total file size in bytes. */
  readonly byteLength: number;
  /** Tensors in file order (increasing offset). */
  readonly tensors: readonly TensorInfo[];
  /** The `__metadata__` map, or `null` when absent. */
  readonly metadata: Readonly<Record<string, string>> | null;
}

/** A tensor's description plus its raw little-endian bytes. */
export interface TensorBytes {
  /** Element type. */
  readonly dtype: DType;
  /** Shape (row-major). */
  readonly shape: readonly number[];
  /** Raw little-endian data (`numel × DTYPE_SIZES[dtype]` bytes). */
  readonly bytes: Uint8Array;
}

function isDType(s: unknown): s is DType {
  return typeof s === "string" && Object.hasOwn(DTYPE_SIZES, s);
}

function fmtShape(shape: readonly unknown[]): string {
  return `[${shape.join(", ")}]`;
}

/**
 * Read the 8-byte little-endian header length and check it against the file size.
 *
 * @param prefix the first bytes of the file (at least 8 when the file has them)
 * @param fileSize total size of the file in bytes
 * @param file name of the file, for error messages
 * @returns the JSON header length
 * @throws {InvalidWeightsError} when the file is too short or the length does not fit
 */
export function readHeaderLength(prefix: Uint8Array, fileSize: number, file?: string): number {
  const where = file ? `${file}: ` : "";
  if (fileSize < 8 || prefix.length < 8) {
    throw new InvalidWeightsError(
      `${where}file is ${fileSize} bytes, too short for a safetensors header (needs at least 8)`,
      { file },
    );
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(fileSize - 8)) {
    throw new InvalidWeightsError(
      `${where}header length ${n} goes beyond the end of the file (${fileSize} bytes): truncated or not a safetensors file`,
      { file },
    );
  }
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new InvalidWeightsError(`${where}header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`, { file });
  }
  if (n < 2n) throw new InvalidWeightsError(`${where}header length ${n} is too small for a JSON object`, { file });
  return Number(n);
}

/**
 * Parse and validate a safetensors JSON header.
 *
 * Checks: valid JSON object; each entry has a supported dtype, a shape of non-negative integers and
 * `data_offsets [begin, end]` with `end - begin = numel × dtype size`; every range lies inside the data section;
 * ranges neither overlap nor leave holes, and cover the data section exactly.
 *
 * @param json the header bytes (UTF-8 JSON, possibly space-padded)
 * @param fileSize total file size in bytes (prefix + header + data)
 * @param file name of the file, for error messages
 * @returns the validated header, tensors in file order
 * @throws {InvalidWeightsError} naming the problem and the offending tensor
 */
export function parseSafetensorsHeader(json: Uint8Array, fileSize: number, file?: string): SafetensorsHeader {
  const where = file ? `${file}: ` : "";
  const bad = (msg: string, tensor?: string): never => {
    throw new InvalidWeightsError(where + msg, { tensor, file });
  };
  const headerLength = json.length;
  const dataOffset = 8 + headerLength;
  const dataLength = fileSize - dataOffset;
  if (dataLength < 0) bad(`header (${headerLength} bytes) goes beyond the end of the file (${fileSize} bytes)`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(json));
  } catch (e) {
    bad(`header is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    bad("header is not a JSON object");
  }
  let metadata: Record<string, string> | null = null;
  const tensors: TensorInfo[] = [];
  for (const [name, entry] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (entry === null || typeof entry !== "object" || Array.isArray(entry)) bad("__metadata__ is not an object");
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== "string") bad(`__metadata__ value of "${k}" is not a string`);
      }
      metadata = { ...(entry as Record<string, string>) };
      continue;
    }
    const t = `tensor "${name}"`;
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) bad(`${t}: entry is not an object`, name);
    const e = entry as Record<string, unknown>;
    for (const key of Object.keys(e)) {
      if (key !== "dtype" && key !== "shape" && key !== "data_offsets") bad(`${t}: unknown field "${key}"`, name);
    }
    const dtype = e.dtype;
    if (!isDType(dtype)) {
      bad(
        `${t}: unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPE_SIZES).join(", ")})`,
        name,
      );
    }
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      bad(`${t}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`, name);
    }
    const offs = e.data_offsets;
    if (
      !Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offs[0] > offs[1]
    ) {
      bad(`${t}: data_offsets ${JSON.stringify(offs)} is not a pair [begin, end] with 0 <= begin <= end`, name);
    }
    const dims = shape as number[];
    const numel = dims.reduce((a, b) => a * b, 1);
    const size = DTYPE_SIZES[dtype as DType];
    const [begin, end] = offs as number[];
    if (!Number.isSafeInteger(numel * size) || numel * size !== end - begin) {
      bad(
        `${t}: shape ${fmtShape(dims)} of ${dtype} needs ${numel * size} bytes but data_offsets [${begin}, ${end}] ` +
          `cover ${end - begin}`,
        name,
      );
    }
    if (end > dataLength) {
      bad(
        `${t}: data [${begin}, ${end}] goes beyond the end of the data section (${dataLength} bytes): ` +
          `the file is truncated or the header is wrong`,
        name,
      );
    }
    tensors.push({
      name,
      dtype: dtype as DType,
      shape: Object.freeze([...dims]),
      numel,
      begin,
      end,
      byteLength: end - begin,
      fileOffset: dataOffset + begin,
    });
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: TensorInfo | undefined;
  for (const t of tensors) {
    if (t.begin < pos && prev) {
      bad(
        `tensors "${prev.name}" [${prev.begin}, ${prev.end}] and "${t.name}" [${t.begin}, ${t.end}] overlap`,
        t.name,
      );
    }
    if (t.begin > pos) {
      bad(`${t.begin - pos} unused bytes before tensor "${t.name}" (data offset ${pos})`, t.name);
    }
    pos = t.end;
    prev = t;
  }
  if (pos !== dataLength) {
    bad(`${dataLength - pos} bytes of data after the last tensor (data section ${dataLength} bytes)`);
  }
  Object.freeze(tensors);
  return { headerLength, dataOffset, byteLength: fileSize, tensors, metadata };
}

/** Where a {@link SafetensorsReader} gets its bytes: a whole buffer or positioned reads. */
interface ByteSource {
  size: number;
  readInto(position: number, target: Uint8Array): Promise<void>;
  view?(position: number, length: number): Uint8Array;
  close(): Promise<void>;
}

/**
 * A validated safetensors file whose tensors can be listed and read one at a time.
 *
 * Create one with {@link openSafetensors} (bytes, path or URL) or {@link parseSafetensors} (bytes, synchronous).
 */
export class SafetensorsReader {
  /** The file name, path or URL, as given (for messages). */
  readonly source: string;
  /** The validated header. */
  readonly header: SafetensorsHeader;
  #src: ByteSource;
  #byName: Map<string, TensorInfo>;

  /** @internal use {@link openSafetensors} or {@link parseSafetensors}. */
  constructor(source: string, header: SafetensorsHeader, src: ByteSource) {
    this.source = source;
    this.header = header;
    this.#src = src;
    this.#byName = new Map(header.tensors.map((t) => [t.name, t]));
  }

  /** Tensors in file order. */
  get tensors(): readonly TensorInfo[] {
    return this.header.tensors;
  }

  /** Tensor names in file order. */
  names(): string[] {
    return this.header.tensors.map((t) => t.name);
  }

  /** The entry of one tensor, or `undefined`. */
  get(name: string): TensorInfo | undefined {
    return this.#byName.get(name);
  }

  #info(t: TensorInfo | string): TensorInfo {
    if (typeof t !== "string") return t;
    const info = this.#byName.get(t);
    if (!info) throw new InvalidWeightsError(`${this.source}: missing tensor "${t}"`, { tensor: t, file: this.source });
    return info;
  }

  /**
   * The raw little-endian bytes of one tensor.
   *
   * For in-memory sources this is a view into the source buffer (no copy; do not mutate it); for files it is a
   * fresh buffer read with one positioned read.
   */
  async read(t: TensorInfo | string): Promise<Uint8Array> {
    const info = this.#info(t);
    if (this.#src.view) return this.#src.view(info.fileOffset, info.byteLength);
    const out = new Uint8Array(info.byteLength);
    await this.#src.readInto(info.fileOffset, out);
    return out;
  }

  /**
   * Read one tensor's raw bytes straight into `target` (e.g. a view of wasm memory), avoiding any intermediate
   * buffer for file sources.
   *
   * @throws {RangeError} when `target` is shorter than the tensor
   */
  async readInto(t: TensorInfo | string, target: Uint8Array): Promise<void> {
    const info = this.#info(t);
    if (target.length < info.byteLength) {
      throw new RangeError(`target of ${target.length} bytes is too small for "${info.name}" (${info.byteLength})`);
    }
    const dst = target.subarray(0, info.byteLength);
    if (this.#src.view) dst.set(this.#src.view(info.fileOffset, info.byteLength));
    else await this.#src.readInto(info.fileOffset, dst);
  }

  /** One tensor as {@link TensorBytes} (dtype, shape, raw bytes). */
  async tensor(t: TensorInfo | string): Promise<TensorBytes> {
    const info = this.#info(t);
    return { dtype: info.dtype, shape: info.shape, bytes: await this.read(info) };
  }

  /** One tensor converted to float32 (see {@link toFloat32}). */
  async float32(t: TensorInfo | string): Promise<Float32Array> {
    return toFloat32(await this.tensor(t));
  }

  /**
   * Iterate over every tensor in file order, reading each on demand. Only one tensor's bytes are alive at a time
   * unless the caller keeps them.
   */
  async *entries(): AsyncGenerator<{ info: TensorInfo; bytes: Uint8Array }> {
    for (const info of this.header.tensors) yield { info, bytes: await this.read(info) };
  }

  /** Release the file handle (no-op for in-memory sources). */
  async close(): Promise<void> {
    await this.#src.close();
  }
}

function bytesSource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.length,
    view: (p, n) => bytes.subarray(p, p + n),
    readInto: (p, target) => {
      target.set(bytes.subarray(p, p + target.length));
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
}

/**
 * Parse safetensors bytes held in memory (synchronous). Tensors read from the result are views into `bytes`.
 *
 * @param bytes the whole file
 * @param name a name for error messages
 * @throws {InvalidWeightsError} when the file is malformed
 */
export function parseSafetensors(bytes: Uint8Array | ArrayBuffer, name = "<bytes>"): SafetensorsReader {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const n = readHeaderLength(b.subarray(0, 8), b.length, name);
  // (a copy: TextDecoder refuses views of a SharedArrayBuffer, which workers receive the weights in)
  const header = parseSafetensorsHeader(b.slice(8, 8 + n), b.length, name);
  return new SafetensorsReader(name, header, bytesSource(b));
}

/** Options of {@link openSafetensors}. */
export interface OpenSafetensorsOptions {
  /** The `fetch` used for http(s) URLs (default: the global one). */
  fetch?: typeof fetch;
}

/**
 * Open a safetensors file from bytes, a local path (or `file:` URL), or an http(s) URL.
 *
 * - bytes: parsed in place;
 * - a path: only the header is read now; tensors are read on demand with positioned reads (call
 *   {@link SafetensorsReader.close} when done);
 * - an http(s) URL: fetched once into a single buffer. Use the asset cache (`fetchAsset`) to download to disk first
 *   when a file system is available.
 *
 * @throws {InvalidWeightsError} when the file is malformed
 */
export async function openSafetensors(
  source: Uint8Array | ArrayBuffer | string | URL,
  options: OpenSafetensorsOptions = {},
): Promise<SafetensorsReader> {
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) return parseSafetensors(source);
  const url = source instanceof URL ? source : /^(https?|file):\/\//i.test(source) ? new URL(source) : null;
  if (url && url.protocol !== "file:") {
    const f = options.fetch ?? fetch;
    const res = await f(url);
    if (!res.ok) {
      await res.body?.cancel();
      throw new InvalidWeightsError(`${url.href}: HTTP ${res.status} ${res.statusText}`, { file: url.href });
    }
    return parseSafetensors(new Uint8Array(await res.arrayBuffer()), url.href);
  }
  const { open } = await import("node:fs/promises");
  const path = url ? url : source as string;
  const name = url ? decodeURIComponent(url.pathname) : source as string;
  const fh = await open(path, "r");
  try {
    const size = (await fh.stat()).size;
    const readAt = async (position: number, target: Uint8Array) => {
      let done = 0;
      while (done < target.length) {
        const { bytesRead } = await fh.read(target, done, target.length - done, position + done);
        if (bytesRead === 0) {
          throw new InvalidWeightsError(`${name}: unexpected end of file at byte ${position + done}`, { file: name });
        }
        done += bytesRead;
      }
    };
    const prefix = new Uint8Array(Math.min(8, size));
    await readAt(0, prefix);
    const n = readHeaderLength(prefix, size, name);
    const json = new Uint8Array(n);
    await readAt(8, json);
    const header = parseSafetensorsHeader(json, size, name);
    let closed = false;
    return new SafetensorsReader(name, header, {
      size,
      readInto: readAt,
      close: async () => {
        if (!closed) {
          closed = true;
          await fh.close();
        }
      },
    });
  } catch (e) {
    await fh.close();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Conversion
// ---------------------------------------------------------------------------------------------------------------

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function aligned(bytes: Uint8Array, size: number): Uint8Array {
  if (!LITTLE_ENDIAN) throw new Error("big-endian hosts are not supported");
  return bytes.byteOffset % size === 0 ? bytes : bytes.slice();
}

/** Convert BF16 bit patterns to float32 (exact: BF16 is the upper half of a float32). */
export function bf16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const o = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) o[i] = bits[i] << 16;
  return out;
}

/**
 * Round float32 values to BF16 bit patterns, round-to-nearest-even (NaN stays NaN).
 */
export function float32ToBf16(values: Float32Array): Uint16Array {
  const u = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < u.length; i++) {
    const b = u[i];
    if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) out[i] = (b >>> 16) | 0x40;
    else out[i] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}

/** Convert IEEE half-precision bit patterns to float32 (exact, including subnormals, infinities and NaN). */
export function f16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) out[i] = sign * frac * 2 ** -24;
    else if (exp === 31) out[i] = frac ? NaN : sign * Infinity;
    else out[i] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return out;
}

/**
 * A float tensor's values as a fresh `Float32Array` (BF16 and F16 are widened exactly, F64 is rounded).
 *
 * @throws {InvalidWeightsError} for integer or boolean dtypes
 */
export function toFloat32(t: { dtype: DType; bytes: Uint8Array }): Float32Array {
  const size = DTYPE_SIZES[t.dtype];
  if (t.bytes.length % size !== 0) {
    throw new InvalidWeightsError(`${t.bytes.length} bytes is not a whole number of ${t.dtype} elements`);
  }
  const n = t.bytes.length / size;
  switch (t.dtype) {
    case "F32": {
      const b = aligned(t.bytes, 4);
      return new Float32Array(b.buffer, b.byteOffset, n).slice();
    }
    case "BF16": {
      const b = aligned(t.bytes, 2);
      return bf16ToFloat32(new Uint16Array(b.buffer, b.byteOffset, n));
    }
    case "F16": {
      const b = aligned(t.bytes, 2);
      return f16ToFloat32(new Uint16Array(b.buffer, b.byteOffset, n));
    }
    case "F64": {
      const b = aligned(t.bytes, 8);
      return Float32Array.from(new Float64Array(b.buffer, b.byteOffset, n));
    }
    default:
      throw new InvalidWeightsError(`cannot convert ${t.dtype} to float32 (not a floating-point dtype)`);
  }
}

/**
 * Convert a float tensor's values into `out` (e.g. a view of wasm memory) without allocating: BF16 and F16 widen
 * exactly, F64 rounds. `out` must hold at least the tensor's element count.
 *
 * @returns the number of elements written
 * @throws {InvalidWeightsError} for integer or boolean dtypes
 * @throws {RangeError} when `out` is too short
 */
export function toFloat32Into(t: { dtype: DType; bytes: Uint8Array }, out: Float32Array): number {
  const size = DTYPE_SIZES[t.dtype];
  const n = Math.floor(t.bytes.length / size);
  if (out.length < n) throw new RangeError(`output of ${out.length} elements is too small for ${n}`);
  switch (t.dtype) {
    case "BF16": {
      const b = aligned(t.bytes, 2);
      const src = new Uint16Array(b.buffer, b.byteOffset, n);
      const dst = new Uint32Array(out.buffer, out.byteOffset, n);
      for (let i = 0; i < n; i++) dst[i] = src[i] << 16;
      return n;
    }
    case "F32": {
      const b = aligned(t.bytes, 4);
      out.set(new Float32Array(b.buffer, b.byteOffset, n));
      return n;
    }
    default:
      out.set(toFloat32(t));
      return n;
  }
}

/** An I64 tensor's values as `BigInt64Array` (fresh copy). */
export function toBigInt64(t: { dtype: DType; bytes: Uint8Array }): BigInt64Array {
  if (t.dtype !== "I64") throw new InvalidWeightsError(`expected an I64 tensor, got ${t.dtype}`);
  const b = aligned(t.bytes, 8);
  return new BigInt64Array(b.buffer, b.byteOffset, b.length / 8).slice();
}

// ---------------------------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------------------------

/** A tensor to write: name, dtype, shape and the data (any typed array or raw little-endian bytes). */
export interface TensorEntry {
  /** Tensor name. */
  name: string;
  /** Element type. */
  dtype: DType;
  /** Shape (row-major). */
  shape: readonly number[];
  /** Raw data, `numel × dtype size` bytes. */
  data: ArrayBufferView;
}

/** The byte layout of a safetensors file about to be written, see {@link planSafetensors}. */
export interface SafetensorsPlan {
  /** The 8-byte length prefix followed by the space-padded JSON header. */
  readonly head: Uint8Array;
  /** Absolute position of the data section (`head.length`). */
  readonly dataOffset: number;
  /** Total file size. */
  readonly byteLength: number;
  /** Tensor names in storage order with their absolute byte ranges. */
  readonly layout: ReadonlyArray<{ name: string; start: number; end: number }>;
}

/**
 * Lay out a safetensors file: the order the reference writer uses (larger element sizes first, then by name, so
 * every tensor is aligned to its element size), contiguous data, and a compact JSON header padded with spaces to a
 * multiple of 8 bytes.
 *
 * @param specs the tensors (name, dtype, shape)
 * @param metadata optional `__metadata__` strings
 * @throws {InvalidWeightsError} on a duplicate name, unsupported dtype or bad shape
 */
export function planSafetensors(
  specs: Iterable<{ name: string; dtype: DType; shape: readonly number[] }>,
  metadata?: Record<string, string>,
): SafetensorsPlan {
  const list = [...specs];
  const seen = new Set<string>();
  for (const s of list) {
    if (seen.has(s.name)) throw new InvalidWeightsError(`duplicate tensor "${s.name}"`, { tensor: s.name });
    if (s.name === "__metadata__") throw new InvalidWeightsError(`"__metadata__" is not a valid tensor name`);
    if (!isDType(s.dtype)) throw new InvalidWeightsError(`tensor "${s.name}": unsupported dtype ${s.dtype}`);
    if (!s.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new InvalidWeightsError(`tensor "${s.name}": bad shape ${fmtShape(s.shape)}`, { tensor: s.name });
    }
    seen.add(s.name);
  }
  list.sort((a, b) => DTYPE_SIZES[b.dtype] - DTYPE_SIZES[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const layout: { name: string; start: number; end: number }[] = [];
  let off = 0;
  for (const s of list) {
    const n = s.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZES[s.dtype];
    header[s.name] = { dtype: s.dtype, shape: [...s.shape], data_offsets: [off, off + n] };
    layout.push({ name: s.name, start: off, end: off + n });
    off += n;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const head = new Uint8Array(8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(json.length), true);
  head.set(json, 8);
  const dataOffset = head.length;
  return {
    head,
    dataOffset,
    byteLength: dataOffset + off,
    layout: layout.map((l) => ({ name: l.name, start: l.start + dataOffset, end: l.end + dataOffset })),
  };
}

function entryBytes(e: TensorEntry): Uint8Array {
  const b = new Uint8Array(e.data.buffer, e.data.byteOffset, e.data.byteLength);
  const need = e.shape.reduce((a, c) => a * c, 1) * DTYPE_SIZES[e.dtype];
  if (b.length !== need) {
    throw new InvalidWeightsError(
      `tensor "${e.name}": shape ${fmtShape(e.shape)} of ${e.dtype} needs ${need} bytes, data has ${b.length}`,
      { tensor: e.name },
    );
  }
  return b;
}

/**
 * Serialize tensors to safetensors bytes (layout as in {@link planSafetensors}).
 *
 * @throws {InvalidWeightsError} when a tensor's data length disagrees with its shape and dtype
 */
export function serializeSafetensors(
  tensors: Iterable<TensorEntry>,
  metadata?: Record<string, string>,
): Uint8Array {
  const byName = new Map<string, TensorEntry>();
  for (const t of tensors) {
    if (byName.has(t.name)) throw new InvalidWeightsError(`duplicate tensor "${t.name}"`, { tensor: t.name });
    byName.set(t.name, t);
  }
  const plan = planSafetensors(byName.values(), metadata);
  const out = new Uint8Array(plan.byteLength);
  out.set(plan.head);
  for (const l of plan.layout) out.set(entryBytes(byName.get(l.name)!), l.start);
  return out;
}

/**
 * Write tensors to a safetensors file, one tensor at a time (no whole-file buffer). The file is written to a
 * temporary name next to `path` and renamed into place, so readers never see a partial file.
 */
export async function writeSafetensors(
  path: string | URL,
  tensors: Iterable<TensorEntry>,
  metadata?: Record<string, string>,
): Promise<void> {
  const fs = await import("node:fs/promises");
  const byName = new Map<string, TensorEntry>();
  for (const t of tensors) {
    if (byName.has(t.name)) throw new InvalidWeightsError(`duplicate tensor "${t.name}"`, { tensor: t.name });
    byName.set(t.name, t);
  }
  const plan = planSafetensors(byName.values(), metadata);
  const target = path instanceof URL ? decodeURIComponent(path.pathname) : path;
  const tmp = `${target}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}.tmp`;
  const fh = await fs.open(tmp, "w");
  try {
    const writeAll = async (b: Uint8Array) => {
      for (let done = 0; done < b.length;) done += (await fh.write(b, done, b.length - done)).bytesWritten;
    };
    await writeAll(plan.head);
    for (const l of plan.layout) await writeAll(entryBytes(byName.get(l.name)!));
    await fh.close();
    await fs.rename(tmp, target);
  } catch (e) {
    await fh.close().catch(() => {});
    await fs.rm(tmp, { force: true });
    throw e;
  }
}
