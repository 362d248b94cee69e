/**
 * Threads for the model parts, one interface over the two kinds JavaScript has: module `Worker`s (Deno, Bun,
 * browsers) and Node's `worker_threads`. Both sides end up as a {@link MessageEndpoint}, so `rpc.ts` drives either
 * the same way.
 *
 * @module
 */

import { PocketTtsError } from "../errors.ts";
import type { MessageEndpoint } from "./rpc.ts";

/** A started thread: its message endpoint, and how to stop it. */
export interface ModelThread {
  /** Requests go out and responses come back here. */
  endpoint: MessageEndpoint;
  /** Calls `listener` once if the thread dies (its script failed to load, or threw outside a request). */
  onFailure(listener: (message: string) => void): void;
  /** Ends the thread at once. */
  terminate(): void;
}

// deno-lint-ignore no-explicit-any
const g = globalThis as any;

/** True in Node (not Bun or Deno, which have module workers). */
function isNode(): boolean {
  return typeof g.process?.versions?.node === "string" && g.Bun === undefined && g.Deno === undefined;
}

/** True where {@link startThread} can start a thread: module workers, or Node's `worker_threads`. */
export function threadsAvailable(): boolean {
  return typeof g.Worker === "function" || isNode();
}

/**
 * Starts the module at `url` in a new thread.
 *
 * @example
 * ```ts
 * const thread = await startThread(new URL("./worker.js", import.meta.url));
 * ```
 */
export async function startThread(url: URL): Promise<ModelThread> {
  const thread = typeof g.Worker === "function" ? webWorker(url) : await nodeWorker(url);
  // A message to a stopped thread would never be answered: fail the call at once instead.
  let stopped = false;
  return {
    endpoint: {
      postMessage(message, transfer) {
        if (stopped) throw new PocketTtsError("disposed", "the model's worker was stopped (the TTSModel was disposed)");
        thread.endpoint.postMessage(message, transfer);
      },
      addEventListener: (type, listener) => thread.endpoint.addEventListener(type, listener),
    },
    onFailure: thread.onFailure,
    terminate() {
      stopped = true;
      thread.terminate();
    },
  };
}

function webWorker(url: URL): ModelThread {
  const worker: Worker = new g.Worker(url, { type: "module" });
  return {
    endpoint: worker as unknown as MessageEndpoint,
    onFailure(listener) {
      worker.addEventListener("error", (e) => {
        e.preventDefault?.();
        listener((e as ErrorEvent).message || `cannot start the worker script ${url.href}`);
      });
    },
    terminate: () => worker.terminate(),
  };
}

async function nodeWorker(url: URL): Promise<ModelThread> {
  const { Worker } = await import("node:worker_threads");
  const worker = new Worker(url);
  return {
    endpoint: {
      postMessage: (message, transfer) => worker.postMessage(message, transfer as never),
      addEventListener: (_type, listener) => worker.on("message", (data) => listener({ data } as MessageEvent)),
    },
    onFailure(listener) {
      worker.on("error", (e: Error) => listener(e.message));
    },
    terminate: () => void worker.terminate(),
  };
}

/**
 * Inside a thread: the endpoint to its parent (the worker's global scope, or Node's `parentPort`). In module workers
 * this resolves without awaiting anything, so a listener added right away sees the first message.
 */
export function parentEndpoint(): MessageEndpoint | Promise<MessageEndpoint> {
  if (typeof g.postMessage === "function") return globalThis as unknown as MessageEndpoint;
  return import("node:worker_threads").then(({ parentPort }) => {
    if (!parentPort) throw new Error("not running in a worker");
    return parentPort as unknown as MessageEndpoint;
  });
}
