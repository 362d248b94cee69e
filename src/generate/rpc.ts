/**
 * A minimal request/response protocol over `postMessage`, used to drive a model part living in a worker exactly as
 * if it were local: `client.call("step", [input, x0])` resolves with what the worker's handler returned. Errors
 * cross as `{name, code, message}` and are rethrown as {@link PocketTtsError}s with the same code.
 *
 * @module
 */

import { PocketTtsError } from "../errors.ts";

/** What both `Worker` (outside) and the worker's global scope (inside) offer. */
export interface MessageEndpoint {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  addEventListener(type: "message", listener: (event: MessageEvent) => void): void;
}

interface Request {
  id: number;
  method: string;
  args: unknown[];
}

interface Response {
  id: number;
  result?: unknown;
  error?: { name: string; code: string; message: string };
}

/** A method's result and the buffers to transfer (not copy) back to the caller. */
export interface Transferring<T> {
  value: T;
  transfer: Transferable[];
}

/** Marks a handler's result whose buffers should be transferred. */
export function transferring<T>(value: T, transfer: Transferable[]): Transferring<T> {
  return { value, transfer };
}

function isTransferring(v: unknown): v is Transferring<unknown> {
  return typeof v === "object" && v !== null && "transfer" in v && "value" in v;
}

/** The calling side: one pending promise per request id. */
export class RpcClient {
  #endpoint: MessageEndpoint;
  #next = 1;
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  #failed: Error | null = null;

  /** @param endpoint a `Worker` */
  constructor(endpoint: MessageEndpoint) {
    this.#endpoint = endpoint;
    endpoint.addEventListener("message", (event) => {
      const r = event.data as Response;
      const p = this.#pending.get(r.id);
      if (!p) return;
      this.#pending.delete(r.id);
      if (r.error) {
        const e = new PocketTtsError(r.error.code, r.error.message);
        e.name = r.error.name;
        p.reject(e);
      } else p.resolve(r.result);
    });
  }

  /** Calls `method` in the worker with `args` (structured-cloned; buffers in `transfer` are moved). */
  call<T>(method: string, args: unknown[] = [], transfer: Transferable[] = []): Promise<T> {
    if (this.#failed) return Promise.reject(this.#failed);
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#endpoint.postMessage({ id, method, args } satisfies Request, transfer);
    });
  }

  /** Rejects every pending call and every later one (the worker is gone). */
  failAll(reason: Error): void {
    this.#failed ??= reason;
    for (const p of this.#pending.values()) p.reject(reason);
    this.#pending.clear();
  }
}

let busy = 0;

/** Milliseconds this thread's {@link serveRpc} handlers have run so far (how loaded a worker is). */
export function servedMs(): number {
  return busy;
}

/** The serving side (inside a worker): dispatches requests to `handlers`, one at a time, in arrival order. */
export function serveRpc(
  endpoint: MessageEndpoint,
  handlers: Record<string, (...args: never[]) => unknown>,
): void {
  let queue: Promise<void> = Promise.resolve();
  endpoint.addEventListener("message", (event) => {
    const req = event.data as Request;
    queue = queue.then(async () => {
      try {
        const handler = handlers[req.method];
        if (!handler) throw new PocketTtsError("rpc", `unknown worker method "${req.method}"`);
        const start = performance.now();
        let out: unknown;
        try {
          out = await (handler as (...a: unknown[]) => unknown)(...req.args);
        } finally {
          busy += performance.now() - start;
        }
        if (isTransferring(out)) {
          endpoint.postMessage({ id: req.id, result: out.value } satisfies Response, out.transfer);
        } else endpoint.postMessage({ id: req.id, result: out } satisfies Response);
      } catch (e) {
        const err = e as Partial<PocketTtsError>;
        endpoint.postMessage(
          {
            id: req.id,
            error: {
              name: err.name ?? "Error",
              code: err.code ?? "worker_error",
              message: err.message ?? String(e),
            },
          } satisfies Response,
        );
      }
    });
  });
}
