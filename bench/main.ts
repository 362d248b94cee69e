/**
 * `deno task bench [filter…] [--runtimes=deno,bun]`: runs the benchmarks (all, or those whose name matches a filter)
 * in Deno, Bun and Node (or the runtimes listed), one after the other in this run so the figures are comparable, and
 * prints one JSON object as the last line: `{ machine: {cpu, cores, runtimes}, results: [...] }`. Also writes it to
 * `bench/results/latest.json`.
 *
 * Each benchmark module runs in a fresh process per runtime, so memory figures (peak RSS) are that module's own.
 * Node 20 runs an esbuild bundle of `bench/runner.ts` with `--experimental-wasm-relaxed-simd`, so both variants
 * are measured there too (without the flag Node 20 only runs the baseline variant).
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import type { BenchResult } from "./support.ts";
import { BENCHMARKS, matches } from "./runner.ts";

const root = new URL("../", import.meta.url).pathname;
const tools = `${root}.tools/bin`;
// `--runtimes=deno,bun` measures only those runtimes (default: all three)
const only = Deno.args.find((a) => a.startsWith("--runtimes="))?.slice("--runtimes=".length).split(",");
const filters = Deno.args.filter((a) => !a.startsWith("--runtimes="));

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
// A bundle finds the wasm and its worker script beside it (src/runtime/shipped_file.ts), as the test bundles do.
const worker = bundle.ok && run(`${root}node_modules/.bin/esbuild`, [
  "src/generate/worker.ts",
  "--bundle",
  "--format=esm",
  "--platform=node",
  "--target=node20",
  "--outfile=dist/bench/pocket_tts_worker.mjs",
  "--log-level=warning",
]);
for (const file of bundle.ok ? ["pocket_core_simd.wasm", "pocket_core_relaxed.wasm"] : []) {
  copyFileSync(`${root}wasm/${file}`, `${root}dist/bench/${file}`);
}
const runtimes: [string, string, string[]][] = [
  ["deno", `${tools}/deno`, ["run", "-A", "bench/runner.ts"]],
  ["bun", `${tools}/bun`, ["bench/runner.ts"]],
  ["node", "node", ["--experimental-wasm-relaxed-simd", "dist/bench/runner.mjs", "--run"]],
];
for (const [name, cmd, pre] of runtimes.filter(([n]) => !only || only.includes(n))) {
  if (name === "node" && !(bundle.ok && worker && worker.ok)) {
    failures.push("node (bundle)");
    continue;
  }
  for (const key of modules) {
    const r = run(cmd, [...pre, `--module=${key}`, ...filters]);
    r.ok ? results.push(...lastJson(r.stdout)) : failures.push(`${name} ${key}`);
  }
}

/** The figure of a `limits` result for `r`'s runtime and variant (`"auto"`: the runtime's fastest variant). */
function limit(r: BenchResult, name: string, key: string): number | undefined {
  const own = results.filter((x) => x.name === name && x.runtime === r.runtime);
  const match = own.find((x) => x.variant === r.variant) ?? own.find((x) => x.variant === "relaxed") ?? own[0];
  return match?.[key] as number | undefined;
}

const frac = (x: number) => +x.toFixed(3);

/**
 * Puts each figure beside its bound from `limits` (same runtime and variant): the AR step's bandwidth against one
 * core's read bandwidth, the Mimi frame's MAC rate against one core's 128-bit multiply-add rate (two cores' for
 * figures of the threads build with one helper, `threads: 2`), and the e2e
 * real-time factor against the ceiling of this design: the AR step at the read bound plus the Mimi frame at the
 * FMA bound, on one core, or spread evenly over two.
 */
function addBounds(): void {
  for (const r of [...results]) {
    const t = r.threads === 2 ? "2t" : "1t"; // a threads-build figure against the two-thread bound
    if (r.name === "flowlm.ar_step") {
      const bound = limit(r, `limits.read_${t}`, "gbps");
      if (bound) Object.assign(r, { bound_gbps: bound, of_bound: frac((r.gbps as number) / bound) });
    } else if (r.name === "mimi.decode_frame") {
      const bound = limit(r, `limits.madd_${t}`, "gmac_per_s");
      if (bound) Object.assign(r, { bound_gmac_per_s: bound, of_bound: frac((r.gmac_per_s as number) / bound) });
    } else if (r.name === "e2e.rtf") {
      // e2e runs the runtime's fastest variant: relaxed wherever it was measured
      const pick = (name: string, weights?: string) => {
        const own = results.filter((x) =>
          x.name === name && x.runtime === r.runtime && (!weights || x.weights === weights)
        );
        return own.find((x) => x.variant === "relaxed") ?? own[0];
      };
      const step = pick("flowlm.ar_step", r.weights as string), frame = pick("mimi.decode_frame");
      const read = limit(r, "limits.read_1t", "gbps"), madd = limit(r, "limits.madd_1t", "gmac_per_s");
      if (!step || !frame || !read || !madd) continue;
      const stepMs = (step.weight_mb as number) / read, mimiMs = (frame.macs_per_frame as number) / madd / 1e6;
      const cores = r.workers === 2 || r.threads === 2 ? 2 : 1;
      const ceiling = 80 / ((stepMs + mimiMs) / cores);
      Object.assign(r, { ceiling_rtf: +ceiling.toFixed(2), of_bound: frac(r.median / ceiling) });
    }
  }
}
addBounds();

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
