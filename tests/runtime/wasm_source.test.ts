// An injected wasm core (`TTSModel.load({ wasm })`), as platforms that cannot fetch a module-relative file use it
// (Cloudflare Workers import `.wasm` as a WebAssembly.Module): a compiled module, its bytes or its URL give the same
// audio as the shipped file, on one thread and in two workers (the module or bytes are posted to each); its variant
// is read from the module itself; bytes that are not a pocket_core build are a typed error.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { loadCore, wasmUrl } from "../../src/runtime/wasm.ts";
import { WasmCoreError } from "../../src/errors.ts";
import { workersAvailable } from "../../src/generate/create_services.ts";
import { TINY_VOICE, withTinyModel } from "../support/tiny_model.ts";

const bytes = new Uint8Array(readFileSync(wasmUrl("baseline")));

async function speak(options: Parameters<typeof withTinyModel>[0]): Promise<Float32Array> {
  return await withTinyModel({ simd: "baseline", ...options }, async (tts) => {
    const voice = await tts.loadVoice(TINY_VOICE);
    return await tts.generate("An injected core.", { voice, seed: 9 });
  });
}

describe("an injected wasm core", () => {
  test("a module, bytes or a URL speak like the shipped file (one thread and two workers)", async () => {
    const shipped = await speak({ workers: 0 });
    const module = await WebAssembly.compile(bytes);
    assert.deepEqual(await speak({ workers: 0, wasm: module }), shipped);
    assert.deepEqual(await speak({ workers: 0, wasm: wasmUrl("baseline") }), shipped);
    if (workersAvailable()) assert.deepEqual(await speak({ workers: 2, wasm: bytes }), shipped);
  });

  test("its variant comes from the module, whatever simd says", async () => {
    const core = await loadCore({ simd: "auto", wasm: bytes });
    assert.equal(core.variant, "baseline");
  });

  test("bytes that are not a pocket_core build: WasmCoreError wasm_load", async () => {
    await assert.rejects(loadCore({ wasm: new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]) }), (e: unknown) => {
      return e instanceof WasmCoreError && e.code === "wasm_load" && /not a pocket_core build/.test(e.message);
    });
    await assert.rejects(loadCore({ wasm: new Uint8Array([1, 2, 3]) }), (e: unknown) => {
      return e instanceof WasmCoreError && e.code === "wasm_load" && /does not compile/.test(e.message);
    });
  });
});
