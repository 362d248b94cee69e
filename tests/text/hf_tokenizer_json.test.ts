import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFixture, readFixtureJson } from "../support/fixtures.ts";
import { parseSentencePieceModel, PieceType } from "../../src/text/sentencepiece_model.ts";
import { SentencePieceTokenizer } from "../../src/text/tokenizer.ts";
import { InvalidTokenizerError } from "../../src/errors.ts";

interface EncodeCase {
  id: string;
  text: string;
  ids: number[];
  decoded: string;
}
const golden = await readFixtureJson<
  { cases: EncodeCase[]; decode_cases: { id: string; ids: number[]; text: string }[] }
>(
  "text/tokenize.json",
);
const modelBytes = await readFixture("text/tokenizer.model");
const fromModel = SentencePieceTokenizer.fromModel(modelBytes);

/**
 * Converts the golden `.model` into the `tokenizer.json` a SentencePiece → `tokenizers` converter writes for a
 * byte-fallback unigram model (the Llama layout): the vocab as `[piece, score]` pairs, `unk_id`, `byte_fallback`,
 * CONTROL and UNKNOWN pieces as special added tokens, and a `Prepend("▁")` + `Replace(" ", "▁")` normalizer.
 * Format differences: `tokenizer.json` has no piece types (they are inferred back), no trainer spec (the
 * unknown surface is SentencePiece's default `" ⁇ "`), and a `decoder` section that is ignored (decoding follows
 * SentencePiece).
 */
function convertModelToTokenizerJson(bytes: Uint8Array, pre?: Record<string, unknown>): Record<string, unknown> {
  const proto = parseSentencePieceModel(bytes);
  const special = (type: number) => type === PieceType.CONTROL || type === PieceType.UNKNOWN;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: proto.pieces.flatMap((p, id) =>
      special(p.type)
        ? [{ id, content: p.piece, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }]
        : []
    ),
    normalizer: pre ? null : {
      type: "Sequence",
      normalizers: [{ type: "Prepend", prepend: "\u2581" }, {
        type: "Replace",
        pattern: { String: " " },
        content: "\u2581",
      }],
    },
    pre_tokenizer: pre ?? null,
    post_processor: null,
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "\u2581" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "Unigram",
      unk_id: proto.pieces.findIndex((p) => p.type === PieceType.UNKNOWN),
      vocab: proto.pieces.map((p) => [p.piece, p.score]),
      byte_fallback: proto.trainerSpec.byteFallback,
    },
  };
}

function assertInvalid(json: unknown, pattern: RegExp): void {
  assert.throws(() => SentencePieceTokenizer.fromTokenizerJson(json as string), (e: unknown) => {
    assert.ok(e instanceof InvalidTokenizerError, `expected InvalidTokenizerError, got ${e}`);
    assert.match(e.message, pattern);
    return true;
  });
}

describe("Hugging Face tokenizer.json (Unigram)", () => {
  const jsonText = JSON.stringify(convertModelToTokenizerJson(modelBytes));
  const fromJson = SentencePieceTokenizer.fromTokenizerJson(jsonText);

  test("the converted file gives the same vocabulary, types and boundary ids as the .model", () => {
    assert.equal(fromJson.vocabSize, fromModel.vocabSize);
    for (let id = 0; id < fromModel.vocabSize; id++) {
      assert.equal(fromJson.idToPiece(id), fromModel.idToPiece(id));
      assert.equal(fromJson.pieceType(id), fromModel.pieceType(id), `type of id ${id}`);
    }
    assert.deepEqual(fromJson.encode(".!...?"), fromModel.encode(".!...?"));
  });

  test("identical ids, pieces and decodes on all 531 golden encode cases (text, bytes and object input)", () => {
    const fromBytes = SentencePieceTokenizer.fromTokenizerJson(new TextEncoder().encode(jsonText));
    const fromObject = SentencePieceTokenizer.fromTokenizerJson(JSON.parse(jsonText));
    for (const c of golden.cases) {
      assert.deepEqual(fromJson.encode(c.text), c.ids, c.id);
      assert.equal(fromJson.decode(c.ids), c.decoded, c.id);
      assert.deepEqual(fromBytes.encode(c.text), c.ids, c.id);
      assert.deepEqual(fromObject.encode(c.text), c.ids, c.id);
    }
    for (const c of golden.decode_cases) assert.equal(fromJson.decode(c.ids), c.text, c.id);
  });

  test("Metaspace(split: false): same ids, except no extra ▁ before a leading space (tokenizers' rule)", () => {
    const metaspace = SentencePieceTokenizer.fromTokenizerJson(
      convertModelToTokenizerJson(modelBytes, {
        type: "Metaspace",
        replacement: "\u2581",
        prepend_scheme: "always",
        split: false,
      }),
    );
    let leading = 0;
    for (const c of golden.cases) {
      if (c.text.startsWith(" ") || c.text.startsWith("\u2581")) {
        // "▁" + " A" would be "▁▁A" in SentencePiece; Metaspace gives "▁A", which is how the .model encodes "A".
        const rest = c.text.slice(1);
        const expected = rest === "" ? [fromModel.pieceToId("\u2581")] : fromModel.encode(rest);
        assert.deepEqual(metaspace.encode(c.text), expected, c.id);
        leading++;
      } else {
        assert.deepEqual(metaspace.encode(c.text), c.ids, c.id);
      }
    }
    assert.ok(leading >= 5, `only ${leading} golden cases start with a space`);
  });

  test("Prepend + Replace normalizer followed by Metaspace(split: false) keeps SentencePiece's dummy prefix", () => {
    const json = convertModelToTokenizerJson(modelBytes);
    json.pre_tokenizer = { type: "Metaspace", replacement: "\u2581", prepend_scheme: "always", split: false };
    const both = SentencePieceTokenizer.fromTokenizerJson(json);
    for (const text of [" A", "  the end", "\u2581x", "plain"]) {
      assert.deepEqual(both.encode(text), fromModel.encode(text));
    }
  });

  test("Metaspace(split: true) segments each ▁-led word on its own", () => {
    const split = SentencePieceTokenizer.fromTokenizerJson(
      convertModelToTokenizerJson(modelBytes, { type: "Metaspace", replacement: "\u2581", prepend_scheme: "always" }),
    );
    for (const text of ["Hello world, this is a test.", "Hmmm... well", "a  b", "The 2 quick brown foxes!"]) {
      const words = ("\u2581" + text.replaceAll(" ", "\u2581")).split(/(?=\u2581)/u);
      // Each word "▁xyz" is what the .model makes of "xyz"; a lone "▁" word is the "▁" piece.
      const expected = words.flatMap((w) => w === "\u2581" ? [fromModel.pieceToId(w)] : fromModel.encode(w.slice(1)));
      assert.deepEqual(split.encode(text), expected, text);
    }
  });

  test("invalid or unsupported files give InvalidTokenizerError naming the problem", () => {
    const base = () => JSON.parse(jsonText);
    assertInvalid("{not json", /not valid JSON/);
    assertInvalid(new Uint8Array([0xff, 0xfe]), /not valid UTF-8/);
    assertInvalid("[]", /top level is not a JSON object/);
    assertInvalid({ ...base(), model: undefined }, /no "model" object/);
    assertInvalid({ ...base(), model: { type: "BPE", vocab: {}, merges: [] } }, /model type "BPE" is not supported/);
    assertInvalid({ ...base(), model: { ...base().model, vocab: [] } }, /vocab is missing or empty/);
    assertInvalid({ ...base(), model: { ...base().model, unk_id: null } }, /unk_id null/);
    assertInvalid({ ...base(), model: { ...base().model, vocab: [["a", "x"]], unk_id: 0 } }, /vocab\[0\] is not a/);
    assertInvalid({ ...base(), normalizer: { type: "NFKC" } }, /normalizer "NFKC" is not supported/);
    assertInvalid({ ...base(), normalizer: { type: "Precompiled", precompiled_charsmap: "AAAA" } }, /Precompiled/);
    assertInvalid({ ...base(), pre_tokenizer: { type: "Whitespace" } }, /pre-tokenizer "Whitespace"/);
    assertInvalid({ ...base(), added_tokens: [{ id: 5, content: "<s>", special: true }] }, /says id 5 is "<s>"/);
    assertInvalid(
      { ...base(), added_tokens: [{ id: 4000, content: "<x>", special: true }] },
      /outside the Unigram vocab/,
    );
    const noBytes = base();
    noBytes.model.vocab = noBytes.model.vocab.filter((v: [string, number]) => v[0] !== "<0x41>");
    assertInvalid(noBytes, /only 255 of the 256 byte pieces/);
  });
});
