import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFixture } from "../support/fixtures.ts";
import { SentencePieceTokenizer } from "../../src/text/tokenizer.ts";
import { parseSentencePieceModel, PieceType } from "../../src/text/sentencepiece_model.ts";
import { splitIntoChunks } from "../../src/text/chunking.ts";
import { pyStrip } from "../../src/text/python_str.ts";
import { InvalidTextError } from "../../src/errors.ts";

const tokenizer = SentencePieceTokenizer.fromModel(await readFixture("text/tokenizer.model"));
const SPACE = "\u2581";

/** mulberry32: a small seeded PRNG, so every run checks the same 10 000 strings. */
function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const normalPieces: string[] = [];
for (let id = 0; id < tokenizer.vocabSize; id++) {
  if (tokenizer.pieceType(id) === PieceType.NORMAL) normalPieces.push(tokenizer.idToPiece(id));
}
/** Characters of the vocabulary (every one of them is also a single-character piece in this model). */
const vocabChars = new Set(normalPieces.flatMap((p) => Array.from(p)));

/** One random character (never a lone surrogate) from a mix of classes covering all 17 planes. */
function randomChar(random: () => number): string {
  const r = random();
  const int = (n: number) => Math.floor(random() * n);
  if (r < 0.3) return String.fromCharCode(0x20 + int(0x5f)); // printable ASCII
  if (r < 0.4) return " ";
  if (r < 0.45) return String.fromCharCode([int(0x20), 0x7f, 0x80 + int(0x20)][int(3)]); // C0, DEL, C1
  if (r < 0.5) return String.fromCharCode(0xa0 + int(0x1e0)); // Latin-1 and Latin Extended
  if (r < 0.6) {
    const cp = int(0x10000 - 0x800);
    return String.fromCharCode(cp < 0xd800 ? cp : cp + 0x800); // any BMP code point but surrogates
  }
  if (r < 0.7) return String.fromCodePoint(0x10000 * (1 + int(16)) + int(0x10000)); // planes 1–16
  if (r < 0.75) return String.fromCodePoint(0x1f300 + int(0x300)); // emoji
  if (r < 0.8) return [SPACE, "\ufffd", "\uffff", "\u{10ffff}", "\ufeff", "\u200b", "\u0301", "\u3000"][int(8)];
  return normalPieces[int(normalPieces.length)].replaceAll(SPACE, " "); // a vocabulary piece
}

const utf8 = new TextEncoder();

/**
 * An independent, deliberately naive unigram Viterbi over code points with sentencepiece's arithmetic (piece
 * candidates in double, stored path scores rounded to float32, UNK candidates in float32, strict `>`), then byte
 * fallback. It shares no code with the tokenizer (no trie, no byte buffer).
 */
const pieceIds = new Map<string, number>();
const pieceScores = new Map<string, number>();
let minScore = Infinity;
parseSentencePieceModel(await readFixture("text/tokenizer.model")).pieces.forEach((p, id) => {
  if (p.type !== PieceType.NORMAL) return;
  pieceIds.set(p.piece, id);
  pieceScores.set(p.piece, p.score);
  minScore = Math.min(minScore, p.score);
});
const unkScore = Math.fround(minScore - 10);

function naiveEncode(text: string): number[] {
  if (text === "") return [];
  const chars = Array.from(SPACE + text.replaceAll(" ", SPACE));
  const n = chars.length;
  const score = new Array<number>(n + 1).fill(0);
  const from = new Array<number>(n + 1).fill(-1);
  const piece = new Array<string | null>(n + 1).fill(null);
  for (let s = 0; s < n; s++) {
    let single = false;
    let candidatePiece = "";
    for (let len = 1; len <= 6 && s + len <= n; len++) {
      candidatePiece += chars[s + len - 1];
      const pieceScore = pieceScores.get(candidatePiece);
      if (pieceScore === undefined) continue;
      if (len === 1) single = true;
      const candidate = pieceScore + score[s];
      if (from[s + len] === -1 || candidate > score[s + len]) {
        score[s + len] = Math.fround(candidate);
        from[s + len] = s;
        piece[s + len] = candidatePiece;
      }
    }
    if (!single) {
      const candidate = Math.fround(unkScore + score[s]);
      if (from[s + 1] === -1 || candidate > score[s + 1]) {
        score[s + 1] = candidate;
        from[s + 1] = s;
        piece[s + 1] = null;
      }
    }
  }
  const ids: number[] = [];
  for (let e = n; e > 0; e = from[e]) {
    const p = piece[e];
    if (p !== null) ids.push(pieceIds.get(p)!);
    else for (const b of [...utf8.encode(chars[e - 1])].reverse()) ids.push(b + 4);
  }
  return ids.reverse();
}

describe("fuzz: 10 000 random strings over all Unicode planes", () => {
  const random = mulberry32(0x5eed);
  const inputs: string[] = [];
  for (let i = 0; i < 10_000; i++) {
    const length = Math.floor(random() * 40);
    let s = "";
    for (let k = 0; k < length; k++) s += randomChar(random);
    inputs.push(s);
  }

  test("every character of the model is a single-character piece (what the byte-count rule relies on)", () => {
    assert.equal(vocabChars.size, 113);
    for (const c of vocabChars) assert.equal(tokenizer.pieceType(tokenizer.pieceToId(c)), PieceType.NORMAL, c);
  });

  test("encode never throws, emits only NORMAL and BYTE ids, and bytes exactly for out-of-vocabulary characters", () => {
    for (const s of inputs) {
      const ids = tokenizer.encode(s);
      let byteCount = 0;
      for (const id of ids) {
        const type = tokenizer.pieceType(id);
        assert.ok(type === PieceType.NORMAL || type === PieceType.BYTE, `${JSON.stringify(s)}: id ${id}`);
        if (type === PieceType.BYTE) byteCount++;
      }
      let expectedBytes = 0;
      for (const c of s) {
        if (vocabChars.has(c === " " ? SPACE : c)) continue;
        const cp = c.codePointAt(0)!;
        expectedBytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
      }
      assert.equal(byteCount, expectedBytes, JSON.stringify(s));
    }
  });

  test("decode(encode(s)) is s with every ▁ turned into a space (the only lossy character)", () => {
    for (const s of inputs) {
      assert.equal(tokenizer.decode(tokenizer.encode(s)), s.replaceAll(SPACE, " "), JSON.stringify(s));
    }
  });

  test("the pieces concatenate to the normalized text (▁ + text with spaces escaped)", () => {
    for (const s of inputs.slice(0, 2000)) {
      if (s === "") continue;
      const bytes: number[] = [];
      for (const p of tokenizer.encodeAsPieces(s)) {
        const byte = /^<0x([0-9A-F]{2})>$/.exec(p);
        if (byte) bytes.push(parseInt(byte[1], 16));
        else bytes.push(...utf8.encode(p));
      }
      assert.deepEqual(bytes, [...utf8.encode(SPACE + s.replaceAll(" ", SPACE))], JSON.stringify(s));
    }
  });

  test("ids equal an independent naive Viterbi with sentencepiece's float32 arithmetic (first 4000 strings)", () => {
    for (const s of inputs.slice(0, 4000)) assert.deepEqual(tokenizer.encode(s), naiveEncode(s), JSON.stringify(s));
  });

  test("splitIntoChunks on random text: non-empty chunks, or the empty-text error (only blank text or with ▁)", () => {
    let rejected = 0;
    for (const s of inputs.slice(0, 2000)) {
      let chunks;
      try {
        chunks = splitIntoChunks(tokenizer, s, { maxTokens: 8 });
      } catch (e) {
        assert.ok(e instanceof InvalidTextError && e.code === "empty_text", `${JSON.stringify(s)}: ${e}`);
        assert.ok(pyStrip(s) === "" || s.includes(SPACE), JSON.stringify(s));
        rejected++;
        continue;
      }
      assert.notEqual(pyStrip(s), "", JSON.stringify(s));
      assert.ok(chunks.length >= 1, JSON.stringify(s));
      for (const chunk of chunks) {
        assert.ok(chunk.text.length > 0 && pyStrip(chunk.text) === chunk.text, JSON.stringify(s));
        assert.deepEqual(chunk.ids, tokenizer.encode(chunk.text));
        assert.equal(chunk.exceedsMaxTokens, chunk.ids.length > 8);
      }
    }
    assert.ok(rejected > 0 && rejected < 200, `${rejected} rejected`);
  });
});
