/**
 * The files JSR receives: exactly those `deno publish --dry-run` lists (deno.json's `publish.include` minus
 * excludes and gitignored files), as paths relative to the repository root. `scripts/build-npm.ts` builds the npm
 * layer from them and `tests/delivery/` serves them, so both see what users get.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("../", import.meta.url)).replace(/\/$/, "");

/**
 * Lists the published files (sorted, relative to {@link ROOT}).
 *
 * @param deno the deno executable (default: `deno` on PATH)
 * @example
 * ```ts
 * const files = publishFiles(); // ["LICENSE", "README.md", "deno.json", "mod.ts", "src/…", "wasm/…"]
 * ```
 */
export function publishFiles(deno = "deno"): string[] {
  const r = spawnSync(deno, ["publish", "--dry-run", "--allow-dirty"], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
  });
  if (r.status !== 0) throw new Error(`deno publish --dry-run failed:\n${r.stderr}${r.stdout}`);
  const prefix = `file://${ROOT}/`;
  const files = `${r.stdout}\n${r.stderr}`.split("\n")
    .map((l) => l.trim().replace(/ \([0-9.]+[KMG]?B\)$/, ""))
    .filter((l) => l.startsWith(prefix))
    .map((l) => decodeURIComponent(l.slice(prefix.length)));
  if (!files.includes("mod.ts")) throw new Error(`cannot read the file list of deno publish --dry-run:\n${r.stderr}`);
  return [...new Set(files)].sort();
}

/**
 * Every file under `dir`, recursively (absolute paths).
 *
 * @example
 * ```ts
 * const built = listFiles("dist/npm").filter((f) => f.endsWith(".js"));
 * ```
 */
export function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? listFiles(p) : [p];
  });
}
