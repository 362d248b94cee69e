/**
 * Loading the Pocket TTS WebAssembly core and talking to it.
 *
 * The `.wasm` files sit in `wasm/` beside `src/` (or beside a bundle: `shipped_file.ts`), found relative to this
 * module's URL: a `file:` URL in a local checkout, Bun or Node (read with `node:fs`), an `http(s):` URL when the
 * module is imported from JSR or served to a browser (fetched, compiled while streaming where the runtime can).
 * Platforms that cannot fetch a module-relative file (e.g. Cloudflare Workers) pass the module or its bytes.
 * Each {@link PocketCore} is one instance with its own linear memory; workers each load their own. The *threads*
 * build (`threads: true`) instead imports a shared memory that helper instances in other workers join
 * (`generate/core_helpers.ts`), so its kernels split their outputs between threads (`crates/pocket_core/src/pool.rs`).
 *
 * Memory views: wasm memory can grow during any call, which detaches every typed array over the old buffer.
 * {@link PocketCore.f32} and friends therefore build a fresh view on each call; never keep one across a core call.
 *
 * @module
 */

import { WasmCoreError } from "../errors.ts";
import { shippedFileUrl } from "./shipped_file.ts";
import { bestSimdVariant, type SimdVariant, supportsRelaxedSimd, supportsSimd128 } from "./simd_detect.ts";

export type { SimdVariant } from "./simd_detect.ts";

/** The raw exports of `pocket_core` (see `crates/pocket_core/src/exports.rs` for each one's contract). */
export interface CoreExports {
  memory: WebAssembly.Memory;
  alloc(bytes: number): number;
  free(ptr: number, bytes: number): void;
  core_variant(): number;
  last_error_ptr(): number;
  last_error_len(): number;
  bf16_to_f32(src: number, dst: number, n: number): void;
  bf16_to_f32_ref(src: number, dst: number, n: number): void;
  matmul_ref(x: number, w: number, b: number, y: number, m: number, n: number, k: number): void;
  linear_new(w: number, b: number, nOut: number, nIn: number): number;
  linear_free(h: number): void;
  linear_compact(h: number): number;
  linear_forward(h: number, x: number, y: number, m: number): void;
  linear_madd_mode(): number;
  linear_set_madd_mode(mode: number): void;
  linear_i8_new(w: number, b: number, nOut: number, nIn: number): number;
  linear_i8_free(h: number): void;
  linear_i8_forward(h: number, x: number, y: number, m: number, reference: number): void;
  /** 1 in the threads build. */
  core_threads(): number;
  /** Helpers parked in the pool, chunks they ran, the flag a trapped helper sets (threads build). */
  pool_helpers(): number;
  pool_helper_chunks(): number;
  pool_quit(): void;
  pool_failed_flag(): number;
  /** Non-zero (the default): kernels share their work with the helpers; zero: they run on the calling thread. */
  pool_set_enabled(on: number): void;
  limits_read(buf: number, bytes: number, passes: number): number;
  limits_madd(a: number, b: number, iters: number): number;
  weights_add(
    name: number,
    nameLen: number,
    dtype: number,
    shape: number,
    ndim: number,
    bytes: number,
    nBytes: number,
  ): number;
  weights_clear(): void;
  // Model parts add their exports here; access them through `raw` with their own typed wrappers.
  [name: string]: unknown;
}

/** Options of {@link loadCore}. */
export interface LoadCoreOptions {
  /** Which build to load: `"auto"` (default) picks relaxed where the runtime validates it. */
  simd?: "auto" | SimdVariant;
  /**
   * Load this core instead of the shipped file: a compiled `WebAssembly.Module`, its bytes, or its URL (e.g. where
   * module-relative files cannot be fetched, or a freshly built file in tests). Its variant is read from the module.
   */
  wasm?: WasmSource;
  /**
   * Load the threads build over a new shared memory, which helper threads can then join (see
   * {@link sharedMemoryAvailable}). An explicit `wasm` must then be a threads build.
   */
  threads?: boolean;
}

/** A wasm core given explicitly: compiled, as bytes, or by URL. */
export type WasmSource = WebAssembly.Module | Uint8Array | ArrayBuffer | URL | string;

/** URL of a shipped variant's `.wasm` file (its threads build with `threads`). */
export function wasmUrl(variant: SimdVariant, threads = false): URL {
  const file = `pocket_core_${variant === "relaxed" ? "relaxed" : "simd"}${threads ? "_threads" : ""}.wasm`;
  return shippedFileUrl(import.meta.url, "src/runtime/wasm", `../../wasm/${file}`, file);
}

/**
 * Pages (64 KiB) of the threads build's imported memory, as `scripts/build-wasm.sh` links it: 2 MiB at the start, at
 * most 2 GiB (shared memory must declare a maximum).
 */
const THREADS_MEMORY = { initial: 32, maximum: 32768 } as const;

/**
 * True where the threads build can run: `SharedArrayBuffer` and shared WebAssembly memory exist (Deno, Bun, Node;
 * browsers only on cross-origin-isolated pages).
 *
 * @example
 * ```ts
 * const core = await loadCore({ threads: sharedMemoryAvailable() });
 * ```
 */
export function sharedMemoryAvailable(): boolean {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  if (typeof SharedArrayBuffer !== "function" || typeof Atomics !== "object" || g.crossOriginIsolated === false) {
    return false;
  }
  try {
    return new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }).buffer instanceof SharedArrayBuffer;
  } catch {
    return false;
  }
}

/** Resolves the `simd` option (and the `POCKET_TTS_SIMD` environment variable when the option is `"auto"`). */
export function resolveSimdVariant(simd: "auto" | SimdVariant = "auto", env?: string): SimdVariant {
  const wanted = simd === "auto" && env && env !== "auto" ? env : simd;
  if (!supportsSimd128()) {
    throw new WasmCoreError(
      "this JavaScript runtime does not support WebAssembly SIMD (simd128), which @pocket/tts requires",
      "wasm_unsupported",
    );
  }
  if (wanted === "auto") return bestSimdVariant() ?? "baseline";
  if (wanted !== "baseline" && wanted !== "relaxed") {
    throw new WasmCoreError(`unknown SIMD variant "${wanted}" (use auto, baseline or relaxed)`, "wasm_load");
  }
  if (wanted === "relaxed" && !supportsRelaxedSimd()) {
    throw new WasmCoreError(
      'this runtime does not support WebAssembly relaxed SIMD; use simd: "baseline" (or "auto")',
      "wasm_unsupported",
    );
  }
  return wanted;
}

function loadError(url: URL, cause: unknown): WasmCoreError {
  return new WasmCoreError(`cannot load the WebAssembly core from ${url.href}: ${String(cause)}`, "wasm_load", {
    cause,
  });
}

/** Compiles the module at `url`: read from disk for `file:`, else fetched and compiled while it streams in. */
async function compileUrl(url: URL): Promise<WebAssembly.Module> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    if (url.protocol === "file:") {
      const fs = await import("node:fs/promises");
      const buf = await fs.readFile(url);
      bytes = new Uint8Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer);
    } else {
      const res = await fetch(url);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const wasmType = res.headers.get("content-type")?.split(";")[0].trim() === "application/wasm";
      if (wasmType && typeof WebAssembly.compileStreaming === "function") {
        return await WebAssembly.compileStreaming(res);
      }
      bytes = new Uint8Array(await res.arrayBuffer());
    }
  } catch (cause) {
    throw loadError(url, cause);
  }
  try {
    return await WebAssembly.compile(bytes);
  } catch (cause) {
    throw loadError(url, cause);
  }
}

const moduleCache = new Map<string, Promise<WebAssembly.Module>>();

/** Compiles (once per URL and process) a shipped variant. */
function compiledVariant(variant: SimdVariant, threads: boolean): Promise<WebAssembly.Module> {
  const url = wasmUrl(variant, threads);
  let m = moduleCache.get(url.href);
  if (!m) {
    m = compileUrl(url);
    m.catch(() => moduleCache.delete(url.href));
    moduleCache.set(url.href, m);
  }
  return m;
}

/** Compiles an explicitly given core. */
async function compileSource(source: WasmSource): Promise<WebAssembly.Module> {
  if (source instanceof WebAssembly.Module) return source;
  if (source instanceof URL || typeof source === "string") return await compileUrl(new URL(source));
  try {
    return await WebAssembly.compile(source as Uint8Array<ArrayBuffer>);
  } catch (cause) {
    throw new WasmCoreError(`the given WebAssembly core does not compile: ${String(cause)}`, "wasm_load", { cause });
  }
}

const VARIANT_IDS: Record<number, SimdVariant> = { 1: "baseline", 2: "relaxed" };

/**
 * Instantiates the core.
 *
 * @example
 * ```ts
 * const core = await loadCore();          // relaxed SIMD where available
 * console.log(core.variant);              // "relaxed" in Deno and Bun, "baseline" in Node 20
 * ```
 * @throws {WasmCoreError} when the runtime lacks WebAssembly SIMD or the file cannot be loaded
 */
export async function loadCore(options: LoadCoreOptions = {}): Promise<PocketCore> {
  const variant = resolveSimdVariant(options.simd, envSimd());
  const threads = options.threads ?? false;
  if (threads && !sharedMemoryAvailable()) {
    throw new WasmCoreError(
      "this runtime has no shared WebAssembly memory (SharedArrayBuffer; in browsers a cross-origin-isolated page)",
      "wasm_unsupported",
    );
  }
  const module = options.wasm ? await compileSource(options.wasm) : await compiledVariant(variant, threads);
  const importsMemory = WebAssembly.Module.imports(module).some((i) => i.kind === "memory");
  if (importsMemory !== threads) {
    throw new WasmCoreError(
      `the given WebAssembly module is ${importsMemory ? "" : "not "}a threads build, but threads is ${threads}`,
      "wasm_load",
    );
  }
  const memory = threads ? new WebAssembly.Memory({ ...THREADS_MEMORY, shared: true }) : null;
  let instance: WebAssembly.Instance;
  try {
    instance = await WebAssembly.instantiate(module, memory ? { env: { memory } } : {});
  } catch (cause) {
    throw new WasmCoreError(`cannot instantiate the WebAssembly core: ${String(cause)}`, "wasm_load", { cause });
  }
  // The threads build imports its memory instead of exporting it: the exports object is frozen, so copy.
  const raw = (memory ? { ...instance.exports, memory } : instance.exports) as unknown as CoreExports;
  if (typeof raw.core_variant !== "function" || !VARIANT_IDS[raw.core_variant()]) {
    throw new WasmCoreError("the given WebAssembly module is not a pocket_core build", "wasm_load");
  }
  return new PocketCore(raw, VARIANT_IDS[raw.core_variant()], memory ? { module, memory } : null);
}

function envSimd(): string | undefined {
  try {
    // deno-lint-ignore no-explicit-any
    const g = globalThis as any;
    return g.process?.env?.POCKET_TTS_SIMD ?? g.Deno?.env?.get?.("POCKET_TTS_SIMD");
  } catch {
    return undefined; // Deno without --allow-env
  }
}

/** Element types of the weight store (`weights_add`'s `dtype` argument). */
export const CORE_DTYPE = { F32: 0, BF16: 1, F16: 2 } as const;

/** One instance of the wasm core with typed helpers over its raw exports. */
export class PocketCore {
  /** The raw exports. */
  readonly raw: CoreExports;
  /** The variant this instance runs. */
  readonly variant: SimdVariant;
  /** The threads build's module and shared memory, which helper instances join; `null` for the other builds. */
  readonly shared: { module: WebAssembly.Module; memory: WebAssembly.Memory } | null;

  /** @internal use {@link loadCore}. */
  constructor(
    raw: CoreExports,
    variant: SimdVariant,
    shared: { module: WebAssembly.Module; memory: WebAssembly.Memory } | null = null,
  ) {
    this.raw = raw;
    this.variant = variant;
    this.shared = shared;
  }

  /** A fresh view of `n` f32 at `ptr` (valid until the next core call that may grow memory). */
  f32(ptr: number, n: number): Float32Array {
    return new Float32Array(this.raw.memory.buffer, ptr, n);
  }

  /** A fresh view of `n` bytes at `ptr`. */
  u8(ptr: number, n: number): Uint8Array {
    return new Uint8Array(this.raw.memory.buffer, ptr, n);
  }

  /** A fresh view of `n` u16 at `ptr`. */
  u16(ptr: number, n: number): Uint16Array {
    return new Uint16Array(this.raw.memory.buffer, ptr, n);
  }

  /** A fresh view of `n` u32 at `ptr`. */
  u32(ptr: number, n: number): Uint32Array {
    return new Uint32Array(this.raw.memory.buffer, ptr, n);
  }

  /** Current size of the instance's linear memory in bytes. */
  get memoryBytes(): number {
    return this.raw.memory.buffer.byteLength;
  }

  /** Allocates `bytes` (16-byte aligned, zeroed). */
  alloc(bytes: number): number {
    const p = this.raw.alloc(bytes);
    if (p === 0 && bytes > 0) throw new WasmCoreError(`out of WebAssembly memory allocating ${bytes} bytes`);
    return p;
  }

  /** Frees a block from {@link alloc} (same size). */
  free(ptr: number, bytes: number): void {
    this.raw.free(ptr, bytes);
  }

  /** Copies `data` into a new allocation; returns its pointer (free with `data.byteLength`). */
  put(data: Float32Array | Uint8Array | Uint16Array | Uint32Array): number {
    const p = this.alloc(data.byteLength);
    this.u8(p, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return p;
  }

  /** Copies a UTF-8 string into a new allocation: `[ptr, byteLength]`. */
  putString(s: string): [number, number] {
    const b = new TextEncoder().encode(s);
    return [b.length ? this.put(b) : 0, b.length];
  }

  /** The message the last failing core call left. */
  lastError(): string {
    const p = this.raw.last_error_ptr(), n = this.raw.last_error_len();
    return new TextDecoder().decode(this.u8(p, n).slice());
  }

  /** Throws the core's last error when `status` (a status code or handle) is 0. */
  check(status: number, what: string): number {
    if (status === 0) throw new WasmCoreError(`${what}: ${this.lastError()}`);
    return status;
  }

  /**
   * Adds one checkpoint tensor to the instance's weight store, widening BF16/F16 to f32. `fill` writes the tensor's
   * raw little-endian bytes into the staging view it is given (e.g. `reader.readInto(info, view)`), so a tensor goes
   * from file to wasm memory with no intermediate copy.
   */
  async addWeight(
    name: string,
    dtype: keyof typeof CORE_DTYPE,
    shape: readonly number[],
    byteLength: number,
    fill: (staging: Uint8Array) => Promise<void> | void,
  ): Promise<void> {
    const staging = this.alloc(byteLength);
    const shapePtr = this.put(Uint32Array.from(shape));
    const [namePtr, nameLen] = this.putString(name);
    try {
      await fill(this.u8(staging, byteLength));
      this.check(
        this.raw.weights_add(namePtr, nameLen, CORE_DTYPE[dtype], shapePtr, shape.length, staging, byteLength),
        `loading tensor "${name}"`,
      );
    } finally {
      this.free(staging, byteLength);
      this.free(shapePtr, shape.length * 4);
      if (nameLen) this.free(namePtr, nameLen);
    }
  }
}
