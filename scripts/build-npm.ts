/**
 * Builds what JSR's npm compatibility layer serves to Bun and Node users (`bunx jsr add @pocket/tts`,
 * `npx jsr add @pocket/tts`), so that form can be tested here:
 *
 * - the published file set (`deno publish --dry-run`), each `.ts` transpiled to `.js` by esbuild without bundling;
 * - relative import/export specifiers rewritten from `.ts` to `.js`; `npm:x@v` specifiers to bare `x`, recorded as
 *   dependencies (bare `x` imports are kept, and must name one of them); `jsr:`, URLs and unpublished files are errors;
 * - `.d.ts` declarations beside each `.js` (the TypeScript compiler, declaration emit only);
 * - every other published file copied, no `.ts` left;
 * - `package.json` with `exports` (types + default) from deno.json's exports, `type: module`, the dependencies.
 *
 * Plus `bundle/`: the package as one ES module (`pocket_tts.mjs`) with its worker script (`pocket_tts_worker.mjs`)
 * and the `.wasm` variants beside it, bundled from the transpiled files: the layout `src/runtime/shipped_file.ts`
 * expects when an app bundles the package (copy these files next to the app's bundle).
 *
 *   deno run -A scripts/build-npm.ts [OUT_DIR]          # default dist/npm
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { listFiles, publishFiles, ROOT } from "./publish_files.ts";

/** One `npm:` specifier split into the bare package name, its version range and subpath. */
function parseNpm(spec: string): { name: string; version: string; bare: string } {
  const m = spec.match(/^npm:\/?((?:@[^/@]+\/)?[^/@]+)(?:@([^/]+))?(\/.*)?$/);
  if (!m) throw new Error(`cannot parse the npm specifier "${spec}"`);
  return { name: m[1], version: m[2] ?? "*", bare: m[1] + (m[3] ?? "") };
}

/** The package a bare specifier names (`@scope/name/sub` → `@scope/name`), or null for other specifiers. */
function barePackage(spec: string): string | null {
  const m = spec.match(/^((?:@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*)(\/.*)?$/i);
  return m ? m[1] : null;
}

/**
 * Rewrites one import specifier of a published module; records npm dependencies. A bare specifier is kept (it is
 * what the npm: form becomes) and must name a package that some `npm:` specifier gives a version (checked at the end).
 */
function rewriteSpecifier(
  spec: string,
  importer: string,
  published: Set<string>,
  deps: Map<string, string>,
  bare: Set<string>,
): string {
  if (spec.startsWith("node:")) return spec;
  if (spec.startsWith("npm:")) {
    const { name, version, bare } = parseNpm(spec);
    const known = deps.get(name);
    if (known && known !== version) throw new Error(`${name} is imported as both ${known} and ${version}`);
    deps.set(name, version);
    return bare;
  }
  if (spec.startsWith("./") || spec.startsWith("../")) {
    const target = relative(ROOT, resolve(dirname(importer), spec));
    if (!published.has(target)) throw new Error(`${relative(ROOT, importer)} imports unpublished ${spec}`);
    return spec.replace(/\.ts$/, ".js");
  }
  const pkg = barePackage(spec);
  if (pkg) {
    bare.add(pkg);
    return spec;
  }
  throw new Error(`${relative(ROOT, importer)}: unsupported specifier "${spec}" (use node:, npm:, bare or relative)`);
}

/** Rewrites the specifiers of emitted declarations (`from "…"`, `import("…")`) the same way. */
function rewriteDeclarations(dts: string): string {
  return dts
    .replace(/((?:from|import)\s*\(?\s*)(["'])(\.{1,2}\/[^"']+)\.ts\2/g, "$1$2$3.js$2")
    .replace(
      /((?:from|import)\s*\(?\s*)(["'])npm:([^"']+)\2/g,
      (_, pre, q, spec) => `${pre}${q}${parseNpm(`npm:${spec}`).bare}${q}`,
    );
}

/**
 * Builds the npm layer into `out` (emptied first).
 *
 * @returns the package.json written
 * @example
 * ```ts
 * await buildNpm("dist/npm");
 * ```
 */
export async function buildNpm(out: string): Promise<Record<string, unknown>> {
  const require = createRequire(import.meta.url);
  const esbuild = require(join(ROOT, "node_modules/esbuild"));
  const denoJson = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8"));
  const files = publishFiles(Deno.execPath());
  const published = new Set(files);
  const sources = files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"));
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });

  // 1. Each .ts → .js on its own: every import is external, its specifier rewritten.
  const deps = new Map<string, string>();
  const bare = new Set<string>();
  await esbuild.build({
    entryPoints: sources.map((f) => join(ROOT, f)),
    outbase: ROOT,
    outdir: out,
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    keepNames: true,
    charset: "utf8",
    logLevel: "warning",
    plugins: [{
      name: "jsr-npm-specifiers",
      setup(build: { onResolve(o: { filter: RegExp }, cb: (a: Record<string, string>) => unknown): void }) {
        build.onResolve({ filter: /.*/ }, (args) => {
          if (args.kind === "entry-point") return undefined;
          return { path: rewriteSpecifier(args.path, args.importer, published, deps, bare), external: true };
        });
      },
    }],
  });

  const unversioned = [...bare].filter((p) => !deps.has(p));
  if (unversioned.length) throw new Error(`bare imports without an npm: version: ${unversioned.join(", ")}`);

  // 2. Declarations: emit only (no type check: the sources are checked by `deno check`), then the same rewrites.
  const dtsDir = join(out, ".dts");
  const tsc = spawnSync("node", [
    join(ROOT, "node_modules/typescript/bin/tsc"),
    ...["--declaration", "--emitDeclarationOnly", "--noCheck", "--allowImportingTsExtensions", "--skipLibCheck"],
    ...["--target", "es2022", "--module", "esnext", "--moduleResolution", "bundler", "--lib", "es2022,dom"],
    ...["--rootDir", ROOT, "--outDir", dtsDir],
    ...sources.map((f) => join(ROOT, f)),
  ], { encoding: "utf8" });
  if (tsc.status !== 0) throw new Error(`declaration emit failed:\n${tsc.stdout}${tsc.stderr}`);
  for (const f of listFiles(dtsDir)) {
    const target = join(out, relative(dtsDir, f));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, rewriteDeclarations(readFileSync(f, "utf8")));
  }
  rmSync(dtsDir, { recursive: true });

  // 3. Everything else as is.
  for (const f of files.filter((f) => !sources.includes(f))) {
    mkdirSync(dirname(join(out, f)), { recursive: true });
    copyFileSync(join(ROOT, f), join(out, f));
  }
  const leftover = listFiles(out).filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"));
  if (leftover.length) throw new Error(`.ts files left in the npm build: ${leftover.join(", ")}`);

  // 4. package.json from deno.json's exports.
  const exportsMap: Record<string, { types: string; default: string }> = {};
  for (const [key, path] of Object.entries(denoJson.exports as Record<string, string>)) {
    const js = path.replace(/\.ts$/, ".js");
    exportsMap[key] = { types: js.replace(/\.js$/, ".d.ts"), default: js };
  }
  const pkg = {
    name: denoJson.name,
    version: denoJson.version,
    description: "Kyutai's Pocket TTS for every JavaScript runtime, on a Rust→WebAssembly SIMD core",
    license: denoJson.license,
    type: "module",
    exports: { ...exportsMap, "./bundle": "./bundle/pocket_tts.mjs", "./package.json": "./package.json" },
    main: exportsMap["."].default,
    types: exportsMap["."].types,
    engines: { node: ">=20" },
    ...(deps.size ? { dependencies: Object.fromEntries([...deps].sort()) } : {}),
  };
  writeFileSync(join(out, "package.json"), JSON.stringify(pkg, null, 2) + "\n");

  // 5. The bundle layout, bundled from the transpiled files.
  const external = ["node:*", ...deps.keys()];
  for (
    const [entry, name] of [[exportsMap["."].default, "pocket_tts.mjs"], [
      "./src/generate/worker.js",
      "pocket_tts_worker.mjs",
    ]]
  ) {
    await esbuild.build({
      entryPoints: [join(out, entry)],
      outfile: join(out, "bundle", name),
      bundle: true,
      format: "esm",
      platform: "neutral",
      target: "es2022",
      keepNames: true,
      charset: "utf8",
      external,
      logLevel: "warning",
    });
  }
  for (const f of files.filter((f) => f.endsWith(".wasm"))) {
    copyFileSync(join(ROOT, f), join(out, "bundle", f.split("/").pop()!));
  }
  esbuild.stop?.();
  return pkg;
}

if (import.meta.main) {
  const out = resolve(Deno.args[0] ?? join(ROOT, "dist/npm"));
  const pkg = await buildNpm(out);
  console.log(`${pkg.name}@${pkg.version} → ${out}`);
}
