/**
 * WebSocket upgrade differs per runtime; the speech session ({@link openSpeechSocket}) does not. Three small adapters
 * connect a runtime's socket to a session:
 * - **Deno** (and anything with `Deno.upgradeWebSocket`): {@link upgradeWebSocket} runs inside a plain
 *   `(Request) => Response` handler and returns the 101 response;
 * - **Bun**: `server.upgrade(req, { data })` in `fetch`, plus the {@link bunWebSocketHandlers} as `Bun.serve`'s
 *   `websocket` option (Bun delivers messages to those callbacks, not to the socket);
 * - **Node**: {@link attachNodeWebSocket} handles the HTTP server's `upgrade` event with the `ws` package's
 *   `WebSocketServer` (passed in, so the library itself has no dependency).
 *
 * @module
 */

import type { SpeechSocket, SpeechSocketSession } from "./speech_socket.ts";

/** Starts a session on a connected socket (e.g. `(socket) => openSpeechSocket(tts, socket, options)`). */
export type SessionFactory = (socket: SpeechSocket) => SpeechSocketSession;

/** The path of the streaming-text endpoint. */
export const SPEECH_STREAM_PATH = "/v1/audio/speech/stream";

/** Whether a request asks to upgrade to a WebSocket. */
export function isWebSocketUpgrade(request: Request): boolean {
  return request.headers.get("upgrade")?.toLowerCase() === "websocket";
}

/** The subset of the standard `WebSocket` the adapters use. */
interface StandardSocket {
  binaryType: string;
  readonly bufferedAmount: number;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: unknown) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

function wrapStandard(ws: StandardSocket, start: SessionFactory): void {
  ws.binaryType = "arraybuffer";
  let session: SpeechSocketSession | null = null;
  const ready = () => session ??= start(ws);
  ws.onmessage = (e) => ready().message(e.data as string | ArrayBuffer);
  ws.onclose = () => ready().closed();
  ws.onerror = () => ready().closed();
}

/**
 * Deno: upgrades the request and runs a session on the socket. Returns `null` where `Deno.upgradeWebSocket` does
 * not exist (Bun and Node upgrade outside the request handler: see the other adapters).
 *
 * @example
 * ```ts
 * Deno.serve((req) => upgradeWebSocket(req, (socket) => openSpeechSocket(tts, socket)) ?? new Response(null, { status: 426 }));
 * ```
 */
export function upgradeWebSocket(request: Request, start: SessionFactory): Response | null {
  // deno-lint-ignore no-explicit-any
  const deno = (globalThis as any).Deno;
  if (typeof deno?.upgradeWebSocket !== "function") return null;
  const { socket, response } = deno.upgradeWebSocket(request);
  socket.onopen = () => wrapStandard(socket, start);
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
 * Bun: the `websocket` handlers for `Bun.serve`. Upgrade in `fetch` with
 * `server.upgrade(req, { data: { start: (socket) => openSpeechSocket(tts, socket) } })`.
 *
 * @example
 * ```ts
 * Bun.serve({
 *   fetch(req, server) {
 *     const start = (socket) => openSpeechSocket(tts, socket);
 *     if (server.upgrade(req, { data: { start } })) return undefined;
 *     return handler(req);
 *   },
 *   websocket: bunWebSocketHandlers,
 * });
 * ```
 */
export const bunWebSocketHandlers = {
  open(ws: BunSocket): void {
    ws.data.session = ws.data.start({
      send: (d) => void ws.send(d),
      close: (code, reason) => ws.close(code, reason),
      get bufferedAmount() {
        return ws.getBufferedAmount();
      },
    });
  },
  message(ws: BunSocket, message: string | Uint8Array): void {
    ws.data.session?.message(message);
  },
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
 * Node: serves the endpoint on an `http.Server` through the `ws` package, answering only upgrades to `path`
 * (others are left to other listeners, or closed when there are none).
 *
 * @example
 * ```ts
 * import { WebSocketServer } from "ws";
 * attachNodeWebSocket(httpServer, WebSocketServer, (socket) => openSpeechSocket(tts, socket));
 * ```
 */
export function attachNodeWebSocket(
  // deno-lint-ignore no-explicit-any
  server: { on(event: "upgrade", listener: (req: any, socket: any, head: any) => void): unknown },
  WebSocketServer: NodeWebSocketServerClass,
  start: SessionFactory,
  path: string = SPEECH_STREAM_PATH,
): void {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  // deno-lint-ignore no-explicit-any
  server.on("upgrade", (req: any, socket: any, head: any) => {
    if (new URL(req.url ?? "/", "http://localhost").pathname !== path) return;
    // deno-lint-ignore no-explicit-any
    wss.handleUpgrade(req, socket, head, (ws: any) => wrapStandard(ws, start));
  });
}
