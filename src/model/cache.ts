/**
 * The download cache for model files.
 *
 * - On a file system: `$POCKET_TTS_CACHE`, else `$XDG_CACHE_HOME/pocket-tts`, else `~/.cache/pocket-tts`
 *   (`%LOCALAPPDATA%\pocket-tts` on Windows). Each file is written to a temporary name, checked (size and sha256
 *   when known) and renamed into place, so an interrupted or corrupt download never leaves an entry behind. A small
 *   JSON record next to the tree (`.meta/`) keeps the source, size, sha256 and revision of every entry.
 * - In browsers: the Cache API (`caches.open("pocket-tts")`), same checks before an entry is stored. A storage quota
 *   too small for a file is a {@link DownloadError} with code `quota`.
 * - In memory, when there is nowhere to persist: no cache directory (no `HOME`, no environment access), or no
 *   permission to write it (serverless functions run with `--allow-read` only). Nothing touches the file system then.
 *
 * Entries are keyed by source: `hf/{owner}/{repo}/{revision}/{path}` for Hugging Face files (a pinned revision
 * never changes, so a hit needs no network), `url/{sha256(url)}/{name}` for other URLs.
 *
 * @module
 */
import { DownloadError } from "../errors.ts";
import { type EnvReader, hasFileSystem, runtimeEnv } from "./env.ts";
import { assetBaseName, type AssetRef } from "./hf_url.ts";

/** What the cache records about an entry. */
export interface CacheEntryMeta {
  /** The source reference (`hf://…` or URL). */
  source: string;
  /** The URL the bytes came from. */
  url: string;
  /** Size in bytes. */
  size: number;
  /** sha256 of the content (computed while downloading). */
  sha256: string;
  /** Entity tag the server gave, if any (used to revalidate unpinned revisions). */
  etag: string | null;
  /** Commit a Hugging Face revision resolved to, if reported. */
  commit: string | null;
  /** When it was downloaded (ISO 8601). */
  downloadedAt: string;
}

/** A cached file. */
export interface CachedFile {
  /** Cache key. */
  readonly key: string;
  /** Local path (file-system caches), or `null` (browser cache). */
  readonly path: string | null;
  /** Size in bytes. */
  readonly size: number;
  /** Recorded facts. */
  readonly meta: CacheEntryMeta;
  /** The whole content. */
  read(): Promise<Uint8Array>;
}

/** What a download must match before it is stored. */
export interface CacheExpectations {
  /** Exact size in bytes, when known. */
  size?: number | null;
  /** sha256 (hex), when known. */
  sha256?: string | null;
}

/** What a caller records with a download; the cache adds its size, sha256 and time. */
export type CacheEntryInput = Omit<CacheEntryMeta, "size" | "sha256" | "downloadedAt">;

/** A store of downloaded model files. */
export interface AssetCache {
  /** `"fs"` (a directory), `"browser"` (Cache API) or `"memory"` (nothing persisted). */
  readonly kind: "fs" | "browser" | "memory";
  /** The directory, or the Cache API cache name. */
  readonly location: string;
  /** The entry for `key`, or `null` when absent or incomplete. */
  get(key: string): Promise<CachedFile | null>;
  /**
   * Store a download. The content is streamed to a temporary place, checked against `expect` (size, sha256), and
   * only then becomes the entry. On any failure nothing is left behind and the error is rethrown.
   *
   * @throws {DownloadError} code `checksum` when the size or sha256 differs from `expect`
   */
  put(
    key: string,
    chunks: AsyncIterable<Uint8Array>,
    meta: CacheEntryInput,
    expect?: CacheExpectations,
  ): Promise<CachedFile>;
  /** Remove an entry (no error when absent). */
  delete(key: string): Promise<void>;
  /** Recompute an entry's sha256 and compare it with the record. */
  verify(entry: CachedFile): Promise<boolean>;
}

/**
 * The platform cache directory: `$POCKET_TTS_CACHE`, `$XDG_CACHE_HOME/pocket-tts`, `%LOCALAPPDATA%\pocket-tts`
 * (Windows) or `~/.cache/pocket-tts`; `null` when none can be determined (no environment).
 */
export function defaultCacheDir(env: EnvReader = runtimeEnv): string | null {
  const own = env("POCKET_TTS_CACHE")?.trim();
  if (own) return own;
  const xdg = env("XDG_CACHE_HOME")?.trim();
  if (xdg) return `${xdg.replace(/[\\/]+$/, "")}/pocket-tts`;
  const local = env("LOCALAPPDATA")?.trim();
  if (local && !env("HOME")) return `${local.replace(/[\\/]+$/, "")}\\pocket-tts`;
  const home = env("HOME")?.trim() || env("USERPROFILE")?.trim();
  if (home) return `${home.replace(/[\\/]+$/, "")}/.cache/pocket-tts`;
  return null;
}

function hex(bytes: ArrayBuffer | Uint8Array): string {
  return Array.from(
    new Uint8Array(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

/** sha256 of bytes held in memory (WebCrypto), as hex. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}

/** The cache key of a remote asset (see the module doc). Local paths have none. */
export async function cacheKey(ref: AssetRef): Promise<string> {
  switch (ref.kind) {
    case "hf":
      return `hf/${ref.repo}/${encodeURIComponent(ref.revision)}/${ref.path}`;
    case "url": {
      const h = (await sha256Hex(new TextEncoder().encode(ref.url))).slice(0, 32);
      const name = assetBaseName(ref).replace(/[^A-Za-z0-9._-]/g, "_") || "file";
      return `url/${h}/${name}`;
    }
    case "path":
      throw new Error("local files are not cached");
  }
}

function checksumError(meta: { source: string; url: string }, what: string): DownloadError {
  return new DownloadError("checksum", `${meta.source}: ${what}; the download was discarded`, { url: meta.url });
}

function checkExpectations(
  meta: { source: string; url: string },
  size: number,
  sha256: string,
  expect: CacheExpectations,
): void {
  if (expect.size !== undefined && expect.size !== null && size !== expect.size) {
    throw checksumError(meta, `size mismatch: expected ${expect.size} bytes, got ${size}`);
  }
  if (expect.sha256 && sha256 !== expect.sha256.toLowerCase()) {
    throw checksumError(meta, `sha256 mismatch: expected ${expect.sha256}, got ${sha256}`);
  }
}

/** A cache in a directory of the file system. */
export class FsCache implements AssetCache {
  /** Always `"fs"`. */
  readonly kind = "fs" as const;
  /** The cache directory. */
  readonly location: string;

  /** @param dir the cache directory (created on first write) */
  constructor(dir: string) {
    this.location = dir;
  }

  async #paths(key: string): Promise<{ data: string; meta: string }> {
    const { join } = await import("node:path");
    const parts = key.split("/");
    if (parts.some((p) => p === ".." || p === "." || p === "")) throw new Error(`bad cache key ${key}`);
    return { data: join(this.location, ...parts), meta: join(this.location, ".meta", ...parts) + ".json" };
  }

  /** The entry for `key`, or `null` when absent, incomplete or disagreeing with its record. */
  async get(key: string): Promise<CachedFile | null> {
    const fs = await import("node:fs/promises");
    const p = await this.#paths(key);
    let size: number;
    let meta: CacheEntryMeta;
    try {
      size = (await fs.stat(p.data)).size;
      meta = JSON.parse(await fs.readFile(p.meta, "utf8"));
    } catch {
      return null;
    }
    if (meta.size !== size || typeof meta.sha256 !== "string") return null;
    return { key, path: p.data, size, meta, read: async () => new Uint8Array(await fs.readFile(p.data)) };
  }

  /** Stream a download to a temporary file, check it, then rename it into place (see {@link AssetCache.put}). */
  async put(
    key: string,
    chunks: AsyncIterable<Uint8Array>,
    meta: CacheEntryInput,
    expect: CacheExpectations = {},
  ): Promise<CachedFile> {
    const fs = await import("node:fs/promises");
    const { dirname } = await import("node:path");
    const { createHash } = await import("node:crypto");
    const p = await this.#paths(key);
    await fs.mkdir(dirname(p.data), { recursive: true });
    await fs.mkdir(dirname(p.meta), { recursive: true });
    const suffix = `.${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}.tmp`;
    const tmpData = p.data + suffix;
    const tmpMeta = p.meta + suffix;
    const fh = await fs.open(tmpData, "w");
    let closed = false;
    try {
      const hash = createHash("sha256");
      let size = 0;
      for await (const chunk of chunks) {
        for (let done = 0; done < chunk.length;) {
          done += (await fh.write(chunk, done, chunk.length - done)).bytesWritten;
        }
        hash.update(chunk);
        size += chunk.length;
      }
      await fh.sync();
      await fh.close();
      closed = true;
      const sha256 = hash.digest("hex");
      checkExpectations(meta, size, sha256, expect);
      const full: CacheEntryMeta = { ...meta, size, sha256, downloadedAt: new Date().toISOString() };
      await fs.writeFile(tmpMeta, JSON.stringify(full, null, 2));
      await fs.rename(tmpMeta, p.meta);
      await fs.rename(tmpData, p.data);
      return { key, path: p.data, size, meta: full, read: async () => new Uint8Array(await fs.readFile(p.data)) };
    } catch (e) {
      if (!closed) await fh.close().catch(() => {});
      await fs.rm(tmpData, { force: true });
      await fs.rm(tmpMeta, { force: true });
      throw e;
    }
  }

  /** Remove an entry and its record. */
  async delete(key: string): Promise<void> {
    const fs = await import("node:fs/promises");
    const p = await this.#paths(key);
    await fs.rm(p.data, { force: true });
    await fs.rm(p.meta, { force: true });
  }

  /** Recompute the sha256 of an entry's file and compare it with the record. */
  async verify(entry: CachedFile): Promise<boolean> {
    const { createReadStream } = await import("node:fs");
    const { createHash } = await import("node:crypto");
    if (!entry.path) return false;
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(entry.path, { highWaterMark: 1 << 22 })) {
      hash.update(chunk as Uint8Array);
    }
    return hash.digest("hex") === entry.meta.sha256;
  }
}

const META_HEADER = "x-pocket-tts-meta";

/** Collects a download in memory, checks size and sha256 against `expect`, and completes its metadata. */
async function collectChecked(
  chunks: AsyncIterable<Uint8Array>,
  meta: CacheEntryInput,
  expect: CacheExpectations,
): Promise<{ bytes: Uint8Array; full: CacheEntryMeta }> {
  const bytes = await collect(chunks, expect.size);
  const sha256 = await sha256Hex(bytes);
  checkExpectations(meta, bytes.length, sha256, expect);
  return { bytes, full: { ...meta, size: bytes.length, sha256, downloadedAt: new Date().toISOString() } };
}

/** A cache in the browser's Cache API. Content is checked in memory before it is stored. */
export class BrowserCache implements AssetCache {
  /** Always `"browser"`. */
  readonly kind = "browser" as const;
  /** The Cache API cache name. */
  readonly location: string;

  /** @param name the Cache API cache name (default `"pocket-tts"`) */
  constructor(name = "pocket-tts") {
    this.location = name;
  }

  #request(key: string): Request {
    return new Request(`https://pocket-tts.cache.invalid/${key.split("/").map(encodeURIComponent).join("/")}`);
  }

  #entry(key: string, res: Response, meta: CacheEntryMeta): CachedFile {
    return {
      key,
      path: null,
      size: meta.size,
      meta,
      read: async () => new Uint8Array(await res.clone().arrayBuffer()),
    };
  }

  /** The entry for `key`, or `null`. */
  async get(key: string): Promise<CachedFile | null> {
    const cache = await caches.open(this.location);
    const res = await cache.match(this.#request(key));
    if (!res) return null;
    let meta: CacheEntryMeta;
    try {
      meta = JSON.parse(res.headers.get(META_HEADER) ?? "");
    } catch {
      return null;
    }
    return this.#entry(key, res, meta);
  }

  /** Collect a download in memory, check it, then store it (see {@link AssetCache.put}). */
  async put(
    key: string,
    chunks: AsyncIterable<Uint8Array>,
    meta: CacheEntryInput,
    expect: CacheExpectations = {},
  ): Promise<CachedFile> {
    const { bytes, full } = await collectChecked(chunks, meta, expect);
    const res = new Response(bytes as Uint8Array<ArrayBuffer>, {
      headers: { "content-type": "application/octet-stream", [META_HEADER]: JSON.stringify(full) },
    });
    try {
      const cache = await caches.open(this.location);
      await cache.put(this.#request(key), res.clone());
    } catch (e) {
      if ((e as { name?: string })?.name !== "QuotaExceededError") throw e;
      throw new DownloadError(
        "quota",
        `${meta.source}: the browser's storage quota does not hold this ${(full.size / 1e6).toFixed(1)} MB file ` +
          `(Cache API "${this.location}"); free site storage or grant persistent storage, then reload`,
        { url: meta.url, cause: e },
      );
    }
    return this.#entry(key, res, full);
  }

  /** Remove an entry. */
  async delete(key: string): Promise<void> {
    const cache = await caches.open(this.location);
    await cache.delete(this.#request(key));
  }

  /** Recompute the sha256 of an entry and compare it with the record. */
  async verify(entry: CachedFile): Promise<boolean> {
    return (await sha256Hex(await entry.read())) === entry.meta.sha256;
  }
}

async function collect(chunks: AsyncIterable<Uint8Array>, sizeHint: number | null | undefined): Promise<Uint8Array> {
  let buf = new Uint8Array(sizeHint ?? 1 << 20);
  let size = 0;
  for await (const chunk of chunks) {
    if (size + chunk.length > buf.length) {
      const grown = new Uint8Array(Math.max(buf.length * 2, size + chunk.length));
      grown.set(buf.subarray(0, size));
      buf = grown;
    }
    buf.set(chunk, size);
    size += chunk.length;
  }
  return size === buf.length ? buf : buf.slice(0, size);
}

/** A cache that keeps entries in memory only (used when there is nowhere to persist downloads). */
export class MemoryCache implements AssetCache {
  /** Always `"memory"`. */
  readonly kind = "memory" as const;
  /** Always `"memory"`. */
  readonly location = "memory";
  #entries = new Map<string, CachedFile>();
  #maxEntryBytes: number;

  /**
   * @param maxEntryBytes larger downloads are handed out but not kept (so a 219 MB checkpoint is not held twice once
   *   it is loaded into wasm memory; voices, configs and tokenizers are kept)
   */
  constructor(maxEntryBytes = Infinity) {
    this.#maxEntryBytes = maxEntryBytes;
  }

  /** The entry for `key`, or `null`. */
  get(key: string): Promise<CachedFile | null> {
    return Promise.resolve(this.#entries.get(key) ?? null);
  }

  /** Collect a download, check it, keep it (see {@link AssetCache.put}). */
  async put(
    key: string,
    chunks: AsyncIterable<Uint8Array>,
    meta: CacheEntryInput,
    expect: CacheExpectations = {},
  ): Promise<CachedFile> {
    const { bytes, full } = await collectChecked(chunks, meta, expect);
    const entry: CachedFile = { key, path: null, size: bytes.length, meta: full, read: () => Promise.resolve(bytes) };
    if (bytes.length <= this.#maxEntryBytes) this.#entries.set(key, entry);
    return entry;
  }

  /** Remove an entry. */
  delete(key: string): Promise<void> {
    this.#entries.delete(key);
    return Promise.resolve();
  }

  /** Recompute the sha256 of an entry and compare it with the record. */
  async verify(entry: CachedFile): Promise<boolean> {
    return (await sha256Hex(await entry.read())) === entry.meta.sha256;
  }
}

/** Largest file the memory fallback keeps (voices and tokenizers are far smaller; checkpoints are not kept). */
const MEMORY_FALLBACK_MAX_ENTRY = 64 << 20;

/** True for the errors a file system gives when writing is not allowed (Node codes, Deno permission errors). */
function isPermissionError(e: unknown): boolean {
  const err = e as { code?: string; name?: string };
  return ["EACCES", "EPERM", "EROFS"].includes(err?.code ?? "") ||
    ["NotCapable", "PermissionDenied"].includes(err?.name ?? "");
}

/**
 * A directory cache that falls back to memory when the directory cannot be written (read-only file system, no
 * write permission): downloads still work, they are just not kept past the process. Entries already on disk are
 * still read.
 */
export class FsOrMemoryCache implements AssetCache {
  /** `"fs"` until writing failed, then `"memory"`. */
  get kind(): "fs" | "memory" {
    return this.#fsWorks ? "fs" : "memory";
  }
  /** The directory, or `"memory"` once it fell back. */
  get location(): string {
    return this.#fsWorks ? this.#fs.location : "memory";
  }
  #fs: AssetCache;
  #memory = new MemoryCache(MEMORY_FALLBACK_MAX_ENTRY);
  #fsWorks = true;
  #onFallback: (message: string) => void;

  /**
   * @param dir the cache directory (or a directory cache)
   * @param onFallback told once, when writing fails and entries start being kept in memory
   */
  constructor(dir: string | AssetCache, onFallback: (message: string) => void = () => {}) {
    this.#fs = typeof dir === "string" ? new FsCache(dir) : dir;
    this.#onFallback = onFallback;
  }

  /** The entry from memory, else from the directory. */
  async get(key: string): Promise<CachedFile | null> {
    return await this.#memory.get(key) ?? await this.#fs.get(key).catch(() => null);
  }

  /** Stores in the directory; if it cannot be written, in memory (see {@link AssetCache.put}). */
  async put(
    key: string,
    chunks: AsyncIterable<Uint8Array>,
    meta: CacheEntryInput,
    expect: CacheExpectations = {},
  ): Promise<CachedFile> {
    if (this.#fsWorks) {
      let started = false;
      const tracked = (async function* () {
        started = true;
        yield* chunks;
      })();
      try {
        return await this.#fs.put(key, tracked, meta, expect);
      } catch (e) {
        if (started || !isPermissionError(e)) throw e;
        this.#fsWorks = false;
        this.#onFallback(
          `cannot write the cache directory ${this.#fs.location} (${
            (e as Error).message
          }); keeping downloads in memory`,
        );
      }
    }
    return await this.#memory.put(key, chunks, meta, expect);
  }

  /** Remove an entry from both. */
  async delete(key: string): Promise<void> {
    await this.#memory.delete(key);
    if (this.#fsWorks) await this.#fs.delete(key).catch(() => {});
  }

  /** Recompute the sha256 of an entry and compare it with the record. */
  verify(entry: CachedFile): Promise<boolean> {
    return entry.path ? this.#fs.verify(entry) : this.#memory.verify(entry);
  }
}

/**
 * The cache to use: a given one; a directory path; or, by default, the platform directory when there is a file
 * system (in memory when it cannot be written or there is none: no `HOME`), else the browser Cache API when
 * available, else memory. `null` only when asked for none.
 *
 * @param option a cache, a directory, `null` for none, or `undefined` for the default
 * @param env environment lookup
 * @param onNotice told when a directory cannot be written and downloads are kept in memory instead
 * @example
 * ```ts
 * const cache = openCache();          // ~/.cache/pocket-tts, the browser's Cache API, or memory
 * console.log(cache?.kind);
 * ```
 */
export function openCache(
  option?: AssetCache | string | null,
  env: EnvReader = runtimeEnv,
  onNotice?: (message: string) => void,
): AssetCache | null {
  if (option === null) return null;
  if (typeof option === "object") return option;
  if (typeof option === "string") return new FsOrMemoryCache(option, onNotice);
  if (hasFileSystem()) {
    const dir = defaultCacheDir(env);
    return dir ? new FsOrMemoryCache(dir, onNotice) : new MemoryCache(MEMORY_FALLBACK_MAX_ENTRY);
  }
  return typeof caches !== "undefined" ? new BrowserCache() : new MemoryCache(MEMORY_FALLBACK_MAX_ENTRY);
}
