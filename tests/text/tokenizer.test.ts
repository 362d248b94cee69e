import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFixture, readFixtureJson } from "../support/fixtures.ts";
import { SentencePieceTokenizer } from "../../src/text/tokenizer.ts";
import { PieceType } from "../../src/text/sentencepiece_model.ts";
import { InvalidTextError, InvalidTokenIdError } from "../../src/errors.ts";

interface EncodeCase {
  id: string;
  category: string;
  text: string;
  ids: number[];
  pieces: string[];
  decoded: string;
}
interface DecodeCase {
  id: string;
  category: string;
  ids: number[];
  text: string;
}

const golden = await readFixtureJson<{ cases: EncodeCase[]; decode_cases: DecodeCase[] }>("text/tokenize.json");
const chunking = await readFixtureJson<{ end_of_sentence_ids: number[]; fallback_ids: number[] }>(
  "text/chunking.json",
);
const tokenizer = SentencePieceTokenizer.fromModel(await readFixture("text/tokenizer.model"));

describe("SentencePieceTokenizer on the golden tokenizer.model (tokenize.json)", () => {
  test("vocabulary: 4000 pieces with the documented types and ids", () => {
    assert.equal(tokenizer.vocabSize, 4000);
    assert.equal(tokenizer.unkId, 0);
    assert.equal(tokenizer.idToPiece(0), "<unk>");
    assert.equal(tokenizer.pieceType(0), PieceType.UNKNOWN);
    for (const id of [1, 2, 3]) assert.equal(tokenizer.pieceType(id), PieceType.CONTROL);
    for (let b = 0; b < 256; b++) {
      const piece = `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
      assert.equal(tokenizer.pieceToId(piece), b + 4);
      assert.equal(tokenizer.pieceType(b + 4), PieceType.BYTE);
    }
    for (let id = 260; id < 4000; id++) assert.equal(tokenizer.pieceType(id), PieceType.NORMAL);
    assert.equal(tokenizer.pieceToId("\u2581"), 260);
    assert.equal(tokenizer.pieceToId("..."), 522);
    assert.equal(tokenizer.pieceToId("no such piece"), 0);
    assert.throws(() => tokenizer.idToPiece(4000), InvalidTokenIdError);
    assert.throws(() => tokenizer.idToPiece(-1), InvalidTokenIdError);
    assert.throws(() => tokenizer.idToPiece(1.5), InvalidTokenIdError);
  });

  test('boundary ids come from tokenizing ".!...?" and ",;:" as the reference does', () => {
    assert.deepEqual(tokenizer.encode(".!...?").slice(1), chunking.end_of_sentence_ids);
    assert.deepEqual(tokenizer.encode(",;:").slice(1), chunking.fallback_ids);
  });

  test("has the 531 encode and 26 decode cases", () => {
    assert.equal(golden.cases.length, 531);
    assert.equal(golden.decode_cases.length, 26);
  });

  for (const category of [...new Set(golden.cases.map((c) => c.category))]) {
    test(`encode, pieces and decode: ${category}`, () => {
      for (const c of golden.cases.filter((c) => c.category === category)) {
        const label = `${c.id} ${JSON.stringify(c.text.slice(0, 60))}`;
        assert.deepEqual(tokenizer.encode(c.text), c.ids, label);
        assert.deepEqual(tokenizer.encodeAsPieces(c.text), c.pieces, label);
        assert.equal(tokenizer.decode(c.ids), c.decoded, label);
        for (let i = 0; i < c.ids.length; i++) assert.equal(tokenizer.idToPiece(c.ids[i]), c.pieces[i], label);
      }
    });
  }

  test("decode corner cases (decode_cases)", () => {
    for (const c of golden.decode_cases) {
      assert.equal(tokenizer.decode(c.ids), c.text, `${c.id} ${c.category} ${JSON.stringify(c.ids)}`);
    }
  });

  test("decode rejects ids outside the vocabulary with a typed error", () => {
    assert.throws(() => tokenizer.decode([260, 4000]), (e: unknown) => {
      assert.ok(e instanceof InvalidTokenIdError);
      assert.equal(e.code, "invalid_token_id");
      assert.equal(e.id, 4000);
      return true;
    });
    assert.throws(() => tokenizer.decode([-3]), InvalidTokenIdError);
  });

  test("encode rejects lone surrogates (they have no UTF-8 form) with a typed error", () => {
    for (const text of ["a\ud800b", "\udc00", "x\ud83d"]) {
      assert.throws(() => tokenizer.encode(text), (e: unknown) => {
        assert.ok(e instanceof InvalidTextError);
        assert.equal(e.code, "invalid_text");
        assert.match(e.message, /lone surrogate/);
        return true;
      });
    }
    assert.deepEqual(tokenizer.encode(""), []);
  });

  test("scratch buffers are reused safely: a long then a short input gives the same ids as a fresh tokenizer", () => {
    const long = golden.cases.find((c) => c.category === "long")!;
    const short = golden.cases.find((c) => c.category === "ordinary")!;
    assert.deepEqual(tokenizer.encode(long.text), long.ids);
    assert.deepEqual(tokenizer.encode(short.text), short.ids);
    assert.deepEqual(tokenizer.encode(long.text), long.ids);
  });
});
