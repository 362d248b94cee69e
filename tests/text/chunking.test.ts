import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFixture, readFixtureJson } from "../support/fixtures.ts";
import { SentencePieceTokenizer } from "../../src/text/tokenizer.ts";
import { prepareText } from "../../src/text/prepare.ts";
import { pyStrip } from "../../src/text/python_str.ts";
import {
  fallbackSplitIds,
  findBoundaryIndices,
  packSegments,
  refineOversizedSegments,
  segmentsFromBoundaries,
  sentenceEndIds,
  splitIntoChunks,
} from "../../src/text/chunking.ts";
import { InvalidTextError } from "../../src/errors.ts";

interface GoldenSegment {
  token_count: number;
  text: string;
}
interface GoldenChunk {
  text: string;
  token_count: number;
  ids: number[];
  retokenized_count: number;
  exceeds_max_tokens: boolean;
  max_gen_len: number;
  frames_after_eos: number;
}
interface ChunkCase {
  id: string;
  category: string;
  text: string;
  max_tokens: number;
  pad_with_spaces_for_short_inputs: boolean;
  remove_semicolons: boolean;
  ok: boolean;
  error?: string;
  prepared_text: string;
  prepared_ids: number[];
  sentence_boundaries: number[];
  segments: GoldenSegment[];
  refined_segments: GoldenSegment[];
  chunks: GoldenChunk[];
  warnings: string[];
}

const golden = await readFixtureJson<{ end_of_sentence_ids: number[]; fallback_ids: number[]; cases: ChunkCase[] }>(
  "text/chunking.json",
);
const tokenizer = SentencePieceTokenizer.fromModel(await readFixture("text/tokenizer.model"));
const toGolden = (s: { tokenCount: number; text: string }): GoldenSegment => ({
  token_count: s.tokenCount,
  text: s.text,
});

describe("splitIntoChunks matches split_into_best_sentences (chunking.json)", () => {
  test("has the 98 cases; boundary ids derive from the tokenizer", () => {
    assert.equal(golden.cases.length, 98);
    assert.deepEqual(sentenceEndIds(tokenizer), golden.end_of_sentence_ids);
    assert.deepEqual(fallbackSplitIds(tokenizer), golden.fallback_ids);
  });

  for (const category of [...new Set(golden.cases.map((c) => c.category))]) {
    test(`category ${category}: every intermediate value and the chunks`, () => {
      for (const c of golden.cases.filter((c) => c.category === category)) {
        const label = `${c.id} ${JSON.stringify(c.text.slice(0, 50))} max=${c.max_tokens}`;
        const options = {
          maxTokens: c.max_tokens,
          padWithSpacesForShortInputs: c.pad_with_spaces_for_short_inputs,
          removeSemicolons: c.remove_semicolons,
        };
        if (!c.ok) {
          assert.throws(() => splitIntoChunks(tokenizer, c.text, options), (e: unknown) => {
            assert.ok(e instanceof InvalidTextError, label);
            assert.equal(e.message, c.error, label);
            return true;
          });
          continue;
        }
        // Intermediate values, step by step.
        const prepared = pyStrip(prepareText(c.text, options).text);
        assert.equal(prepared, c.prepared_text, label);
        const ids = tokenizer.encode(prepared);
        assert.deepEqual(ids, c.prepared_ids, label);
        const boundaries = findBoundaryIndices(ids, sentenceEndIds(tokenizer));
        assert.deepEqual(boundaries, c.sentence_boundaries, label);
        const segments = segmentsFromBoundaries(tokenizer, ids, boundaries);
        assert.deepEqual(segments.map(toGolden), c.segments, label);
        const refined = refineOversizedSegments(tokenizer, segments, c.max_tokens);
        assert.deepEqual(refined.map(toGolden), c.refined_segments, label);
        assert.deepEqual(
          packSegments(refined, c.max_tokens).map(toGolden),
          c.chunks.map((k) => ({ token_count: k.token_count, text: k.text })),
          label,
        );

        // The public result.
        const warnings: string[] = [];
        const chunks = splitIntoChunks(tokenizer, c.text, { ...options, onWarning: (m) => warnings.push(m) });
        assert.deepEqual(
          chunks,
          c.chunks.map((k) => ({
            text: k.text,
            tokenCount: k.token_count,
            ids: k.ids,
            maxGenLen: k.max_gen_len,
            framesAfterEos: k.frames_after_eos,
            exceedsMaxTokens: k.exceeds_max_tokens,
          })),
          label,
        );
        assert.ok(c.chunks.every((k) => k.retokenized_count === k.ids.length), label);
        assert.deepEqual(warnings, c.warnings, label);
      }
    });
  }

  test("the default budget is 50 tokens", () => {
    const c = golden.cases.find((c) => c.max_tokens === 50 && c.ok && c.chunks.length > 1)!;
    assert.deepEqual(splitIntoChunks(tokenizer, c.text).map((k) => k.text), c.chunks.map((k) => k.text));
  });
});

describe("splitIntoChunks beyond the golden cases", () => {
  test("a chunk that decodes to whitespace only (literal U+2581) is a typed empty-text error", () => {
    for (const text of ["\u2581", "\u2581 \u2581"]) {
      assert.throws(() => splitIntoChunks(tokenizer, text), (e: unknown) => {
        assert.ok(e instanceof InvalidTextError);
        assert.equal(e.code, "empty_text");
        assert.match(e.message, /chunk 1 of 1 decodes to whitespace only/);
        return true;
      });
    }
  });
});
