/**
 * Model asset references: `hf://owner/repo/path/in/repo@revision` (Hugging Face), `http(s)://…` URLs and local
 * paths, their resolution against a base (a config's folder), and Hugging Face's download URL layout
 * `{endpoint}/{owner}/{repo}/resolve/{revision}/{path}` with the endpoint taken from `HF_ENDPOINT`.
 *
 * @module
 */
import { ConfigError } from "../errors.ts";
import { type EnvReader, runtimeEnv } from "./env.ts";

/** The public Hugging Face endpoint. */
export const DEFAULT_HF_ENDPOINT = "https://huggingface.co";

/** A file in a Hugging Face model repository at a revision. */
export interface HfRef {
  /** `owner/name`. */
  readonly repo: string;
  /** Path inside the repository (no leading slash; may be `""` for the repository root as a folder). */
  readonly path: string;
  /** Branch, tag or commit; `"main"` when not given. */
  readonly revision: string;
}

/** Where a model file comes from. */
export type AssetRef =
  | ({ readonly kind: "hf" } & HfRef)
  | { readonly kind: "url"; readonly url: string }
  | { readonly kind: "path"; readonly path: string };

/** True for a full 40-hex-digit commit id: such a revision never changes, so a cached copy is final. */
export function isPinnedRevision(revision: string): boolean {
  return /^[0-9a-f]{40}$/i.test(revision);
}

function normalizeSegments(path: string, what: string): string {
  const out: string[] = [];
  for (const seg of path.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (out.length === 0) throw new ConfigError(`${what}: path goes above the repository root`);
      out.pop();
    } else out.push(seg);
  }
  return out.join("/");
}

/**
 * Parse `hf://owner/repo/path/in/repo@revision`. The revision is what follows the last `@` (default `"main"`).
 *
 * @throws {ConfigError} when the URL has no `owner/repo`
 */
export function parseHfUrl(url: string): HfRef {
  const m = /^hf:\/\/(.*)$/i.exec(url);
  if (!m) throw new ConfigError(`not an hf:// URL: ${url}`);
  let rest = m[1];
  let revision = "main";
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    revision = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (revision === "") throw new ConfigError(`${url}: empty revision after "@"`);
  }
  const parts = rest.split("/");
  if (parts.length < 2 || !parts[0] || !parts[1]) {
    throw new ConfigError(`${url}: expected hf://owner/repo/path[@revision]`);
  }
  return { repo: `${parts[0]}/${parts[1]}`, path: normalizeSegments(parts.slice(2).join("/"), url), revision };
}

/** The canonical `hf://` spelling of a reference. */
export function formatHfUrl(ref: HfRef): string {
  return `hf://${ref.repo}${ref.path ? `/${ref.path}` : ""}@${ref.revision}`;
}

/** The Hugging Face endpoint: `HF_ENDPOINT` when set (mirrors, air-gapped setups, tests), else the public one. */
export function hfEndpoint(env: EnvReader = runtimeEnv): string {
  const e = env("HF_ENDPOINT")?.trim();
  return (e ? e : DEFAULT_HF_ENDPOINT).replace(/\/+$/, "");
}

/** The download URL of a repository file: `{endpoint}/{owner}/{repo}/resolve/{revision}/{path}`. */
export function hfResolveUrl(ref: HfRef, endpoint: string = DEFAULT_HF_ENDPOINT): string {
  const path = ref.path.split("/").map(encodeURIComponent).join("/");
  return `${endpoint.replace(/\/+$/, "")}/${ref.repo}/resolve/${encodeURIComponent(ref.revision)}/${path}`;
}

function isAbsolutePath(p: string): boolean {
  return p.startsWith("/") || p.startsWith("\\") || /^[A-Za-z]:[\\/]/.test(p);
}

function joinLocal(dir: string, rel: string): string {
  if (isAbsolutePath(rel)) return rel;
  const sep = dir.includes("\\") && !dir.includes("/") ? "\\" : "/";
  const parts = (dir.replace(/[\\/]+$/, "") + "/" + rel).split(/[\\/]/);
  const out: string[] = [];
  for (const [i, seg] of parts.entries()) {
    if (seg === "." || (seg === "" && i > 0)) continue;
    if (seg === ".." && out.length > 0 && out[out.length - 1] !== ".." && out[out.length - 1] !== "") out.pop();
    else out.push(seg);
  }
  return out.join(sep) || ".";
}

/**
 * Parse an asset reference. `hf://` and `http(s)://` are remote; `file://` URLs and anything else are local paths.
 * A relative reference is resolved against `base`, which names a folder (e.g. the folder of a config file): a
 * relative path inside an `hf://` folder stays in that repository and revision.
 */
export function parseAssetRef(spec: string, base?: AssetRef): AssetRef {
  if (/^hf:\/\//i.test(spec)) return { kind: "hf", ...parseHfUrl(spec) };
  if (/^https?:\/\//i.test(spec)) return { kind: "url", url: new URL(spec).href };
  if (/^file:\/\//i.test(spec)) return { kind: "path", path: decodeURIComponent(new URL(spec).pathname) };
  if (!base) return { kind: "path", path: spec };
  switch (base.kind) {
    case "path":
      return { kind: "path", path: joinLocal(base.path, spec) };
    case "url": {
      const dir = base.url.endsWith("/") ? base.url : `${base.url}/`;
      return { kind: "url", url: new URL(spec, dir).href };
    }
    case "hf":
      return {
        kind: "hf",
        repo: base.repo,
        revision: base.revision,
        path: normalizeSegments(`${base.path}/${spec}`, `${formatAssetRef(base)} + ${spec}`),
      };
  }
}

/** The folder holding an asset (for resolving paths relative to a config file). */
export function assetFolder(ref: AssetRef): AssetRef {
  switch (ref.kind) {
    case "path":
      return { kind: "path", path: joinLocal(ref.path, "..") };
    case "url":
      return { kind: "url", url: new URL(".", ref.url).href };
    case "hf":
      return { ...ref, path: ref.path.split("/").slice(0, -1).join("/") };
  }
}

/** How a reference is written back for messages and reports. */
export function formatAssetRef(ref: AssetRef): string {
  switch (ref.kind) {
    case "hf":
      return formatHfUrl(ref);
    case "url":
      return ref.url;
    case "path":
      return ref.path;
  }
}

/** The file name at the end of a reference. */
export function assetBaseName(ref: AssetRef): string {
  const s = ref.kind === "hf" ? ref.path : ref.kind === "url" ? new URL(ref.url).pathname : ref.path;
  const parts = s.split(/[\\/]/).filter(Boolean);
  return parts[parts.length - 1] ?? s;
}
