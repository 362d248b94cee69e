/**
 * What the Mimi decoder's and encoder's stream states share: a state handle in a core instance, I/O buffers sized
 * for `maxFrames` frames per call, reset/position/bytes, intermediate-output taps, and freeing.
 *
 * @module
 */

import { WasmCoreError } from "../errors.ts";
import type { PocketCore } from "./wasm.ts";

/** One recorded intermediate output of the last call, time-major. */
export interface MimiTap {
  /** Time steps (rows). */
  rows: number;
  /** Channels (columns). */
  channels: number;
  /** `rows × channels` values, row by row (the transpose of the reference's `[C, T]`). */
  data: Float32Array;
}

/** The per-stream exports of one model part, bound to its model handle where they need it. */
export interface StreamCalls {
  free(s: number): void;
  reset(s: number): number;
  position(s: number): number;
  bytes(s: number): number;
  setTaps(s: number, on: number): number;
  tapLen(s: number, id: number): number;
  tapPtr(s: number, id: number): number;
}

/** A core's tap list (`name channels` per line) as names in order and channels by name. */
export function readTapList(
  core: PocketCore,
  ptr: number,
  len: number,
): { names: string[]; channels: Map<string, number> } {
  const lines = new TextDecoder().decode(core.u8(ptr, len).slice()).split("\n").map((l) => l.split(" "));
  return { names: lines.map((l) => l[0]), channels: new Map(lines.map((l) => [l[0], Number(l[1])])) };
}

/** A stream state of a Mimi part in wasm memory (see `MimiDecoderState`, `MimiEncoderState`). */
export class CoreStream {
  /** Frames processed per internal step. */
  readonly maxFrames: number;
  /** Where the call's input is staged (`inBytes`). */
  protected readonly inPtr: number;
  /** Where the call's output lands (`outBytes`). */
  protected readonly outPtr: number;
  #core: PocketCore;
  #calls: StreamCalls;
  #handle: number;
  #bytes: [number, number];
  #taps: { names: readonly string[]; channels: ReadonlyMap<string, number> };
  #what: string;
  #onFree: () => void;

  /** Takes ownership of `handle`; frees it when the I/O buffers cannot be allocated. */
  constructor(
    core: PocketCore,
    calls: StreamCalls,
    handle: number,
    maxFrames: number,
    io: { inBytes: number; outBytes: number },
    taps: { names: readonly string[]; channels: ReadonlyMap<string, number> },
    what: string,
    onFree: () => void,
  ) {
    this.#core = core;
    this.#calls = calls;
    this.#handle = handle;
    this.maxFrames = maxFrames;
    this.#bytes = [io.inBytes, io.outBytes];
    this.#taps = taps;
    this.#what = what;
    this.#onFree = onFree;
    try {
      this.inPtr = core.alloc(io.inBytes);
      this.outPtr = core.alloc(io.outBytes);
    } catch (e) {
      calls.free(handle);
      throw e;
    }
  }

  /** The live handle. @throws {WasmCoreError} once freed */
  protected live(): number {
    if (this.#handle === 0) throw new WasmCoreError(`the ${this.#what} has been freed`);
    return this.#handle;
  }

  /** Back to the start of a stream (position 0, zero state), keeping every buffer. */
  reset(): void {
    this.#core.check(this.#calls.reset(this.live()), `resetting the ${this.#what}`);
  }

  /** Absolute 200 Hz position of the next step (16 per frame). */
  get position(): number {
    return this.#calls.position(this.live());
  }

  /** Bytes of state and scratch in wasm memory (excluding the I/O buffers). */
  get bytes(): number {
    return this.#calls.bytes(this.live());
  }

  /** Records (`true`) or stops recording the intermediate outputs of each internal step (allocates on enabling). */
  setTaps(on: boolean): void {
    this.#core.check(this.#calls.setTaps(this.live(), on ? 1 : 0), `${this.#what} taps`);
  }

  /** A copy of intermediate output `name` of the last internal step, if recorded. */
  tap(name: string): MimiTap | undefined {
    const h = this.live();
    const id = this.#taps.names.indexOf(name);
    if (id < 0) return undefined;
    const n = this.#calls.tapLen(h, id);
    if (n === 0) return undefined;
    const channels = this.#taps.channels.get(name)!;
    return { rows: n / channels, channels, data: this.#core.f32(this.#calls.tapPtr(h, id), n).slice() };
  }

  /** Frees the state and its buffers. */
  free(): void {
    if (this.#handle === 0) return;
    this.#calls.free(this.#handle);
    this.#core.free(this.inPtr, this.#bytes[0]);
    this.#core.free(this.outPtr, this.#bytes[1]);
    this.#handle = 0;
    this.#onFree();
  }
}
