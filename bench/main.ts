/**
 * `deno task bench [filter…]`: runs the benchmarks (all, or those whose name matches a filter) in Deno, Bun and
 * Node, one after the other in this run so the figures are comparable, and prints one JSON object as the last
 * line: `{ machine: {cpu, cores, runtimes}, results: [...] }`. Also writes it to `bench/results/latest.json`.
 *
 * Each benchmark module runs in a fresh process per runtime, so memory figures (peak RSS) are that module's own.
 * Node 20 runs an esbuild bundle of `bench/runner.ts` with `--experimental-wasm-relaxed-simd`, so both variants
 * are measured there too (without the flag Node 20 only runs the baseline variant).
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import type { BenchResult } from "./support.ts";
import { BENCHMARKS, matches } from "./runner.ts";

const root = new URL("../", import.meta.url).pathname;
const tools = `${root}.tools/bin`;
const filters = Deno.args;

function run(cmd: string, argv: string[]): { ok: boolean; stdout: string } {
  console.error(`$ ${cmd} ${argv.join(" ")}`);
  const r = spawnSync(cmd, argv, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  return { ok: r.status === 0, stdout: r.stdout ?? "" };
}

function version(cmd: string, argv: string[]): string {
  const r = spawnSync(cmd, argv, { encoding: "utf8" });
  return (r.stdout ?? "").trim().split("\n")[0];
}

function lastJson(stdout: string): BenchResult[] {
  const line = stdout.trim().split("\n").at(-1) ?? "[]";
  try {
    return JSON.parse(line);
  } catch {
    return [];
  }
}

const results: BenchResult[] = [];
const failures: string[] = [];
const modules = BENCHMARKS.filter((b) => matches(filters, b.key, ...b.prefixes)).map((b) => b.key);
const bundle = run(`${root}node_modules/.bin/esbuild`, [
  "bench/runner.ts",
  "--bundle",
  "--format=esm",
  "--platform=node",
  "--target=node20",
  "--outfile=dist/bench/runner.mjs",
  "--log-level=warning",
  // The lazily imported audio codecs load from node_modules at run time (see src/audio/codec_import.ts).
  ...["npm:*", "@wasm-audio-decoders/*", "mpg123-decoder", "ogg-opus-decoder", "@breezystack/lamejs", "@evan/opus"]
    .map((p) => `--external:${p}`),
]);
const runtimes: [string, string, string[]][] = [
  ["deno", `${tools}/deno`, ["run", "-A", "bench/runner.ts"]],
  ["bun", `${tools}/bun`, ["bench/runner.ts"]],
  ["node", "node", ["--experimental-wasm-relaxed-simd", "dist/bench/runner.mjs", "--run"]],
];
for (const [name, cmd, pre] of runtimes) {
  if (name === "node" && !bundle.ok) {
    failures.push("node (bundle)");
    continue;
  }
  for (const key of modules) {
    const r = run(cmd, [...pre, `--module=${key}`, ...filters]);
    r.ok ? results.push(...lastJson(r.stdout)) : failures.push(`${name} ${key}`);
  }
}

const cpu = (() => {
  try {
    return readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/)?.[1] ?? os.cpus()[0]?.model;
  } catch {
    return os.cpus()[0]?.model;
  }
})();
const report = {
  machine: {
    cpu,
    cores: os.cpus().length,
    runtimes: {
      deno: Deno.version.deno,
      bun: version(`${tools}/bun`, ["--version"]),
      node: version("node", ["--version"]),
    },
    date: new Date().toISOString(),
  },
  failures,
  results,
};
mkdirSync(`${root}bench/results`, { recursive: true });
writeFileSync(`${root}bench/results/latest.json`, JSON.stringify(report, null, 2));
console.log(JSON.stringify(report));
if (failures.length) Deno.exit(1);
