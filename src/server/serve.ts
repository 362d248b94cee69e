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
}

/** A listening server. */
export interface RunningServer {
  /** Its base URL, e.g. `http://127.0.0.1:8000`. */
  url: string;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

// deno-lint-ignore no-explicit-any
const g = globalThis as any;

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
  if (g.Deno) {
    let listening!: (port: number) => void;
    const bound = new Promise<number>((r) => listening = r);
    const server = g.Deno.serve(
      { hostname: host, port, onListen: (a: { port: number }) => listening(a.port) },
      handler,
    );
    const p = await bound;
    return { url: baseUrl(host, p), close: () => server.shutdown() };
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
    return { url: baseUrl(host, server.port), close: () => Promise.resolve(server.stop(true)) };
  }
  return await serveNode(handler, host, port);
}

async function serveNode(
  handler: (req: Request) => Promise<Response>,
  host: string,
  port: number,
): Promise<RunningServer> {
  const http = await import("node:http");
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
          await new Promise((r) => {
            out.once("drain", r);
            ac.signal.addEventListener("abort", r, { once: true });
          });
        }
      }
      out.end();
    } catch {
      out.destroy();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const bound = typeof address === "object" && address ? address.port : port;
  return {
    url: baseUrl(host, bound),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
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
