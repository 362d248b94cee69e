/**
 * Reading a Hugging Face `tokenizer.json` whose model is `Unigram` into the same {@link UnigramModelSpec} a
 * SentencePiece `.model` gives, so that both formats tokenize with SentencePiece's exact semantics.
 *
 * How the JSON maps onto SentencePiece:
 * - `model.vocab` `[[piece, score], …]` gives the pieces in id order; scores are rounded to float32, which is
 *   exact for a file converted from a `.model` (its scores are float32 values printed as doubles).
 * - Piece types are not stored in `tokenizer.json`; they are inferred: `model.unk_id` is UNKNOWN, an
 *   `added_tokens` entry with `special: true` is CONTROL (`special: false`: USER_DEFINED), `<0xNN>` pieces are
 *   BYTE when `model.byte_fallback` is true, everything else is NORMAL. (UNUSED pieces cannot be expressed.)
 * - Normalization: `Prepend("▁")` is the dummy prefix and `Replace(" ", "▁")` the whitespace escaping (the
 *   converted-Llama layout); a `Metaspace` pre-tokenizer is both, with its own rules (below). `Precompiled` with
 *   an empty charsmap is accepted as identity; anything else (NFKC, Lowercase, Strip, …) is rejected.
 * - `decoder` and `post_processor` are ignored: decoding follows SentencePiece, and no BOS/EOS is added (the
 *   reference calls `encode` without them).
 *
 * Where the `tokenizers` library itself gives different ids from SentencePiece on the same pieces (measured in
 * the golden README: 47 of 632 cases), this module deliberately follows SentencePiece:
 * - `tokenizers` keeps Viterbi path scores in f64, so ties between equal-scoring segmentations (`mm+m` vs
 *   `m+mm`) can break differently; here path scores are float32 as in sentencepiece 0.1.97.
 * - `tokenizers` matches added/special tokens (`<s>`, `</s>`, `<unk>`, `<pad>`, `<0x41>`) literally in the input
 *   text; SentencePiece never matches CONTROL, UNKNOWN or BYTE pieces from text, and neither does this reader.
 * - `tokenizers`' unknown-score floor is the minimum over the whole vocab (SentencePiece: NORMAL pieces only);
 *   identical whenever some NORMAL piece scores below every other piece, as in trained models.
 * - Decoding: `tokenizers` turns `[<0x20>, ▁the]` into `" the"` and prints `<unk>` for the unknown token;
 *   SentencePiece (and this reader) gives `"  the"` and `" ⁇ "`.
 * Metaspace keeps its own semantics where they differ from a `.model`: with `prepend_scheme` `always`/`first`
 * (or legacy `add_prefix_space: true`) no `▁` is prepended when the text already starts with a space or `▁`,
 * and `split: true` segments each `▁`-led word separately.
 *
 * @module
 */

import { InvalidTokenizerError } from "../errors.ts";
import { PieceType, type UnigramModelSpec } from "./sentencepiece_model.ts";

const SOURCE = "tokenizer.json";
const SPACE_SYMBOL = "\u2581";
const BYTE_PIECE = /^<0x[0-9A-F]{2}>$/;
const DEFAULT_UNK_SURFACE = " \u2047 ";

type Json = Record<string, unknown>;

function fail(problem: string, cause?: unknown): never {
  throw new InvalidTokenizerError(`invalid ${SOURCE}: ${problem}`, cause);
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

interface Normalization {
  addDummyPrefix: boolean;
  dummyPrefixOnLeadingSpace: boolean;
  escapeWhitespaces: boolean;
  splitOnSpaceSymbol: boolean;
}

function readNormalizer(node: unknown, path: string, into: Normalization): void {
  if (node === null || node === undefined) return;
  if (!isObject(node)) fail(`${path} is not an object`);
  switch (node.type) {
    case "Sequence": {
      const list = node.normalizers;
      if (!Array.isArray(list)) fail(`${path}.normalizers is not an array`);
      list.forEach((child, i) => readNormalizer(child, `${path}.normalizers[${i}]`, into));
      return;
    }
    case "Prepend":
      if (node.prepend !== SPACE_SYMBOL) fail(`${path}: Prepend(${JSON.stringify(node.prepend)}) is not supported`);
      into.addDummyPrefix = true;
      return;
    case "Replace": {
      const pattern = node.pattern;
      if (!isObject(pattern) || pattern.String !== " " || node.content !== SPACE_SYMBOL) {
        fail(`${path}: only Replace(" ", "▁") is supported, got ${JSON.stringify(node)}`);
      }
      into.escapeWhitespaces = true;
      return;
    }
    case "Precompiled": {
      const charsmap = node.precompiled_charsmap;
      if (
        charsmap === null || charsmap === undefined || charsmap === "" ||
        (Array.isArray(charsmap) && charsmap.length === 0)
      ) return;
      return fail(`${path}: a Precompiled normalizer with a charsmap (NFKC etc.) is not supported`);
    }
    default:
      fail(`${path}: normalizer ${JSON.stringify(node.type)} is not supported`);
  }
}

function readPreTokenizer(node: unknown, path: string, into: Normalization): void {
  if (node === null || node === undefined) return;
  if (!isObject(node)) fail(`${path} is not an object`);
  if (node.type === "Sequence") {
    const list = node.pretokenizers;
    if (!Array.isArray(list)) fail(`${path}.pretokenizers is not an array`);
    list.forEach((child, i) => readPreTokenizer(child, `${path}.pretokenizers[${i}]`, into));
    return;
  }
  if (node.type !== "Metaspace") fail(`${path}: pre-tokenizer ${JSON.stringify(node.type)} is not supported`);
  if (node.replacement !== undefined && node.replacement !== SPACE_SYMBOL) {
    fail(`${path}: Metaspace replacement ${JSON.stringify(node.replacement)} is not supported`);
  }
  const scheme = node.prepend_scheme ?? (node.add_prefix_space === false ? "never" : "always");
  if (scheme !== "always" && scheme !== "first" && scheme !== "never") {
    fail(`${path}: unknown Metaspace prepend_scheme ${JSON.stringify(scheme)}`);
  }
  into.escapeWhitespaces = true;
  // After a `Prepend("▁")` normalizer the text always starts with `▁`, so Metaspace never prepends another.
  if (scheme !== "never" && !into.addDummyPrefix) {
    into.addDummyPrefix = true;
    into.dummyPrefixOnLeadingSpace = false;
  }
  // `split` defaults to true in `tokenizers`' Metaspace.
  into.splitOnSpaceSymbol = node.split !== false;
}

/**
 * Converts a Hugging Face `tokenizer.json` with a `Unigram` model into a {@link UnigramModelSpec}. See the
 * module documentation for the mapping and for where `tokenizers` itself would tokenize differently.
 *
 * @param input the file's text or bytes, or the parsed object
 * @returns the spec
 * @throws {InvalidTokenizerError} when the JSON is malformed, the model is not Unigram, or a normalizer or
 *   pre-tokenizer is not supported
 */
export function unigramSpecFromTokenizerJson(
  input: string | Uint8Array | Record<string, unknown>,
): UnigramModelSpec {
  let root: unknown = input;
  if (input instanceof Uint8Array) {
    try {
      root = new TextDecoder("utf-8", { fatal: true }).decode(input);
    } catch (cause) {
      fail("the file is not valid UTF-8", cause);
    }
  }
  if (typeof root === "string") {
    try {
      root = JSON.parse(root);
    } catch (cause) {
      fail(`not valid JSON (${(cause as Error).message})`, cause);
    }
  }
  if (!isObject(root)) fail("the top level is not a JSON object");
  const model = root.model;
  if (!isObject(model)) fail('no "model" object');
  if (model.type !== "Unigram") {
    fail(`model type ${JSON.stringify(model.type)} is not supported; only "Unigram" is`);
  }
  const vocab = model.vocab;
  if (!Array.isArray(vocab) || vocab.length === 0) fail("model.vocab is missing or empty");
  const n = vocab.length;
  const unkId = model.unk_id;
  if (typeof unkId !== "number" || !Number.isInteger(unkId) || unkId < 0 || unkId >= n) {
    fail(`model.unk_id ${JSON.stringify(unkId)} is not an id in the vocab (SentencePiece requires an unknown piece)`);
  }
  const byteFallback = model.byte_fallback === true;

  const spec: UnigramModelSpec = {
    pieces: new Array<string>(n),
    scores: new Float32Array(n),
    types: new Uint8Array(n),
    byteFallback,
    unkSurface: DEFAULT_UNK_SURFACE,
    addDummyPrefix: false,
    dummyPrefixOnLeadingSpace: true,
    removeExtraWhitespaces: false,
    escapeWhitespaces: false,
    splitOnSpaceSymbol: false,
    source: SOURCE,
  };
  for (let id = 0; id < n; id++) {
    const entry = vocab[id];
    if (!Array.isArray(entry) || typeof entry[0] !== "string" || typeof entry[1] !== "number") {
      fail(`model.vocab[${id}] is not a [piece, score] pair`);
    }
    spec.pieces[id] = entry[0];
    spec.scores[id] = entry[1];
    spec.types[id] = id === unkId
      ? PieceType.UNKNOWN
      : byteFallback && BYTE_PIECE.test(entry[0])
      ? PieceType.BYTE
      : PieceType.NORMAL;
  }

  const added = root.added_tokens ?? [];
  if (!Array.isArray(added)) fail("added_tokens is not an array");
  added.forEach((token, i) => {
    if (!isObject(token) || typeof token.id !== "number" || typeof token.content !== "string") {
      fail(`added_tokens[${i}] has no numeric id and string content`);
    }
    const id = token.id;
    if (!Number.isInteger(id) || id < 0 || id >= n) {
      fail(`added_tokens[${i}] (${JSON.stringify(token.content)}) has id ${id}, outside the Unigram vocab`);
    }
    if (spec.pieces[id] !== token.content) {
      fail(
        `added_tokens[${i}] says id ${id} is ${JSON.stringify(token.content)} but the vocab has ` +
          JSON.stringify(spec.pieces[id]),
      );
    }
    if (id === unkId || spec.types[id] === PieceType.BYTE) return;
    spec.types[id] = token.special === true ? PieceType.CONTROL : PieceType.USER_DEFINED;
  });

  const normalization: Normalization = {
    addDummyPrefix: false,
    dummyPrefixOnLeadingSpace: true,
    escapeWhitespaces: false,
    splitOnSpaceSymbol: false,
  };
  readNormalizer(root.normalizer, "normalizer", normalization);
  readPreTokenizer(root.pre_tokenizer, "pre_tokenizer", normalization);
  Object.assign(spec, normalization);
  return spec;
}
