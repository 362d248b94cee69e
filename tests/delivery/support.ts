/**
 * Shared by the delivery tests, which receive the package the way its users do and therefore never import the
 * checkout's `src/`: the tools' paths, the one request every path speaks (tiny model, tiny voice, one seed), the
 * local Deno CLI's output as the reference, a loopback static server, and async child processes (the static server
 * lives in the test's own process, so children must never be waited for synchronously).
 *
 * Wiring: these tests spawn deno, bun, node and chromium. Only the Deno pass of `scripts/test.sh` runs them; under
 * Bun and Node (`bun test`, the esbuild bundles) every suite is skipped through {@link denoOnly}.
 */
import { after, before } from "node:test";
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { publishFiles } from "../../scripts/publish_files.ts";

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");
/** The runtimes. */
export const DENO: string = join(ROOT, ".tools/bin/deno");
export const BUN: string = join(ROOT, ".tools/bin/bun");
export const NODE = "node";
export const ESBUILD: string = join(ROOT, "node_modules/.bin/esbuild");

/** The tiny model and voice (fixtures), and the request every delivery path generates. */
export const TINY_MODEL_DIR: string = join(ROOT, "tests/fixtures/model/tiny");
export const TINY_VOICE: string = join(ROOT, "tests/fixtures/tiny/voice_state.safetensors");
export const TEXT = "Delivered as users get it.";
export const SEED = 4242;

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
/** Skip reason for the Bun and Node passes (see the module doc), or `false` in Deno. */
export const denoOnly: string | false = g.Deno ? false : "spawns deno/bun/node/chromium: run by the Deno pass only";

/** A finished child process. */
export interface RunResult {
  status: number | null;
  stdout: Uint8Array;
  stderr: string;
}

/** Runs a process to its end without blocking this one's event loop. */
export function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string | undefined>; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: options.cwd ?? ROOT, env: cleanEnv(options.env), stdio: "pipe" });
    const out: Uint8Array[] = [];
    let err = "";
    child.stdout.on("data", (b: Uint8Array) => out.push(b));
    child.stderr.on("data", (b: Uint8Array) => err += String(b));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 180_000);
    child.on("error", reject);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout: concat(out), stderr: err });
    });
  });
}

/** The environment for children: this one's (or `env` exactly, when given), without color. */
export function cleanEnv(env?: Record<string, string | undefined>): Record<string, string> {
  const base: Record<string, string | undefined> = env ?? { ...g.process.env };
  const out: Record<string, string> = { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" };
  for (const [k, v] of Object.entries(base)) if (v !== undefined) out[k] = v;
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, (o += p.length) - p.length);
  return out;
}

/** CLI arguments of the shared request (model and voice given by the caller: paths or URLs). */
export function requestArgs(model: string, voice: string): string[] {
  return [TEXT, "--model", model, "--voice", voice, "--seed", String(SEED)];
}

/**
 * The local Deno CLI's WAV for the shared request (unknown-length header, 200 ms trailing silence: the reference's
 * streaming writer), the bytes every other path must reproduce.
 */
export async function referenceWav(simd: "baseline" | "relaxed"): Promise<Uint8Array> {
  const r = await run(DENO, [
    ...["run", "-A", join(ROOT, "mod.ts")],
    ...requestArgs(TINY_MODEL_DIR, TINY_VOICE),
    ...["--simd", simd, "-o", "-", "-q"],
  ]);
  if (r.status !== 0 || r.stdout.length < 1000) throw new Error(`reference CLI run failed: ${r.stderr}`);
  return r.stdout;
}

const TYPES: Record<string, string> = {
  ts: "application/typescript; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  json: "application/json",
  html: "text/html; charset=utf-8",
  wasm: "application/wasm",
  md: "text/markdown",
};

/** A loopback static server over a fixed map of URL paths to files; it serves nothing else. */
export interface StaticServer {
  /** `http://127.0.0.1:PORT` */
  origin: string;
  /** Every path requested, in order (including 404s). */
  requests: string[];
  close(): Promise<void>;
}

/**
 * Serves `files` (URL path → local file) on 127.0.0.1, with the content types a CDN gives. Bodies are read on each
 * request, so the files may change between runs.
 */
export async function serveStatic(
  files: Map<string, string>,
  options: { crossOriginIsolated?: boolean } = {},
): Promise<StaticServer> {
  // COOP + COEP make a page cross-origin isolated: browsers then give it SharedArrayBuffer (the threads build).
  const isolation = options.crossOriginIsolated
    ? { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" }
    : {};
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    requests.push(path);
    const file = files.get(path);
    if (!file || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404).end("not found");
      return;
    }
    const body = readFileSync(file);
    const type = TYPES[file.split(".").pop() ?? ""] ?? "application/octet-stream";
    res.writeHead(200, {
      "content-type": type,
      "content-length": body.length,
      "access-control-allow-origin": "*",
      ...isolation,
    });
    res.end(req.method === "HEAD" ? undefined : body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** URL paths of the tiny model directory and voice in {@link tinyModelFiles}. */
export const TINY_MODEL_PATH = "/models/tiny/";
export const TINY_VOICE_PATH = "/voices/tiny.safetensors";

/** URL path → file for the tiny model (its config names `../text/tokenizer.model`) and voice. */
export function tinyModelFiles(): Map<string, string> {
  return new Map([
    [`${TINY_MODEL_PATH}config.json`, join(TINY_MODEL_DIR, "config.json")],
    [`${TINY_MODEL_PATH}model.safetensors`, join(TINY_MODEL_DIR, "model.safetensors")],
    ["/models/text/tokenizer.model", join(TINY_MODEL_DIR, "../text/tokenizer.model")],
    [TINY_VOICE_PATH, TINY_VOICE],
  ]);
}

/** What {@link publishedPackage} gives a suite's tests (set once its `before` hook ran). */
export interface PublishedPackage {
  /** A fresh temp dir, removed after the suite. */
  dir: string;
  /** Serves the publish set (what `deno publish --dry-run` lists, as JSR would) and the tiny model and voice. */
  server: StaticServer;
}

/** Inside a `describe`: a temp dir and a loopback server of the published package, for the suite's tests. */
export function publishedPackage(prefix: string): PublishedPackage {
  const suite = { dir: "", server: undefined as unknown as StaticServer };
  before(async () => {
    suite.dir = mkdtempSync(join(tmpdir(), prefix));
    const files = new Map(publishFiles(DENO).map((f) => [`/${f}`, join(ROOT, f)]));
    for (const [path, file] of tinyModelFiles()) files.set(path, file);
    suite.server = await serveStatic(files);
  });
  after(async () => {
    await suite.server?.close();
    if (suite.dir) rmSync(suite.dir, { recursive: true, force: true });
  });
  return suite;
}
