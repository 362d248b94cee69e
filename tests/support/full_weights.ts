/**
 * The full-size synthetic checkpoint (219,029,196 bytes), generated on demand into
 * `tests/fixtures/full/model.safetensors` (gitignored) from `tests/fixtures/model/full/config.json`, and checked
 * against the sha256 the golden README and MANIFEST record. A verified file is stamped (`.verified`: size, mtime and
 * hash), so later processes skip re-hashing 219 MB: that costs time in every test process and, in a benchmark,
 * inflates the peak RSS it measures.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { TTSModel, type TTSModelLoadOptions } from "../../mod.ts";
import { fixtureUrl } from "./fixtures.ts";
import { tempDir } from "./temp_dir.ts";
import { parseConfigText } from "../../src/model/config.ts";
import { writeSyntheticCheckpoint } from "../../src/model/synthetic_weights.ts";

/** sha256 of the full-size synthetic checkpoint (golden README §6, MANIFEST `configs.full.weights_check`). */
export const FULL_WEIGHTS_SHA256 = "022694d1410841e1b3094fc7854c65134cd40d381f712fdd3715f52cd85a6759";
/** Size in bytes of the full-size synthetic checkpoint. */
export const FULL_WEIGHTS_BYTES = 219_029_196;

/** Path of the generated checkpoint. */
export function fullWeightsPath(): string {
  return fileURLToPath(fixtureUrl("full/model.safetensors"));
}

/** Path of the config it is generated from. */
export function fullConfigPath(): string {
  return fileURLToPath(fixtureUrl("model/full/config.json"));
}

/** sha256 of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 22 })) h.update(chunk as Uint8Array);
  return h.digest("hex");
}

let ready: Promise<string> | null = null;

function stampOf(s: { size: number; mtimeMs: number }): string {
  // Whole milliseconds: Deno reports them, Bun and Node a fraction, and a stamp must hold for every runtime (a
  // re-hash costs seconds and tens of MB of the peak RSS a benchmark measures).
  return JSON.stringify({ size: s.size, mtimeMs: Math.floor(s.mtimeMs), sha256: FULL_WEIGHTS_SHA256 });
}

/** Records that the file at `path`, as it is now, has the expected hash; returns `path`. */
async function stamp(path: string): Promise<string> {
  const tmp = `${path}.verified.${process.pid}.tmp`;
  await writeFile(tmp, stampOf(await stat(path)));
  await rename(tmp, `${path}.verified`); // atomic: concurrent test processes never read half a stamp
  return path;
}

/**
 * Make sure the full-size checkpoint exists and is right: generate it when absent (about 0.5 s) or when its size or
 * hash is wrong, then verify its sha256. Resolves to its path. Cached per process.
 *
 * @throws {Error} when the generated file's sha256 differs from {@link FULL_WEIGHTS_SHA256}
 */
export function ensureFullWeights(): Promise<string> {
  ready ??= (async () => {
    const path = fullWeightsPath();
    const found = await stat(path).catch(() => null);
    if (found?.size === FULL_WEIGHTS_BYTES) {
      if (await readFile(`${path}.verified`, "utf8").catch(() => "") === stampOf(found)) return path;
      if (await sha256File(path) === FULL_WEIGHTS_SHA256) return await stamp(path);
    }
    await mkdir(new URL(".", fixtureUrl("full/model.safetensors")), { recursive: true });
    const config = parseConfigText(new TextDecoder().decode(await readFile(fullConfigPath())), {
      source: fullConfigPath(),
    });
    await writeSyntheticCheckpoint(config, path);
    const got = await sha256File(path);
    if (got !== FULL_WEIGHTS_SHA256) {
      throw new Error(`generated ${path} has sha256 ${got}, expected ${FULL_WEIGHTS_SHA256}`);
    }
    return await stamp(path);
  })();
  ready.catch(() => (ready = null));
  return ready;
}

let modelDir: Promise<string> | null = null;

/**
 * A model directory for the full-size synthetic checkpoint (config.json, model.safetensors, tokenizer.model), made
 * in the system's temp folder (removed at exit) with links to the generated weights and the fixture tokenizer, so the
 * whole public API (`TTSModel.load({ model })`) can run at full size. Cached per process.
 */
export function fullModelDir(): Promise<string> {
  modelDir ??= (async () => {
    const { symlink, writeFile } = await import("node:fs/promises");
    const { join } = await import("node:path");
    const weights = await ensureFullWeights();
    const dir = tempDir("pocket-full-");
    const config = JSON.parse(new TextDecoder().decode(await readFile(fullConfigPath())));
    config.weights_path = "model.safetensors";
    config.flow_lm.lookup_table.tokenizer_path = "tokenizer.model";
    await writeFile(join(dir, "config.json"), JSON.stringify(config, null, 2));
    await symlink(weights, join(dir, "model.safetensors"));
    await symlink(fileURLToPath(fixtureUrl("model/text/tokenizer.model")), join(dir, "tokenizer.model"));
    return dir;
  })();
  return modelDir;
}

/**
 * The first four frames of `text` (seed 5, EOS off) from the full-size model loaded with `options`, and whether it
 * ran in workers: what placement tests compare bit for bit.
 */
export async function fullSizeFrames(
  text: string,
  options: Omit<TTSModelLoadOptions, "model">,
): Promise<{ frames: Float32Array[]; usesWorkers: boolean }> {
  const tts = await TTSModel.load({ model: await fullModelDir(), ...options });
  try {
    const frames: Float32Array[] = [];
    for await (const f of tts.stream(text, { seed: 5, eosThreshold: 1e9, onWarning() {} })) {
      if (frames.push(f) === 4) break;
    }
    return { frames, usesWorkers: tts.usesWorkers };
  } finally {
    tts.dispose();
  }
}
