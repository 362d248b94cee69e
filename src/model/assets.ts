/**
 * Getting model files: a local path is used in place; an `hf://` or `http(s)://` file comes from the cache, or is
 * downloaded into it (with progress, size and sha256 checks). A whole model (config + weights + tokenizer) resolves
 * from a built-in language name or from a directory or URL holding `config.json`.
 *
 * Like the reference, the gated weights (`weights_path`) are tried first; when they cannot be had, the ungated
 * weights (`weights_path_without_voice_cloning`) are used, with a notice that voice cloning is unavailable.
 * Offline (no network, or `HF_HUB_OFFLINE=1`), cached files are used, and when some are missing a single
 * {@link OfflineError} names every one of them and how to provide them.
 *
 * @module
 */
import { ConfigError, ModelFileError, OfflineError, PocketTtsError } from "../errors.ts";
import { builtinConfig, DEFAULT_LANGUAGE, GATED_REPO } from "./builtin_configs.ts";
import { type AssetCache, type CachedFile, cacheKey, MemoryCache, openCache } from "./cache.ts";
import { parseConfigText, type PocketTtsConfig } from "./config.ts";
import { httpGet, NetworkUnreachableError, type ProgressCallback, readBody } from "./download.ts";
import { envFlag, type EnvReader, hasFileSystem, runtimeEnv } from "./env.ts";
import {
  assetFolder,
  type AssetRef,
  formatAssetRef,
  hfEndpoint,
  hfResolveUrl,
  isPinnedRevision,
  parseAssetRef,
} from "./hf_url.ts";

/** Options shared by {@link fetchAsset} and {@link resolveModel}. */
export interface AssetOptions {
  /** Cache: an {@link AssetCache}, a directory, or `null` for none. Default: `$POCKET_TTS_CACHE` or the platform's. */
  cache?: AssetCache | string | null;
  /** Hugging Face endpoint. Default: `$HF_ENDPOINT` or `https://huggingface.co`. */
  endpoint?: string;
  /** Hugging Face token. Default: `$HF_TOKEN`, else the token file `hf auth login` writes; `null` for none. */
  token?: string | null;
  /** Never use the network. Default: `$HF_HUB_OFFLINE` (or `$POCKET_TTS_OFFLINE`) set to 1/true. */
  offline?: boolean;
  /** Download progress, `{file, loaded, total}`. */
  onProgress?: ProgressCallback;
  /** Messages for the user that are not errors (e.g. the gated-weights fallback). Default: none. */
  onNotice?: (message: string) => void;
  /** Re-hash cache hits and re-download those that no longer match their recorded sha256. */
  verify?: boolean;
  /** The fetch implementation. */
  fetch?: typeof fetch;
  /** Cancels downloads. */
  signal?: AbortSignal;
  /** Environment lookup (default: the runtime's). */
  env?: EnvReader;
}

/** A model file ready to be read. */
export interface ResolvedAsset {
  /** Where it comes from. */
  readonly ref: AssetRef;
  /** `ref` written out (`hf://…@rev`, URL or path). */
  readonly source: string;
  /** A local file holding it (local files and file-system cache entries), or `null`. */
  readonly path: string | null;
  /** The URL it was or would be downloaded from, or `null` for local files. */
  readonly url: string | null;
  /** Size in bytes. */
  readonly size: number;
  /** sha256, when known (always for cached and downloaded files). */
  readonly sha256: string | null;
  /** Revision asked for (Hugging Face files), or `null`. */
  readonly revision: string | null;
  /** `"local"` (used in place), `"cache"` (cache hit, no download) or `"download"` (fetched now). */
  readonly origin: "local" | "cache" | "download";
  /** Whole content. */
  read(): Promise<Uint8Array>;
}

interface Ctx {
  cache: AssetCache | null;
  endpoint: string;
  token: string | null;
  offline: boolean;
  unreachable: unknown;
  opts: AssetOptions;
}

async function readTokenFile(env: EnvReader): Promise<string | null> {
  if (!hasFileSystem()) return null;
  const home = env("HOME") ?? env("USERPROFILE");
  const hfHome = env("HF_HOME") ??
    (env("XDG_CACHE_HOME") ? `${env("XDG_CACHE_HOME")}/huggingface` : home ? `${home}/.cache/huggingface` : null);
  const file = env("HF_TOKEN_PATH") ?? (hfHome ? `${hfHome}/token` : null);
  if (!file) return null;
  try {
    const { readFile } = await import("node:fs/promises");
    return (await readFile(file, "utf8")).trim() || null;
  } catch {
    return null;
  }
}

async function context(opts: AssetOptions): Promise<Ctx> {
  const env = opts.env ?? runtimeEnv;
  const token = opts.token !== undefined
    ? opts.token
    : (env("HF_TOKEN")?.trim() || env("HUGGING_FACE_HUB_TOKEN")?.trim() || await readTokenFile(env));
  return {
    cache: openCache(opts.cache, env, opts.onNotice),
    endpoint: (opts.endpoint ?? hfEndpoint(env)).replace(/\/+$/, ""),
    token: token || null,
    offline: opts.offline ?? (envFlag(env, "HF_HUB_OFFLINE") || envFlag(env, "POCKET_TTS_OFFLINE")),
    unreachable: null,
    opts,
  };
}

function cachedAsset(ref: AssetRef, url: string, entry: CachedFile, origin: "cache" | "download"): ResolvedAsset {
  return {
    ref,
    source: formatAssetRef(ref),
    path: entry.path,
    url,
    size: entry.size,
    sha256: entry.meta.sha256,
    revision: ref.kind === "hf" ? ref.revision : null,
    origin,
    read: () => entry.read(),
  };
}

function provideHint(cache: AssetCache | null): string {
  const where = cache ? ` (cache: ${cache.location})` : "";
  return `Provide them with --model DIR (a folder holding config.json, the weights and the tokenizer), or set ` +
    `POCKET_TTS_CACHE to a cache that holds them${where}, or connect once to download them.`;
}

function offlineError(missing: string[], ctx: Ctx): OfflineError {
  const n = missing.length;
  const why = ctx.unreachable
    ? `${n > 1 ? "they" : "it"} cannot be downloaded (${
      ctx.unreachable instanceof Error ? ctx.unreachable.message : ctx.unreachable
    })`
    : "offline mode is on (--offline or HF_HUB_OFFLINE)";
  const list = missing.join(", ");
  return new OfflineError(
    `${n} model file${n > 1 ? "s are" : " is"} not cached and ${why}: ${list}. ` +
      provideHint(ctx.cache),
    missing,
    ctx.unreachable ?? undefined,
  );
}

function remoteUrl(ref: AssetRef, ctx: Ctx): string {
  if (ref.kind === "hf") return hfResolveUrl(ref, ctx.endpoint);
  if (ref.kind === "url") return ref.url;
  throw new Error("local files have no URL");
}

async function fetchWith(ref: AssetRef, ctx: Ctx, expect: { sha256?: string; size?: number }): Promise<ResolvedAsset> {
  const source = formatAssetRef(ref);
  if (ref.kind === "path") {
    const fs = await import("node:fs/promises");
    let size: number;
    try {
      const st = await fs.stat(ref.path);
      if (!st.isFile()) throw new ModelFileError(`${ref.path}: not a file`, ref.path);
      size = st.size;
    } catch (e) {
      if (e instanceof ModelFileError) throw e;
      throw new ModelFileError(`${ref.path}: file not found`, ref.path, e);
    }
    return {
      ref,
      source,
      path: ref.path,
      url: null,
      size,
      sha256: null,
      revision: null,
      origin: "local",
      read: async () => new Uint8Array(await fs.readFile(ref.path)),
    };
  }
  const url = remoteUrl(ref, ctx);
  const key = await cacheKey(ref);
  const cache = ctx.cache;
  const opts = ctx.opts;
  const token = ref.kind === "hf" ? ctx.token : null;
  let entry = cache ? await cache.get(key) : null;
  if (entry && opts.verify && !(await cache!.verify(entry))) {
    opts.onNotice?.(`${source}: the cached copy no longer matches its sha256; downloading it again`);
    await cache!.delete(key);
    entry = null;
  }
  if (entry && expect.sha256 && entry.meta.sha256 !== expect.sha256.toLowerCase()) entry = null;
  if (entry) {
    const mutable = ref.kind === "hf" && !isPinnedRevision(ref.revision);
    if (!mutable || ctx.offline) return cachedAsset(ref, url, entry, "cache");
    // A branch or tag may have moved: compare the server's entity tag with the cached one.
    try {
      const head = await httpGet(url, {
        method: "HEAD",
        token,
        tokenOrigin: new URL(ctx.endpoint).origin,
        fetch: opts.fetch,
        signal: opts.signal,
        file: source,
      });
      await head.response.body?.cancel().catch(() => {});
      const same = (head.sha256 && head.sha256 === entry.meta.sha256) ||
        (head.etag !== null && head.etag === entry.meta.etag);
      if (same) return cachedAsset(ref, url, entry, "cache");
    } catch (e) {
      if (e instanceof NetworkUnreachableError) {
        ctx.unreachable = e;
        ctx.offline = true;
        return cachedAsset(ref, url, entry, "cache");
      }
      throw e;
    }
  }
  if (ctx.offline) throw offlineError([source], ctx);
  let res;
  try {
    res = await httpGet(url, {
      token,
      tokenOrigin: ref.kind === "hf" ? new URL(ctx.endpoint).origin : undefined,
      fetch: opts.fetch,
      signal: opts.signal,
      file: source,
    });
  } catch (e) {
    if (e instanceof NetworkUnreachableError) {
      ctx.unreachable = e;
      ctx.offline = true;
      throw offlineError([source], ctx);
    }
    throw e;
  }
  const total = expect.size ?? res.size;
  const chunks = readBody(res.response, { file: source, url: res.url, total, onProgress: opts.onProgress });
  const want = { size: total, sha256: expect.sha256 ?? res.sha256 };
  if (!cache) {
    // Nowhere to cache: keep the checked bytes in memory.
    const stored = await new MemoryCache().put(key, chunks, {
      source,
      url: res.url,
      etag: res.etag,
      commit: res.commit,
    }, want);
    return cachedAsset(ref, res.url, stored, "download");
  }
  const stored = await cache.put(key, chunks, { source, url: res.url, etag: res.etag, commit: res.commit }, want);
  return cachedAsset(ref, res.url, stored, "download");
}

/** Options of {@link fetchAsset}: the shared ones plus checks the caller knows. */
export interface FetchAssetOptions extends AssetOptions {
  /** The file's sha256 (hex), checked before it is cached (the server's announced hash is checked anyway). */
  expectedSha256?: string;
  /** The file's exact size in bytes. */
  expectedSize?: number;
}

/**
 * Get one model file: a local path is checked and used in place; a remote one (`hf://owner/repo/path@rev` or
 * `http(s)://…`) comes from the cache or is downloaded into it.
 *
 * A cached file with a pinned revision (a 40-hex commit) or a plain URL is used without any network access; for a
 * branch or tag (`@main`), the server's entity tag is compared first when online.
 *
 * @param spec the reference, or a parsed {@link AssetRef}
 * @param options cache, endpoint, token, offline mode, progress; `expectedSha256`/`expectedSize` add checks
 * @throws {ModelFileError} for a missing local file
 * @throws {DownloadError} for HTTP errors, a cut-off transfer or a checksum mismatch (nothing is cached then)
 * @throws {OfflineError} when the file is not cached and cannot be downloaded
 */
export async function fetchAsset(
  spec: string | AssetRef,
  options: FetchAssetOptions = {},
): Promise<ResolvedAsset> {
  const ref = typeof spec === "string" ? parseAssetRef(spec) : spec;
  const ctx = await context(options);
  return await fetchWith(ref, ctx, { sha256: options.expectedSha256, size: options.expectedSize });
}

/** Which model to resolve: a built-in language, or a model directory/URL, or a config file. */
export interface ModelSource {
  /** A built-in language (default `"english"` when nothing else is given). */
  language?: string;
  /** A directory, URL or `hf://` folder holding `config.json` (+ weights, tokenizer), or a config file itself. */
  model?: string;
}

/** A model whose files are all available locally (or in the browser cache). */
export interface ResolvedModel {
  /** The language name or the model source as given. */
  readonly name: string;
  /** Where the config came from (`built-in language "english"`, or the config file). */
  readonly configSource: string;
  /** The config file, for models given by directory or URL. */
  readonly configFile: ResolvedAsset | null;
  /** The validated config. */
  readonly config: PocketTtsConfig;
  /** The weights actually used. */
  readonly weights: ResolvedAsset;
  /** The tokenizer. */
  readonly tokenizer: ResolvedAsset;
  /** False when the ungated weights (no voice-cloning encoder) had to be used. */
  readonly hasVoiceCloning: boolean;
  /** Notices given during resolution (also sent to `onNotice`). */
  readonly notices: readonly string[];
}

const CONFIG_FILE = /\.(json|ya?ml)$/i;

async function isLocalDirectory(path: string): Promise<boolean> {
  const fs = await import("node:fs/promises");
  return await fs.stat(path).then((s) => s.isDirectory(), () => false);
}

/**
 * Resolve a model: its config (built-in or from `config.json` in a directory or URL) and its weights and tokenizer,
 * downloading what is missing. Paths inside a config file are relative to its folder.
 *
 * @throws {ConfigError} for an unknown language or an invalid config
 * @throws {ModelFileError} for missing local files
 * @throws {DownloadError} for HTTP errors (after the gated-weights fallback, when there is one)
 * @throws {OfflineError} naming every missing file when files cannot be downloaded
 */
export async function resolveModel(source: ModelSource = {}, options: AssetOptions = {}): Promise<ResolvedModel> {
  if (source.language !== undefined && source.model !== undefined) {
    throw new ConfigError("give either a language or a model directory/URL, not both");
  }
  const ctx = await context(options);
  const notices: string[] = [];
  const notice = (m: string) => {
    notices.push(m);
    options.onNotice?.(m);
  };
  const missing: string[] = [];

  let config: PocketTtsConfig;
  let configFile: ResolvedAsset | null = null;
  let base: AssetRef | undefined;
  let name: string;
  let configSource: string;
  if (source.model !== undefined) {
    name = source.model;
    let ref = parseAssetRef(source.model);
    const isFolder = !CONFIG_FILE.test(source.model) || (ref.kind === "path" && await isLocalDirectory(ref.path));
    if (isFolder) ref = parseAssetRef("config.json", ref);
    try {
      configFile = await fetchWith(ref, ctx, {});
    } catch (e) {
      if (e instanceof OfflineError) throw offlineError([formatAssetRef(ref)], ctx);
      throw e;
    }
    configSource = configFile.source;
    const text = new TextDecoder().decode(await configFile.read());
    config = parseConfigText(text, { source: configSource });
    base = assetFolder(ref);
  } else {
    name = source.language ?? DEFAULT_LANGUAGE;
    config = builtinConfig(name);
    configSource = `built-in language "${name}"`;
  }
  if (config.flow_lm.weights_path !== null || config.mimi.weights_path !== null) {
    throw new ConfigError(
      `${configSource}: separate flow_lm/mimi weights files are not supported; use one weights_path file`,
      config.flow_lm.weights_path !== null ? "flow_lm.weights_path" : "mimi.weights_path",
    );
  }

  // Weights: gated first, then the ungated fallback (the reference falls back on any failure).
  const candidates = [config.weights_path, config.weights_path_without_voice_cloning].filter((s): s is string =>
    s !== null
  );
  if (candidates.length === 0) {
    throw new ConfigError(`${configSource}: no weights_path or weights_path_without_voice_cloning`, "weights_path");
  }
  let weights: ResolvedAsset | null = null;
  let hasVoiceCloning = config.weights_path !== null;
  const offlineWeights: string[] = [];
  let firstFailure: { ref: AssetRef; error: PocketTtsError } | null = null;
  for (let i = 0; i < candidates.length && !weights; i++) {
    const ref = parseAssetRef(candidates[i], base);
    try {
      weights = await fetchWith(ref, ctx, {});
    } catch (e) {
      if (!(e instanceof PocketTtsError)) throw e;
      if (e instanceof OfflineError) offlineWeights.push(formatAssetRef(ref));
      if (i + 1 < candidates.length) {
        firstFailure ??= { ref, error: e };
        hasVoiceCloning = false;
        continue;
      }
      if (e instanceof OfflineError) break;
      throw e;
    }
  }
  if (weights && firstFailure) {
    const { ref, error } = firstFailure;
    const gatedHint = ref.kind === "hf" && ref.repo === GATED_REPO
      ? ` To enable it, accept the terms at https://huggingface.co/${GATED_REPO} and set HF_TOKEN.`
      : "";
    const reason = error instanceof OfflineError ? "not cached and cannot be downloaded" : error.message;
    notice(
      `Could not get the weights with voice cloning (${reason}). Using ${weights.source} instead: ` +
        `voice cloning from audio is unavailable; predefined voices and exported voice states still work.` +
        gatedHint,
    );
  }
  if (!weights) missing.push(offlineWeights.join(" or "));

  let tokenizer: ResolvedAsset | null = null;
  const tokRef = parseAssetRef(config.flow_lm.lookup_table.tokenizer_path, base);
  try {
    tokenizer = await fetchWith(tokRef, ctx, {});
  } catch (e) {
    if (!(e instanceof OfflineError)) throw e;
    missing.push(formatAssetRef(tokRef));
  }
  if (missing.length > 0 || !weights || !tokenizer) throw offlineError(missing, ctx);
  return { name, configSource, configFile, config, weights, tokenizer, hasVoiceCloning, notices };
}
