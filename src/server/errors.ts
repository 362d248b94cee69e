/**
 * Errors as clients see them: OpenAI's shape `{"error": {"message", "type", "code", "param"}}` with an HTTP status.
 * A {@link HttpError} is thrown anywhere in a request's handling and becomes that response; any other error becomes a
 * generic 500 (the library's own typed input errors a 400), so no stack trace or internal detail reaches a client.
 *
 * @module
 */

import { PocketTtsError } from "../errors.ts";

/** OpenAI's error `type` for each status class. */
const TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  405: "invalid_request_error",
  409: "invalid_request_error",
  413: "invalid_request_error",
  415: "invalid_request_error",
  503: "server_overloaded",
};

/**
 * An error with the HTTP response it becomes.
 *
 * @example
 * ```ts
 * throw new HttpError(400, "invalid_voice", 'unknown voice "x"', { param: "voice" });
 * ```
 */
export class HttpError extends PocketTtsError {
  /** HTTP status. */
  readonly status: number;
  /** The request field at fault, if any. */
  readonly param: string | null;
  /** Extra response headers (e.g. `Retry-After`). */
  readonly headers: Record<string, string>;

  /**
   * Creates the error.
   *
   * @param status HTTP status
   * @param code stable machine-readable code
   * @param message what is wrong and how to fix it (sent to the client)
   */
  constructor(
    status: number,
    code: string,
    message: string,
    options: { param?: string; headers?: Record<string, string> } = {},
  ) {
    super(code, message);
    this.name = "HttpError";
    this.status = status;
    this.param = options.param ?? null;
    this.headers = options.headers ?? {};
  }
}

/** A JSON response. */
export function jsonResponse(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store", ...headers },
  });
}

/**
 * The response for anything thrown while handling a request. `onError` sees errors that are not the client's fault
 * (for the operator's log); their details never reach the client.
 */
export function errorResponse(e: unknown, onError: (e: unknown) => void): Response {
  let err: HttpError;
  if (e instanceof HttpError) err = e;
  else if (e instanceof PocketTtsError && CLIENT_ERRORS.has(e.name)) err = new HttpError(400, e.code, e.message);
  else if (e instanceof PocketTtsError && e.code === "disposed") {
    err = new HttpError(503, "shutting_down", "the server is shutting down");
  } else {
    onError(e);
    err = new HttpError(500, "internal_error", "the server failed to handle this request");
  }
  const type = TYPES[err.status] ?? (err.status >= 500 ? "server_error" : "invalid_request_error");
  return jsonResponse(
    { error: { message: err.message, type, code: err.code, param: err.param } },
    err.status,
    err.headers,
  );
}

/**
 * Library errors caused by the request's content (their messages name the problem, not the server's state), by class
 * name: errors from a worker arrive as {@link PocketTtsError}s carrying the original class's name.
 */
const CLIENT_ERRORS = new Set([
  "InvalidTextError",
  "InvalidAudioError",
  "InvalidVoiceError",
  "UnsupportedAudioError",
  "VoiceCloningUnavailableError",
  "ConfigError",
]);
