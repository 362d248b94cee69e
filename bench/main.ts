/**
 * `deno task bench [filter…]`: runs the benchmarks (all, or those whose name matches a filter) in Deno, Bun and
 * Node, one after the other in this run so the figures are comparable, and prints one JSON object as the last
 * line: `{ machine: {cpu, cores, runtimes}, results: [...] }`. Also writes it to `bench/results/latest.json`.
 *
 * Node 20 runs an esbuild bundle of `bench/runner.ts` with `--experimental-wasm-relaxed-simd`, so both variants
 * are measured there too (without the flag Node 20 only runs the baseline variant).
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import type { BenchResult } from "./support.ts";

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
const deno = run(`${tools}/deno`, ["run", "-A", "bench/runner.ts", ...filters]);
deno.ok ? results.push(...lastJson(deno.stdout)) : failures.push("deno");
const bun = run(`${tools}/bun`, ["bench/runner.ts", ...filters]);
bun.ok ? results.push(...lastJson(bun.stdout)) : failures.push("bun");
const bundle = run(`${root}node_modules/.bin/esbuild`, [
  "bench/runner.ts",
  "--bundle",
  "--format=esm",
  "--platform=node",
  "--target=node20",
  "--outfile=dist/bench/runner.mjs",
  "--log-level=warning",
]);
if (bundle.ok) {
  const node = run("node", ["--experimental-wasm-relaxed-simd", "dist/bench/runner.mjs", "--run", ...filters]);
  node.ok ? results.push(...lastJson(node.stdout)) : failures.push("node");
} else failures.push("node (bundle)");

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
