/**
 * Helper threads for the threads build of the wasm core (`loadCore({ threads: true })`). Each helper is a worker
 * (`worker.ts`, the model-part worker script) holding another instance of the same module over the core's shared
 * memory, with its own stack and thread-local block carved from that memory, parked in `pool_helper_run`: from then
 * on it takes chunks of every kernel the core's own thread splits (`crates/pocket_core/src/pool.rs`). Outputs are
 * the same bits whichever thread computes them, so audio is identical with any number of helpers. Stopping first
 * sends the helpers out of the pool (`pool_quit`): a worker asleep in a wasm wait is not ended by `terminate` alone in
 * every runtime, and would keep the process alive.
 *
 * @module
 */

import { PocketTtsError } from "../errors.ts";
import type { PocketCore } from "../runtime/wasm.ts";
import { RpcClient } from "./rpc.ts";
import { type ModelThread, startThread } from "./worker_thread.ts";

/** Stack of a helper instance: it runs kernels only (the core's own thread keeps the default 1 MiB). */
const HELPER_STACK = 256 * 1024;

/** What a helper worker's `helperInit` receives. */
export interface HelperInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** Initial `__stack_pointer` (the top of its stack: stacks grow down). */
  stackTop: number;
  /** Its thread-local block, for `__wasm_init_tls`. */
  tlsBase: number;
  /** Address of the i32 the helper sets when its instance traps, so the core's thread stops waiting for it. */
  failedFlag: number;
}

/** Started helpers. */
export interface CoreHelpers {
  readonly count: number;
  /** Ends the helpers (the core then runs every kernel on its own thread); resolves once their workers are ended. */
  terminate(): Promise<void>;
}

/**
 * Starts `count` helpers for `core` (a threads build) from the worker script at `url`, and waits until each is
 * parked in the pool.
 *
 * @example
 * ```ts
 * const core = await loadCore({ threads: true });
 * const helpers = await startCoreHelpers(core, 1, defaultWorkerUrl());
 * // … core calls now use two threads …
 * helpers.terminate();
 * ```
 */
export async function startCoreHelpers(core: PocketCore, count: number, url: URL): Promise<CoreHelpers> {
  const shared = core.shared;
  if (!shared) throw new PocketTtsError("threads_unavailable", "helper threads need the threads build of the core");
  // deno-lint-ignore no-explicit-any
  const raw = core.raw as any;
  const tlsBytes = Math.max(16, raw.__tls_size.value as number);
  if ((raw.__tls_align.value as number) > 16) throw new PocketTtsError("threads_unavailable", "TLS alignment > 16");
  const threads: ModelThread[] = [];
  let stopped: Promise<void> | null = null;
  const terminate = () =>
    stopped ??= (async () => {
      raw.pool_quit();
      for (let i = 0; i < 1000 && raw.pool_helpers() > 0; i++) await new Promise((r) => setTimeout(r, 1));
      threads.forEach((t) => t.terminate());
    })();
  try {
    for (let i = 0; i < count; i++) {
      const thread = await startThread(url);
      threads.push(thread);
      const rpc = new RpcClient(thread.endpoint);
      let failure: string | null = null;
      thread.onFailure((message) => {
        failure = message;
        rpc.failAll(new PocketTtsError("worker_failed", `core helper thread (${url.href}) failed: ${message}`));
      });
      // Never freed: a helper's stack and TLS live as long as the memory (a terminated helper may have been anywhere).
      const stackTop = core.alloc(HELPER_STACK) + HELPER_STACK;
      const init: HelperInit = {
        ...shared,
        stackTop,
        tlsBase: core.alloc(tlsBytes),
        failedFlag: raw.pool_failed_flag() as number,
      };
      await rpc.call("helperInit", [init]);
      rpc.call("helperRun").catch(() => {}); // answered after pool_quit, or if the helper traps (flag set by then)
      // Parked once the pool counts it (a few ms; bounded by the worker's failure).
      while (raw.pool_helpers() <= i) {
        if (failure !== null) throw new PocketTtsError("worker_failed", `core helper thread failed: ${failure}`);
        await new Promise((r) => setTimeout(r, 1));
      }
    }
  } catch (e) {
    await terminate();
    throw e;
  }
  return { count, terminate };
}
