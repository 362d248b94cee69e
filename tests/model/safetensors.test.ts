import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fixtureUrl, readFixture } from "../support/fixtures.ts";
import {
  bf16ToFloat32,
  DTYPE_SIZES,
  f16ToFloat32,
  float32ToBf16,
  openSafetensors,
  parseSafetensors,
  serializeSafetensors,
  type TensorEntry,
  toBigInt64,
  toFloat32,
  toFloat32Into,
  writeSafetensors,
} from "../../src/model/safetensors.ts";
import { InvalidWeightsError } from "../../src/errors.ts";
import { assemble, corruptVariants } from "./corrupt_variants.ts";

const TINY = "model/tiny/model.safetensors";

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

describe("safetensors reader", () => {
  test("tiny golden checkpoint: header facts from SYNTHETIC-WEIGHTS.md", async () => {
    const bytes = await readFixture(TINY);
    const st = parseSafetensors(bytes);
    assert.equal(st.tensors.length, 150);
    assert.equal(st.tensors.reduce((a, t) => a + t.numel, 0), 705_770);
    assert.ok(st.tensors.every((t) => t.dtype === "BF16"));
    assert.equal(st.header.byteLength, 1_428_100);
    assert.equal(st.header.metadata, null);
    // tensors are stored sorted by name
    const names = st.names();
    assert.deepEqual(names, [...names].sort());
    const emb = st.get("flow_lm.conditioner.embed.weight")!;
    assert.deepEqual(emb.shape, [4001, 64]);
    // first values documented in SYNTHETIC-WEIGHTS.md §4 (tiny)
    const w = await st.float32("flow_lm.transformer.layers.0.self_attn.in_proj.weight");
    assert.deepEqual(Array.from(w.subarray(0, 4)), [0.087890625, 0.10693359375, 0.02294921875, -0.13671875]);
    const freqs = await st.float32("flow_lm.flow_net.time_embed.0.freqs");
    assert.deepEqual(Array.from(freqs.subarray(0, 4)), [1.0, 0.9296875, 0.8671875, 0.8046875]);
  });

  test("file path reader equals the in-memory reader, tensor by tensor; readInto fills a target", async () => {
    const bytes = await readFixture(TINY);
    const mem = parseSafetensors(bytes);
    const file = await openSafetensors(fileURLToPath(fixtureUrl(TINY)));
    try {
      assert.deepEqual(file.header, { ...mem.header, tensors: mem.header.tensors });
      let count = 0;
      for await (const { info, bytes: b } of file.entries()) {
        assert.deepEqual(b, await mem.read(info.name));
        count++;
      }
      assert.equal(count, 150);
      const t = file.get("flow_lm.out_norm.weight")!;
      const target = new Uint8Array(t.byteLength + 10).fill(7);
      await file.readInto(t, target);
      assert.deepEqual(target.subarray(0, t.byteLength), bytes.subarray(t.fileOffset, t.fileOffset + t.byteLength));
      assert.equal(target[t.byteLength], 7);
      await assert.rejects(file.readInto(t, new Uint8Array(3)), RangeError);
      await assert.rejects(file.read("no.such.tensor"), (e: unknown) => {
        assert.ok(e instanceof InvalidWeightsError);
        assert.equal(e.tensor, "no.such.tensor");
        assert.match(e.message, /missing tensor "no.such.tensor"/);
        return true;
      });
    } finally {
      await file.close();
    }
    // a file: URL works too
    const viaUrl = await openSafetensors(fixtureUrl(TINY));
    assert.equal(viaUrl.tensors.length, 150);
    await viaUrl.close();
  });
});

describe("safetensors writer", () => {
  test("re-serializing the tiny checkpoint reproduces it byte for byte", async () => {
    const bytes = await readFixture(TINY);
    const st = parseSafetensors(bytes);
    const entries: TensorEntry[] = [];
    for (const t of st.tensors) entries.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: await st.read(t) });
    entries.reverse(); // the writer sorts
    const out = serializeSafetensors(entries);
    assert.equal(await sha256Hex(out), "ea2a6adde9a0cd78c018967d3286705664129ec13e442b692f35eef0807504d8");
  });

  test("mixed dtypes and metadata round-trip; larger elements first so every tensor is aligned", async () => {
    const entries: TensorEntry[] = [
      { name: "b.bf16", dtype: "BF16", shape: [3], data: float32ToBf16(new Float32Array([1, -2.5, 3.140625])) },
      { name: "a.f32", dtype: "F32", shape: [2, 2], data: new Float32Array([1.5, -0, 1e-30, 3e38]) },
      { name: "c.i64", dtype: "I64", shape: [1], data: new BigInt64Array([-5000000000n]) },
      { name: "d.u8", dtype: "U8", shape: [5], data: new Uint8Array([1, 2, 3, 4, 5]) },
      { name: "e.f16", dtype: "F16", shape: [2], data: new Uint16Array([0x3c00, 0xc000]) },
      { name: "f.i32", dtype: "I32", shape: [], data: new Int32Array([-7]) },
      { name: "g.empty", dtype: "F32", shape: [0, 4], data: new Float32Array(0) },
    ];
    const bytes = serializeSafetensors(entries, { format: "pt", note: "é" });
    const st = parseSafetensors(bytes);
    assert.deepEqual(st.header.metadata, { format: "pt", note: "é" });
    assert.deepEqual(st.names(), ["c.i64", "a.f32", "f.i32", "g.empty", "b.bf16", "e.f16", "d.u8"]);
    for (const t of st.tensors) {
      assert.equal(t.fileOffset % DTYPE_SIZES[t.dtype], 0, t.name);
    }
    assert.equal(st.header.dataOffset % 8, 0);
    assert.deepEqual(Array.from(await st.float32("a.f32")), [1.5, -0, Math.fround(1e-30), Math.fround(3e38)]);
    assert.deepEqual(Array.from(await st.float32("b.bf16")), [1, -2.5, 3.140625]);
    assert.deepEqual(Array.from(await st.float32("e.f16")), [1, -2]);
    assert.deepEqual(Array.from(toBigInt64(await st.tensor("c.i64"))), [-5000000000n]);
    assert.deepEqual(Array.from(await st.read("d.u8")), [1, 2, 3, 4, 5]);
    assert.deepEqual(st.get("f.i32")!.shape, []);
    assert.deepEqual(Array.from(await st.float32("g.empty")), []);
    assert.throws(() => toFloat32({ dtype: "I32", bytes: new Uint8Array(4) }), InvalidWeightsError);
    assert.throws(
      () => serializeSafetensors([{ name: "x", dtype: "F32", shape: [3], data: new Float32Array(2) }]),
      /"x": shape \[3\] of F32 needs 12 bytes, data has 8/,
    );
  });

  test("writeSafetensors writes the same bytes as serializeSafetensors, atomically", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pocket-st-"));
    try {
      const entries: TensorEntry[] = [
        { name: "w", dtype: "F32", shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
        { name: "v", dtype: "BF16", shape: [1], data: new Uint16Array([0x3f80]) },
      ];
      const path = join(dir, "out.safetensors");
      await writeSafetensors(path, entries);
      const file = await openSafetensors(path);
      assert.deepEqual(Array.from(await file.float32("w")), [1, 2, 3, 4, 5, 6]);
      await file.close();
      const { readFile, readdir } = await import("node:fs/promises");
      assert.deepEqual(new Uint8Array(await readFile(path)), serializeSafetensors(entries));
      assert.deepEqual(await readdir(dir), ["out.safetensors"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("float conversions", () => {
  test("F16 decoding: normal, subnormal, extremes, infinities, NaN", () => {
    const out = f16ToFloat32(new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x0400, 0x7c00, 0xfc00, 0x7e00, 0x8000]));
    assert.deepEqual(Array.from(out.subarray(0, 7)), [1, -2, 65504, 2 ** -24, 2 ** -14, Infinity, -Infinity]);
    assert.ok(Number.isNaN(out[7]));
    assert.ok(Object.is(out[8], -0));
  });

  test("BF16 rounding is round-to-nearest-even on the float32 bits", () => {
    // 1 + 2^-8 is exactly halfway between 1 and 1 + 2^-7: ties to even (1). 1 + 3*2^-8 ties up to 1 + 2^-6.
    const vals = new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, -0, NaN, Infinity]);
    const bits = float32ToBf16(vals);
    assert.deepEqual(Array.from(bits.subarray(0, 4)), [0x3f80, 0x3f82, 0x3f81, 0x8000]);
    assert.ok(Number.isNaN(bf16ToFloat32(bits.subarray(4, 5))[0]));
    assert.equal(bits[5], 0x7f80);
  });

  test("toFloat32Into writes into a caller's buffer (BF16, F16, F32) and checks its length", () => {
    const out = new Float32Array(6).fill(9);
    const bf = new Uint8Array(new Uint16Array([0x3f80, 0xc020]).buffer);
    assert.equal(toFloat32Into({ dtype: "BF16", bytes: bf }, out.subarray(1)), 2);
    assert.deepEqual(Array.from(out), [9, 1, -2.5, 9, 9, 9]);
    toFloat32Into({ dtype: "F16", bytes: new Uint8Array(new Uint16Array([0x3c00]).buffer) }, out.subarray(3));
    toFloat32Into({ dtype: "F32", bytes: new Uint8Array(new Float32Array([0.25]).buffer) }, out.subarray(4));
    assert.deepEqual(Array.from(out), [9, 1, -2.5, 1, 0.25, 9]);
    assert.throws(() => toFloat32Into({ dtype: "BF16", bytes: bf }, new Float32Array(1)), RangeError);
  });

  test("toFloat32 handles a tensor at an odd byte offset", () => {
    const buf = new Uint8Array(9);
    new DataView(buf.buffer).setFloat32(1, 2.5, true);
    new DataView(buf.buffer).setFloat32(5, -1, true);
    assert.deepEqual(Array.from(toFloat32({ dtype: "F32", bytes: buf.subarray(1) })), [2.5, -1]);
  });
});

describe("corrupt safetensors files give typed errors naming the problem and tensor", () => {
  test("file too short, empty header, trailing bytes, holes", () => {
    assert.throws(() => parseSafetensors(new Uint8Array(5)), /5 bytes, too short/);
    const d = new Uint8Array(8);
    assert.throws(
      () => parseSafetensors(assemble({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, d)),
      /4 bytes of data after the last tensor/,
    );
    assert.throws(
      () => parseSafetensors(assemble({ a: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, d)),
      (e: unknown) =>
        e instanceof InvalidWeightsError && e.tensor === "a" && /4 unused bytes before tensor "a"/.test(e.message),
    );
    assert.throws(() => parseSafetensors(assemble([1, 2], d)), /not a JSON object/);
    assert.throws(
      () => parseSafetensors(assemble({ a: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, d)),
      /"a": shape \[-1\] is not a list of non-negative integers/,
    );
    assert.throws(
      () => parseSafetensors(assemble({ a: { dtype: "F32", shape: [1], data_offsets: [4, 0] } }, d)),
      /"a": data_offsets \[4,0\] is not a pair/,
    );
  });

  test("each variant of the issue's list", async () => {
    const valid = await readFixture(TINY);
    const variants = corruptVariants(valid).filter((v) => !v.needsConfig);
    assert.equal(variants.length, 6);
    for (const v of variants) {
      assert.throws(() => parseSafetensors(v.bytes, "x.safetensors"), (e: unknown) => {
        assert.ok(e instanceof InvalidWeightsError, v.name);
        assert.equal(e.code, "invalid_weights");
        assert.match(e.message, v.expect, v.name);
        assert.match(e.message, /^x\.safetensors: /, v.name);
        if (v.tensor) {
          assert.equal(e.tensor, v.tensor, v.name);
          assert.ok(e.message.includes(`"${v.tensor}"`), `${v.name}: ${e.message}`);
        }
        return true;
      }, v.name);
    }
  });

  test("the path reader reports the same errors and closes the file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pocket-st-"));
    try {
      const valid = await readFixture(TINY);
      for (const v of corruptVariants(valid).filter((v) => !v.needsConfig)) {
        const p = join(dir, "bad.safetensors");
        await writeFile(p, v.bytes);
        await assert.rejects(openSafetensors(p), (e: unknown) => {
          assert.ok(e instanceof InvalidWeightsError, v.name);
          assert.match(e.message, v.expect, v.name);
          return true;
        });
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
