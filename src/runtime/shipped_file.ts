/**
 * Where the files shipped beside the code (the `.wasm` variants, the model-part worker script) are, in every form the
 * package takes:
 *
 * - **package layout**: the published tree, as `.ts` (a checkout, JSR over `https:`) or transpiled `.js` (JSR's npm
 *   layer, {@link https://jsr.io/docs/npm-compatibility}, `scripts/build-npm.ts`). The calling module is still at its
 *   own path (e.g. `…/src/runtime/wasm.js`), so files are found relative to it, and the worker script has the
 *   caller's extension (`worker.ts` beside `create_services.ts`, `worker.js` beside `create_services.js`).
 * - **bundle layout**: the code was bundled into a file of another name. Bundlers do not follow
 *   `new URL(…, import.meta.url)`, so the files are expected beside the bundle under fixed names
 *   (`pocket_core_simd.wasm`, `pocket_core_relaxed.wasm`, `pocket_tts_worker.mjs`, all in the npm build's `bundle/`
 *   folder), or are given explicitly (`TTSModel.load({ wasm, workerUrl })`).
 *
 * @module
 */

/**
 * The URL of a shipped file.
 *
 * @param moduleUrl the caller's `import.meta.url`
 * @param modulePath the caller's path in the package without extension, e.g. `"src/runtime/wasm"`
 * @param packageRelative the file relative to the caller in the package layout; `{ext}` stands for the caller's
 *   extension (`ts`, `js` or `mjs`)
 * @param bundleName the file's name beside a bundle
 * @example
 * ```ts
 * const url = shippedFileUrl(import.meta.url, "src/runtime/wasm", "../../wasm/pocket_core_simd.wasm", "pocket_core_simd.wasm");
 * ```
 */
export function shippedFileUrl(
  moduleUrl: string,
  modulePath: string,
  packageRelative: string,
  bundleName: string,
): URL {
  const path = new URL(moduleUrl).pathname;
  const ext = path.match(/\.(ts|js|mjs)$/)?.[1];
  if (ext && path.endsWith(`/${modulePath}.${ext}`)) return new URL(packageRelative.replace("{ext}", ext), moduleUrl);
  return new URL(`./${bundleName}`, moduleUrl);
}
