/**
 * WebSocket upgrades from a plain `(Request) => Response` handler, in every runtime. A route calls
 * {@link upgradeWebSocket} with the request and a session factory (e.g. `openSpeechSocket`); how the socket is
 * obtained differs per runtime, and a small adapter supplies it:
 * - **Deno**: nothing to add — `Deno.upgradeWebSocket` works inside any handler given to `Deno.serve`;
 * - **Bun**: serve with `fetch: bunFetch(handler)` and `websocket: bunWebSocketHandlers` (Bun upgrades through
 *   `server.upgrade(req)` and delivers messages to those callbacks, not to the socket);
 * - **Node**: {@link attachNodeWebSocket} answers the `http.Server`'s `upgrade` event by calling the same handler,
 *   with the `ws` package's `WebSocketServer` passed in (the library itself has no dependency; `serve()` passes it
 *   when `ws` is installed).
 *
 * So routing, API keys and limits run in the handler as for any other request, whatever the runtime.
 *
 * @module
 */

import type { SpeechSocket, SpeechSocketSession } from "./speech_socket.ts";

/** Starts a session on a connected socket (e.g. `(socket) => openSpeechSocket(tts, socket, options)`). */
export type SessionFactory = (socket: SpeechSocket) => SpeechSocketSession;

/** The path of the streaming-text endpoint. */
export const SPEECH_STREAM_PATH = "/v1/audio/speech/stream";

/** Upgraders the Bun and Node adapters register for the requests they pass to the handler. */
const upgraders = new WeakMap<Request, (start: SessionFactory) => void>();
/** Requests a route has upgraded (their handler's response is not sent). */
const upgraded = new WeakSet<Request>();
/** The responses {@link upgradeWebSocket} returned. */
const upgradeResponses = new WeakSet<Response>();

/**
 * Whether a response is the result of {@link upgradeWebSocket}: a handler must return it untouched (no headers
 * added: after an upgrade the request is closed, and Deno's 101 response is immutable).
 *
 * @example
 * ```ts
 * const res = await route(req);
 * if (!isUpgradeResponse(res)) res.headers.set("vary", "origin");
 * ```
 */
export function isUpgradeResponse(response: Response): boolean {
  return upgradeResponses.has(response);
}

/**
 * Whether a request asks to upgrade to a WebSocket.
 *
 * @example
 * ```ts
 * if (!isWebSocketUpgrade(req)) return new Response("use a WebSocket", { status: 426 });
 * ```
 */
export function isWebSocketUpgrade(request: Request): boolean {
  return request.headers.get("upgrade")?.toLowerCase() === "websocket";
}

/** The subset of the standard `WebSocket` (Deno's, or the `ws` package's) the adapters use. */
interface StandardSocket {
  binaryType: string;
  readonly bufferedAmount: number;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: unknown) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

function runOn(ws: StandardSocket, start: SessionFactory): void {
  ws.binaryType = "arraybuffer";
  const session = start(ws);
  ws.onmessage = (e) => session.message(e.data as string | ArrayBuffer);
  ws.onclose = () => session.closed();
  ws.onerror = () => session.closed();
}

/**
 * Upgrades the request to a WebSocket and runs a session on it. Returns the response the handler must return, or
 * `null` when this runtime cannot upgrade here (Bun or Node without their adapter, or a serverless platform).
 *
 * @example
 * ```ts
 * const handler = (req: Request) =>
 *   upgradeWebSocket(req, (socket) => openSpeechSocket(tts, socket)) ?? new Response(null, { status: 501 });
 * Deno.serve(handler);
 * ```
 */
export function upgradeWebSocket(request: Request, start: SessionFactory): Response | null {
  const upgrade = upgraders.get(request);
  if (upgrade) {
    upgrade(start);
    upgraded.add(request);
    const placeholder = new Response(null, { status: 200 }); // the adapter does not send it
    upgradeResponses.add(placeholder);
    return placeholder;
  }
  // deno-lint-ignore no-explicit-any
  const deno = (globalThis as any).Deno;
  if (typeof deno?.upgradeWebSocket !== "function") return null;
  const { socket, response } = deno.upgradeWebSocket(request);
  socket.onopen = () => runOn(socket, start);
  upgradeResponses.add(response);
  return response;
}

/** Bun's server-side socket (the part used here). */
interface BunSocket {
  data: { start: SessionFactory; session?: SpeechSocketSession };
  send(data: string | Uint8Array): number;
  close(code?: number, reason?: string): void;
  getBufferedAmount(): number;
}

/**
 * Bun: wraps a handler as `Bun.serve`'s `fetch`, so that its routes can call {@link upgradeWebSocket}. Use with
 * {@link bunWebSocketHandlers}.
 *
 * @example
 * ```ts
 * Bun.serve({ fetch: bunFetch(handler), websocket: bunWebSocketHandlers });
 * ```
 */
export function bunFetch(
  handler: (req: Request) => Response | Promise<Response>,
): (
  req: Request,
  server: { upgrade(req: Request, options: { data: unknown }): boolean },
) => Promise<Response | undefined> {
  return async (req, server) => {
    upgraders.set(req, (start) => {
      if (!server.upgrade(req, { data: { start } })) throw new TypeError("the WebSocket upgrade failed");
    });
    const response = await handler(req);
    return upgraded.has(req) ? undefined : response;
  };
}

/** Bun: the `websocket` handlers for `Bun.serve` (see {@link bunFetch}). */
export const bunWebSocketHandlers = {
  /** A socket opened: its session starts. */
  open(ws: BunSocket): void {
    ws.data.session = ws.data.start({
      send: (d) => void ws.send(d),
      close: (code, reason) => ws.close(code, reason),
      get bufferedAmount() {
        return ws.getBufferedAmount();
      },
    });
  },
  /** A message for the socket's session. */
  message(ws: BunSocket, message: string | Uint8Array): void {
    ws.data.session?.message(message);
  },
  /** The socket closed. */
  close(ws: BunSocket): void {
    ws.data.session?.closed();
  },
};

/** The `ws` package's `WebSocketServer` constructor (the part used here). */
export interface NodeWebSocketServerClass {
  // deno-lint-ignore no-explicit-any
  new (options: { noServer: true; maxPayload?: number }): any;
}

/**
 * Node: answers WebSocket upgrades on an `http.Server` by calling `handler` with the upgrade request; a route that
 * calls {@link upgradeWebSocket} gets the socket (through the `ws` package), any other response is written back
 * and the connection closed. Without `WebSocketServer` (`null`: `ws` is not installed), routes cannot upgrade and
 * their answer (e.g. a 501) is written back.
 *
 * @example
 * ```ts
 * import { WebSocketServer } from "ws";
 * attachNodeWebSocket(httpServer, WebSocketServer, handler);
 * ```
 */
export function attachNodeWebSocket(
  // deno-lint-ignore no-explicit-any
  server: { on(event: "upgrade", listener: (req: any, socket: any, head: any) => void): unknown },
  WebSocketServer: NodeWebSocketServerClass | null,
  handler: (req: Request) => Response | Promise<Response>,
): void {
  const wss = WebSocketServer && new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  // deno-lint-ignore no-explicit-any
  server.on("upgrade", async (inc: any, socket: any, head: any) => {
    socket.on("error", () => {});
    const headers = new Headers();
    for (const [k, v] of Object.entries(inc.headers as Record<string, string | string[] | undefined>)) {
      for (const one of Array.isArray(v) ? v : v === undefined ? [] : [v]) headers.append(k, one);
    }
    const req = new Request(`http://${headers.get("host") ?? "localhost"}${inc.url ?? "/"}`, { headers });
    if (wss) {
      upgraders.set(req, (start) => {
        // deno-lint-ignore no-explicit-any
        wss.handleUpgrade(inc, socket, head, (ws: any) => runOn(ws, start));
      });
    }
    let response: Response;
    try {
      response = await handler(req);
    } catch {
      response = new Response(null, { status: 500 });
    }
    if (upgraded.has(req)) return;
    const body = new Uint8Array(await response.arrayBuffer().catch(() => new ArrayBuffer(0)));
    const lines = [`HTTP/1.1 ${response.status} ${response.statusText || "Error"}`, "connection: close"];
    for (const [k, v] of response.headers) if (k !== "content-length") lines.push(`${k}: ${v}`);
    lines.push(`content-length: ${body.length}`);
    socket.end(new Uint8Array([...new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n"), ...body]));
  });
}
