/**
 * Scratch directories for tests and benchmarks that need one for a whole file or process (a model folder, a CLI's
 * output): made under the system's temp folder and removed when the process exits, so test runs leave nothing behind.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

const made: string[] = [];

/**
 * A new empty directory `<tmp>/<prefix>XXXXXX`, removed (with its contents) at process exit.
 *
 * @example
 * ```ts
 * const out = join(tempDir("pocket-cli-"), "out.wav");
 * ```
 */
export function tempDir(prefix: string): string {
  if (made.length === 0) {
    const clean = () => made.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
    process.on("exit", clean);
    if ("Deno" in globalThis) globalThis.addEventListener("unload", clean); // `deno test` emits no process "exit"
  }
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}
