/**
 * Listening on a port with a fetch-style handler in whichever runtime this is: `Deno.serve`, `Bun.serve`, or Node's
 * `node:http` through a small Request/Response adapter (a client that disconnects aborts its request's signal and
 * cancels its response body, as the other two runtimes do).
 *
 * @module
 */

/** Options of {@link serve}. */
export interface ServeOptions {
  /** Interface to bind (default `127.0.0.1`: only this machine). */
  host?: string;
  /** Port (default 8000; 0 picks a free one). */
  port?: number;
  /**
   * On `close()`, how long responses in flight may take to reach their clients before connections are cut, in
   * milliseconds (default {@link DEFAULT_CLOSE_GRACE_MS}).
   */
  closeGraceMs?: number;
}

/**
 * The default {@link ServeOptions.closeGraceMs}: 10 s.
 *
 * @example
 * ```ts
 * const server = await serve(handler, { closeGraceMs: 2 * DEFAULT_CLOSE_GRACE_MS });
 * ```
 */
export const DEFAULT_CLOSE_GRACE_MS = 10_000;

/** A listening server. */
export interface RunningServer {
  /** Its base URL, e.g. `http://127.0.0.1:8000`. */
  url: string;
  /**
   * Stops listening, lets responses in flight reach their clients (at most `closeGraceMs`; end streams first, e.g.
   * with the handler's `close()`), then closes every connection.
   */
  close(): Promise<void>;
}

import type { NodeWebSocketServerClass } from "./websocket.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;

/** `graceful`, or after `ms` whichever comes first, `force`. */
async function within(ms: number, graceful: Promise<unknown>, force: () => unknown): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((r) => timer = setTimeout(() => r("late"), ms));
  try {
    if (await Promise.race([graceful.then(() => "done" as const), late]) === "late") await force();
  } finally {
    clearTimeout(timer);
  }
}

function baseUrl(host: string, port: number): string {
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/**
 * Serves `handler` on `host:port`.
 *
 * @example
 * ```ts
 * const server = await serve(createHandler(tts), { port: 8000 });
 * console.log(`listening on ${server.url}`);
 * ```
 */
export async function serve(
  handler: (req: Request) => Promise<Response>,
  options: ServeOptions = {},
): Promise<RunningServer> {
  const host = options.host ?? "127.0.0.1";
  const port = options.port ?? 8000;
  const grace = options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS;
  if (g.Deno) {
    let listening!: (port: number) => void;
    const bound = new Promise<number>((r) => listening = r);
    const server = g.Deno.serve(
      { hostname: host, port, onListen: (a: { port: number }) => listening(a.port) },
      handler,
    );
    const p = await bound;
    // `shutdown()` waits for responses in flight; past the grace period the caller goes on (a CLI then exits).
    return { url: baseUrl(host, p), close: () => within(grace, server.shutdown(), () => {}) };
  }
  if (g.Bun) {
    const { bunFetch, bunWebSocketHandlers } = await import("./websocket.ts");
    const server = g.Bun.serve({
      hostname: host,
      port,
      fetch: bunFetch(handler),
      websocket: bunWebSocketHandlers,
      idleTimeout: 0, // a stream may pause while other clients' frames are generated
    });
    return {
      url: baseUrl(host, server.port),
      close: () => within(grace, Promise.resolve(server.stop(false)), () => server.stop(true)),
    };
  }
  return await serveNode(handler, host, port, grace);
}

async function serveNode(
  handler: (req: Request) => Promise<Response>,
  host: string,
  port: number,
  grace: number,
): Promise<RunningServer> {
  const http = await import("node:http");
  const { attachNodeWebSocket } = await import("./websocket.ts");
  const server = http.createServer(async (inc, out) => {
    const ac = new AbortController();
    out.on("close", () => {
      if (!out.writableFinished) ac.abort();
    });
    const headers = new Headers();
    for (const [k, v] of Object.entries(inc.headers)) {
      for (const one of Array.isArray(v) ? v : v === undefined ? [] : [v]) headers.append(k, one);
    }
    const hasBody = inc.method !== "GET" && inc.method !== "HEAD";
    const req = new Request(`http://${headers.get("host") ?? host}${inc.url ?? "/"}`, {
      method: inc.method,
      headers,
      body: hasBody ? webBody(inc) : undefined,
      signal: ac.signal,
      // @ts-ignore: Node needs it for a streamed request body
      duplex: "half",
    });
    const res = await handler(req);
    out.writeHead(res.status, [...res.headers].flat());
    if (!res.body) return void out.end();
    const reader = res.body.getReader();
    ac.signal.addEventListener("abort", () => void reader.cancel().catch(() => {}), { once: true });
    try {
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        if (!out.write(value)) {
          // Until the client takes more, or leaves, or the body fails (a stalled client's stream errors).
          await new Promise((r) => {
            out.once("drain", r);
            ac.signal.addEventListener("abort", r, { once: true });
            reader.closed.then(r, r);
          });
        }
      }
      out.end();
    } catch {
      out.destroy();
    }
  });
  // WebSocket routes (`/v1/audio/speech/stream`) through the `ws` package when it is installed; without it they
  // answer 501 like any runtime that cannot upgrade.
  attachNodeWebSocket(server, await nodeWebSocketServer(), handler);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const bound = typeof address === "object" && address ? address.port : port;
  return {
    url: baseUrl(host, bound),
    close: () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections?.();
      return within(grace, closed, () => {
        server.closeAllConnections?.();
        return closed;
      });
    },
  };
}

/**
 * The `ws` package's `WebSocketServer`, an optional dependency resolved beside this module at run time (`npm install
 * ws`), or `null` when it is not installed. Required by a computed name, so bundlers and the npm build leave it
 * optional rather than bundling or requiring it.
 */
async function nodeWebSocketServer(): Promise<NodeWebSocketServerClass | null> {
  try {
    const { createRequire } = await import("node:module");
    const name = "ws";
    return createRequire(import.meta.url)(name).WebSocketServer ?? null;
  } catch {
    return null;
  }
}

/** A Node request body as a web stream (Node 20's `Readable.toWeb` throws when a cancelled body ends). */
function webBody(inc: import("node:http").IncomingMessage): ReadableStream<Uint8Array> {
  let done = false;
  return new ReadableStream<Uint8Array>({
    start(c) {
      inc.on("data", (chunk: Uint8Array) => {
        if (done) return;
        c.enqueue(new Uint8Array(chunk));
        if ((c.desiredSize ?? 1) <= 0) inc.pause();
      });
      inc.on("end", () => !done && (done = true, c.close()));
      inc.on("error", (e) => !done && (done = true, c.error(e)));
    },
    pull() {
      inc.resume();
    },
    cancel() {
      done = true;
      inc.resume(); // drain the rest, so the response can still be sent on this connection
    },
  });
}
