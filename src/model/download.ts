/**
 * HTTP downloads of model files: one GET with Hugging Face authentication and redirect handling, HTTP failures as
 * typed {@link DownloadError}s, and the response body as a stream of chunks that reports progress and detects a
 * body cut short.
 *
 * @module
 */
import { DownloadError } from "../errors.ts";

/** Download progress of one file. `total` is `null` when the server did not say. */
export interface ProgressEvent {
  /** The file being downloaded, as its source reference (`hf://…`, URL). */
  file: string;
  /** Bytes received so far. */
  loaded: number;
  /** Expected size in bytes, or `null` when unknown. */
  total: number | null;
}

/** Receives {@link ProgressEvent}s: once with `loaded: 0`, then after every chunk. */
export type ProgressCallback = (event: ProgressEvent) => void;

/** Options of {@link httpGet}. */
export interface HttpGetOptions {
  /** Bearer token (Hugging Face `HF_TOKEN`); sent only to `tokenOrigin`. */
  token?: string | null;
  /** Origin allowed to receive the token (default: the origin of the first URL). */
  tokenOrigin?: string;
  /** Request method (default GET). */
  method?: "GET" | "HEAD";
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** The fetch implementation (default: global `fetch`). */
  fetch?: typeof fetch;
  /** Cancels the request. */
  signal?: AbortSignal;
  /** The file being fetched, for messages (default: the URL). */
  file?: string;
  /** Redirects followed at most (default 10). */
  maxRedirects?: number;
}

/** A successful response plus what Hugging Face reported on the way (possibly on a redirect). */
export interface HttpResult {
  /** The final response (status 2xx; its body is unread). */
  response: Response;
  /** The URL that produced it. */
  url: string;
  /** sha256 of the file when the server announced one (HF `X-Linked-Etag`, or a 64-hex `ETag`). */
  sha256: string | null;
  /** Size announced by HF (`X-Linked-Size`) or `Content-Length`, or `null`. */
  size: number | null;
  /** The commit a Hugging Face revision resolved to (`X-Repo-Commit`), or `null`. */
  commit: string | null;
  /** The entity tag of the file (unquoted), or `null`. */
  etag: string | null;
}

/** Thrown when the server could not be reached at all (no HTTP response): the caller may treat it as offline. */
export class NetworkUnreachableError extends DownloadError {
  /**
   * @param url the URL that could not be fetched
   * @param cause the fetch failure
   */
  constructor(url: string, cause: unknown) {
    super("network", `cannot reach ${new URL(url).host}: ${describeCause(cause)}`, { url, cause });
  }
}

/** A short description of a fetch failure (runtimes nest the useful part in `cause`). */
export function describeCause(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let i = 0; i < 4 && cur; i++) {
    if (cur instanceof Error) {
      const code = (cur as { code?: unknown }).code;
      parts.push(typeof code === "string" && !cur.message.includes(code) ? `${cur.message} (${code})` : cur.message);
      cur = (cur as { cause?: unknown }).cause;
    } else {
      parts.push(String(cur));
      break;
    }
  }
  return [...new Set(parts.filter(Boolean))].join(": ") || "unknown error";
}

function unquoteEtag(v: string | null): string | null {
  if (!v) return null;
  return v.replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}

function sha256FromEtag(v: string | null): string | null {
  const e = unquoteEtag(v);
  return e && /^[0-9a-f]{64}$/i.test(e) ? e.toLowerCase() : null;
}

function intHeader(h: Headers, name: string): number | null {
  const v = h.get(name);
  if (v === null || !/^\d+$/.test(v.trim())) return null;
  return Number(v);
}

async function errorFor(res: Response, url: string, file: string, token: string | null | undefined): Promise<never> {
  const hfCode = res.headers.get("x-error-code");
  const hfMsg = res.headers.get("x-error-message");
  await res.body?.cancel().catch(() => {});
  const status = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}${hfCode ? `, ${hfCode}` : ""}`;
  if (res.status === 401 || res.status === 403) {
    const how = token
      ? "the token (HF_TOKEN) was refused or has not been granted access to this repository"
      : "the repository may be gated: accept its terms on Hugging Face, then set HF_TOKEN (or run `hf auth login`)";
    throw new DownloadError("unauthorized", `${file}: access denied (${status}): ${how}`, { url, status: res.status });
  }
  if (res.status === 404) {
    throw new DownloadError("not_found", `${file}: not found (${status})${hfMsg ? `: ${hfMsg}` : ""} at ${url}`, {
      url,
      status: res.status,
    });
  }
  throw new DownloadError("http_error", `${file}: download failed (${status}) at ${url}`, { url, status: res.status });
}

/**
 * GET (or HEAD) a URL, following redirects by hand so that Hugging Face's headers on the redirect (`X-Linked-Etag`
 * = sha256, `X-Linked-Size`, `X-Repo-Commit`) are kept and the token is not sent to another origin (the CDN).
 *
 * @throws {NetworkUnreachableError} when no HTTP response arrives
 * @throws {DownloadError} `unauthorized` (401/403), `not_found` (404) or `http_error` for other statuses
 */
export async function httpGet(url: string, options: HttpGetOptions = {}): Promise<HttpResult> {
  const f = options.fetch ?? fetch;
  const file = options.file ?? url;
  const tokenOrigin = options.tokenOrigin ?? new URL(url).origin;
  let sha256: string | null = null;
  let size: number | null = null;
  let commit: string | null = null;
  let etag: string | null = null;
  let current = url;
  for (let hop = 0;; hop++) {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token && new URL(current).origin === tokenOrigin) headers["authorization"] = `Bearer ${options.token}`;
    let res: Response;
    try {
      res = await f(current, { method: options.method ?? "GET", headers, redirect: "manual", signal: options.signal });
    } catch (e) {
      if (options.signal?.aborted) throw e;
      throw new NetworkUnreachableError(current, e);
    }
    if (res.type === "opaqueredirect") {
      // Browsers hide manual redirects: let the browser follow (it drops the token on cross-origin hops itself).
      try {
        res = await f(current, { method: options.method ?? "GET", headers, signal: options.signal });
      } catch (e) {
        if (options.signal?.aborted) throw e;
        throw new NetworkUnreachableError(current, e);
      }
    }
    sha256 ??= sha256FromEtag(res.headers.get("x-linked-etag"));
    size ??= intHeader(res.headers, "x-linked-size");
    commit ??= res.headers.get("x-repo-commit");
    etag ??= unquoteEtag(res.headers.get("x-linked-etag") ?? res.headers.get("etag"));
    const location = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel().catch(() => {});
      if (hop >= (options.maxRedirects ?? 10)) {
        throw new DownloadError("http_error", `${file}: too many redirects from ${url}`, { url, status: res.status });
      }
      current = new URL(location, current).href;
      continue;
    }
    if (!res.ok) return await errorFor(res, current, file, options.token);
    sha256 ??= sha256FromEtag(res.headers.get("etag"));
    const length = intHeader(res.headers, "content-length");
    const encoded = (res.headers.get("content-encoding") ?? "identity") !== "identity";
    size ??= encoded ? null : length;
    return { response: res, url: current, sha256, size, commit, etag };
  }
}

/**
 * The response body as chunks, reporting progress and checking the length: a body that ends early (connection cut
 * mid-transfer) or fails while streaming raises a `DownloadError` with code `incomplete`; a body longer than
 * announced raises one too.
 *
 * @param response a response from {@link httpGet}
 * @param info file name for messages and progress, URL, expected total size (or `null`)
 */
export async function* readBody(
  response: Response,
  info: { file: string; url: string; total: number | null; onProgress?: ProgressCallback },
): AsyncGenerator<Uint8Array> {
  const { file, url, total, onProgress } = info;
  let loaded = 0;
  onProgress?.({ file, loaded, total });
  if (!response.body) {
    if (total) throw new DownloadError("incomplete", `${file}: empty response body (expected ${total} bytes)`, { url });
    return;
  }
  const reader = response.body.getReader();
  let finished = false;
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        throw new DownloadError(
          "incomplete",
          `${file}: connection lost after ${loaded}${total !== null ? ` of ${total}` : ""} bytes (${describeCause(e)})`,
          { url, cause: e },
        );
      }
      if (chunk.done) {
        finished = true;
        break;
      }
      loaded += chunk.value.length;
      if (total !== null && loaded > total) {
        throw new DownloadError("incomplete", `${file}: received more than the announced ${total} bytes`, { url });
      }
      onProgress?.({ file, loaded, total });
      yield chunk.value;
    }
  } finally {
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  if (total !== null && loaded !== total) {
    throw new DownloadError("incomplete", `${file}: transfer cut off after ${loaded} of ${total} bytes`, { url });
  }
}
