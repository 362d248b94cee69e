/**
 * Text front-end benchmarks: loading the tokenizer, tokenizing 1 MB of English prose (target ≥ 2 MB/s), and
 * chunking 100 kB of text (target: well under a second). Called by the benchmark harness through {@link run};
 * `deno run -A bench/text.ts` (or `bun bench/text.ts`) prints the results as JSON.
 *
 * The prose is the English text of the golden vectors (`tokenize.json` categories `ordinary` and `long`),
 * split into sentences and reassembled in a seeded random order until it reaches the target size.
 *
 * @module
 */

import { readFixture, readFixtureJson } from "../tests/support/fixtures.ts";
import { SentencePieceTokenizer } from "../src/text/tokenizer.ts";
import { splitIntoChunks } from "../src/text/chunking.ts";
import { type BenchResult, measure } from "./support.ts";

const utf8 = new TextEncoder();

/** English prose of about `bytes` UTF-8 bytes (cut at a character boundary, at most `bytes`). */
function englishProse(sentences: string[], bytes: number): string {
  let seed = 42;
  const random = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const parts: string[] = [];
  let size = 0;
  while (size < bytes) {
    const sentence = sentences[Math.floor(random() * sentences.length)];
    parts.push(sentence);
    size += utf8.encode(sentence).length + 1;
  }
  const text = parts.join(" ");
  // All sentences are ASCII-dominated; trim by bytes without splitting a character.
  let cut = text;
  while (utf8.encode(cut).length > bytes) cut = cut.slice(0, cut.length - Math.max(1, utf8.encode(cut).length - bytes));
  return cut;
}

/** Runs the text benchmarks and returns their results. */
export async function run(): Promise<BenchResult[]> {
  const modelBytes = await readFixture("text/tokenizer.model");
  const golden = await readFixtureJson<{ cases: { category: string; text: string }[] }>("text/tokenize.json");
  const english = golden.cases
    .filter((c) => c.category === "ordinary" || c.category === "long")
    .map((c) => c.text)
    .filter((t) => [...t].filter((ch) => ch.charCodeAt(0) < 0x80).length >= 0.98 * [...t].length);
  const sentences = english.flatMap((t) => t.split(/(?<=[.!?])\s+/)).filter((s) => s.length > 0);

  const results: BenchResult[] = [];

  let tokenizer = SentencePieceTokenizer.fromModel(modelBytes);
  const load = measure(() => {
    tokenizer = SentencePieceTokenizer.fromModel(modelBytes);
  });
  results.push({ name: "text.load_model", ...load, unit: "ms", pieces: tokenizer.vocabSize });

  const megabyte = englishProse(sentences, 1_000_000);
  const megabyteBytes = utf8.encode(megabyte).length;
  let tokens = 0;
  const tokenize = measure(() => {
    tokens = tokenizer.encode(megabyte).length;
  });
  results.push({
    name: "text.tokenize_1mb",
    ...tokenize,
    unit: "ms",
    mb_per_s: megabyteBytes / 1e6 / (tokenize.median / 1000),
    bytes: megabyteBytes,
    tokens,
  });

  const hundredKb = englishProse(sentences, 100_000);
  let chunks = 0;
  const chunk = measure(() => {
    chunks = splitIntoChunks(tokenizer, hundredKb).length;
  });
  results.push({ name: "text.chunk_100kb", ...chunk, unit: "ms", bytes: utf8.encode(hundredKb).length, chunks });

  return results;
}

if (import.meta.main) {
  console.log(JSON.stringify(await run(), null, 2));
}
