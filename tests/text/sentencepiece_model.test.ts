import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFixture } from "../support/fixtures.ts";
import { parseSentencePieceModel, PieceType } from "../../src/text/sentencepiece_model.ts";
import { SentencePieceTokenizer } from "../../src/text/tokenizer.ts";
import { InvalidTokenizerError } from "../../src/errors.ts";

// --- A tiny protobuf writer, to build models with chosen fields present or absent. ---
function varint(n: number): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, BigInt(n));
  do {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v > 0n ? b | 0x80 : b);
  } while (v > 0n);
  return out;
}
const key = (field: number, wireType: number) => varint(field * 8 + wireType);
const int = (field: number, v: number) => [...key(field, 0), ...varint(v)];
const bytesField = (field: number, b: ArrayLike<number>) => [...key(field, 2), ...varint(b.length), ...Array.from(b)];
const str = (field: number, s: string) => bytesField(field, new TextEncoder().encode(s));
function float(field: number, f: number): number[] {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setFloat32(0, f, true);
  return [...key(field, 5), ...b];
}
/** A piece: [text, score?, type?]; absent score/type are not written. */
type PieceSpec = [string, number?, number?];
function piece([text, score, type]: PieceSpec): number[] {
  return bytesField(1, [
    ...str(1, text),
    ...(score === undefined ? [] : float(2, score)),
    ...(type ? int(3, type) : []),
  ]);
}
function model(pieces: PieceSpec[], trainer?: number[], normalizer?: number[]): Uint8Array {
  return new Uint8Array([
    ...pieces.flatMap(piece),
    ...(trainer ? bytesField(2, trainer) : []),
    ...(normalizer ? bytesField(3, normalizer) : []),
  ]);
}
/** A small vocabulary: <unk> plus letters, "▁", "▁a", "ab". */
const SMALL: PieceSpec[] = [
  ["<unk>", 0, PieceType.UNKNOWN],
  ["<s>", 0, PieceType.CONTROL],
  ["\u2581", -2],
  ["a", -3],
  ["b", -3],
  ["\u2581a", -2.5],
  ["ab", -4],
];
const IDENTITY = [...str(1, "identity"), ...int(3, 1), ...int(4, 0), ...int(5, 1)];

function assertInvalid(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(() => SentencePieceTokenizer.fromModel(bytes), (e: unknown) => {
    assert.ok(e instanceof InvalidTokenizerError, `expected InvalidTokenizerError, got ${e}`);
    assert.equal(e.code, "invalid_tokenizer");
    assert.match(e.message, pattern);
    return true;
  });
}

const goldenBytes = await readFixture("text/tokenizer.model");

describe("SentencePiece .model parsing", () => {
  test("the golden model's specs, as the README documents them", () => {
    const m = parseSentencePieceModel(goldenBytes);
    assert.equal(m.pieces.length, 4000);
    const t = m.trainerSpec;
    assert.equal(t.modelType, 1);
    assert.equal(t.vocabSize, 4000);
    assert.equal(t.byteFallback, true);
    assert.equal(t.splitDigits, true);
    assert.equal(t.maxSentencepieceLength, 6);
    assert.deepEqual([t.unkId, t.bosId, t.eosId, t.padId], [0, 1, 2, 3]);
    assert.equal(t.treatWhitespaceAsSuffix, false);
    assert.equal(t.unkSurface, " \u2047 "); // absent: the proto2 default
    const n = m.normalizerSpec;
    assert.equal(n.name, "identity");
    assert.equal(n.precompiledCharsmap.length, 0);
    assert.deepEqual([n.addDummyPrefix, n.removeExtraWhitespaces, n.escapeWhitespaces], [true, false, true]);
    assert.equal(m.denormalizerSpec, undefined);
    assert.equal(m.pieces.filter((p) => p.type === PieceType.NORMAL).length, 3740);
    assert.equal(m.pieces.filter((p) => p.type === PieceType.BYTE).length, 256);
  });

  test("pieces and scores agree with the trainer's tokenizer.vocab dump (6 significant digits)", async () => {
    const m = parseSentencePieceModel(goldenBytes);
    const lines = new TextDecoder().decode(await readFixture("text/tokenizer.vocab")).split("\n").filter((l) => l);
    assert.equal(lines.length, 4000);
    lines.forEach((line, id) => {
      const [text, score] = line.split("\t");
      assert.equal(m.pieces[id].piece, text, `id ${id}`);
      assert.equal(m.pieces[id].score, Math.fround(m.pieces[id].score), `id ${id} score is a float32`);
      assert.ok(
        Math.abs(m.pieces[id].score - Number(score)) <= 5e-6 * Math.max(1, Math.abs(Number(score))),
        `id ${id}`,
      );
    });
  });

  test("absent fields take proto2 defaults: type NORMAL, score 0, normalizer flags true", () => {
    const m = parseSentencePieceModel(model([["<unk>", undefined, PieceType.UNKNOWN], ["x"]]));
    assert.deepEqual(m.pieces[1], { piece: "x", score: 0, type: PieceType.NORMAL });
    assert.deepEqual(m.pieces[0].score, 0);
    assert.equal(m.trainerSpec.modelType, 1);
    assert.equal(m.trainerSpec.byteFallback, false);
    assert.equal(m.trainerSpec.padId, -1);
    assert.deepEqual(
      [m.normalizerSpec.addDummyPrefix, m.normalizerSpec.removeExtraWhitespaces, m.normalizerSpec.escapeWhitespaces],
      [true, true, true],
    );
  });

  test("negative int32 fields (10-byte varints) and unknown fields are read correctly", () => {
    const m = parseSentencePieceModel(
      model(SMALL, [...int(43, -1), ...int(41, -1), ...float(99, 1.5), ...str(100, "x"), ...int(40, 0)]),
    );
    assert.equal(m.trainerSpec.padId, -1);
    assert.equal(m.trainerSpec.bosId, -1);
    assert.equal(m.pieces.length, SMALL.length);
  });

  test("remove_extra_whitespaces (the proto default) strips and collapses spaces; encode and decode follow", () => {
    const tok = SentencePieceTokenizer.fromModel(model(SMALL));
    assert.deepEqual(tok.encode("  a   b  "), tok.encode("a b"));
    assert.deepEqual(tok.encode("   "), []);
    assert.equal(tok.decode(tok.encode("  a   b  ")), "a b");
    const identity = SentencePieceTokenizer.fromModel(model(SMALL, undefined, IDENTITY));
    assert.deepEqual(identity.encodeAsPieces(" a"), ["\u2581", "\u2581a"]);
    assert.equal(identity.decode(identity.encode(" a")), " a");
  });

  test("add_dummy_prefix=false and escape_whitespaces=false", () => {
    const noPrefix = SentencePieceTokenizer.fromModel(
      model(SMALL, undefined, [...int(3, 0), ...int(4, 0)]),
    );
    assert.deepEqual(noPrefix.encodeAsPieces("ab a"), ["ab", "\u2581a"]);
    const noEscape = SentencePieceTokenizer.fromModel(model(SMALL, undefined, [...int(4, 0), ...int(5, 0)]));
    // A raw space matches no piece; without byte fallback it is one <unk>, and decodes as " ⁇ ".
    assert.deepEqual(noEscape.encode("a b"), [5, 0, 4]);
    assert.equal(noEscape.decode([5, 0, 4]), "a \u2047 b");
  });

  test("without byte_fallback a run of unknown characters is one <unk> (pieces keep the text)", () => {
    const tok = SentencePieceTokenizer.fromModel(model(SMALL, undefined, IDENTITY));
    assert.deepEqual(tok.encode("a€😀b"), [5, 0, 4]);
    assert.deepEqual(tok.encodeAsPieces("a€😀b"), ["\u2581a", "€😀", "b"]);
    assert.equal(tok.decode(tok.encode("a€😀b")), "a \u2047 b");
  });

  test("USER_DEFINED pieces always win (length × FLT_MIN − 0.1 score); UNUSED pieces are never produced", () => {
    const pieces: PieceSpec[] = [...SMALL, ["ba", -30, PieceType.USER_DEFINED], ["\u2581ab", 0, PieceType.UNUSED]];
    const tok = SentencePieceTokenizer.fromModel(model(pieces, undefined, IDENTITY));
    assert.deepEqual(tok.encodeAsPieces("aba"), ["\u2581a", "ba"]);
    assert.deepEqual(tok.encodeAsPieces("ab"), ["\u2581a", "b"]);
  });

  test("a custom unk_surface is used by decode", () => {
    const tok = SentencePieceTokenizer.fromModel(model(SMALL, str(44, "<?>"), IDENTITY));
    assert.equal(tok.decode([0, 3]), "<?>a");
  });

  test("malformed or unsupported files give InvalidTokenizerError naming the problem", () => {
    assertInvalid(new Uint8Array(0), /no pieces/);
    assertInvalid(goldenBytes.subarray(0, 1000), /runs past the end|truncated/);
    assertInvalid(new Uint8Array([0x0a, 0x05, 0x0a]), /runs past the end/);
    assertInvalid(new Uint8Array([0x0b]), /wire type 3/);
    assertInvalid(new Uint8Array([0x48, 0xff]), /truncated varint/);
    assertInvalid(new Uint8Array([0x48, ...new Array(11).fill(0xff)]), /longer than 10 bytes/);
    assertInvalid(new Uint8Array([0x0d, 0, 0, 0, 0]), /ModelProto.pieces has wire type 5/);
    assertInvalid(model(SMALL, int(3, 2)), /model_type 2 \(BPE\)/);
    assertInvalid(model(SMALL, undefined, bytesField(2, [1, 2, 3])), /precompiled_charsmap/);
    assertInvalid(model(SMALL, int(24, 1)), /treat_whitespace_as_suffix/);
    assertInvalid(model(SMALL.slice(1)), /no UNKNOWN piece/);
    assertInvalid(model([...SMALL, ["<unk>", 0, PieceType.UNKNOWN]]), /defined twice/);
    assertInvalid(model([...SMALL, ["a", -1]]), /"a" is defined twice/);
    assertInvalid(model([...SMALL, ["", -1]]), /piece 7 is empty/);
    assertInvalid(model([...SMALL, ["x", -1, 9]]), /unknown type 9/);
    assertInvalid(model([...SMALL, ["<0x41>", 0, PieceType.BYTE]]), /byte_fallback is off/);
    assertInvalid(model([...SMALL, ["<0x41>", 0, PieceType.BYTE]], int(35, 1)), /only 1 of the 256 byte pieces/);
    assertInvalid(model([...SMALL, ["<0x4g>", 0, PieceType.BYTE]], int(35, 1)), /expected <0xNN>/);
    assertInvalid(new Uint8Array([...bytesField(1, [...bytesField(1, [0xff, 0xfe])])]), /not valid UTF-8/);
    assert.throws(() => SentencePieceTokenizer.fromModel("model" as unknown as Uint8Array), InvalidTokenizerError);
  });

  test("truncated and corrupted copies of the golden model never throw anything but InvalidTokenizerError", () => {
    let seed = 12345;
    const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    let rejected = 0;
    for (let i = 0; i < 200; i++) {
      const bytes = goldenBytes.slice(0, i < 80 ? Math.floor(random() * goldenBytes.length) : goldenBytes.length);
      if (i >= 80) {
        for (let k = 0; k < 4; k++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      }
      try {
        SentencePieceTokenizer.fromModel(bytes).encode("Hello world, ça va? 😀");
      } catch (e) {
        assert.ok(e instanceof InvalidTokenizerError, `case ${i}: ${e}`);
        rejected++;
      }
    }
    assert.ok(rejected >= 80, `only ${rejected} of 200 corrupted files were rejected`);
  });
});
