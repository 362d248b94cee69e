/**
 * SentencePiece unigram tokenizer, reproducing `sentencepiece` 0.1.97 (the reference's tokenizer) id for id:
 * identity normalization with `▁` escaping and a dummy prefix, the `EncodeOptimized` Viterbi with its float32
 * path scores and strict-`>` tie-breaking, UTF-8 byte fallback, and `Decode` with its handling of byte pieces
 * and of the leading `▁`.
 *
 * @module
 */

import { InvalidTextError, InvalidTokenIdError, InvalidTokenizerError } from "../errors.ts";
import { unigramSpecFromTokenizerJson } from "./hf_tokenizer_json.ts";
import { PieceTrie } from "./piece_trie.ts";
import {
  parseSentencePieceModel,
  PieceType,
  type PieceTypeValue,
  type UnigramModelSpec,
  unigramSpecFromModelProto,
} from "./sentencepiece_model.ts";
import { decodeUtf8PerByteReplacement, findLoneSurrogate } from "./utf8.ts";

const SPACE_SYMBOL = "\u2581";
/** UTF-8 of `▁` (U+2581). */
const SP0 = 0xe2, SP1 = 0x96, SP2 = 0x81;
/** SentencePiece's `kUnkPenalty`. */
const UNK_PENALTY = 10;
/** C's `FLT_MAX` and `FLT_MIN` (the smallest normal float32), sentencepiece's initial min/max scores. */
const FLT_MAX = 3.4028234663852886e38;
const FLT_MIN = 1.1754943508222875e-38;
const BYTE_PIECE = /^<0x([0-9A-F]{2})>$/;

/** How a matchable piece scores in the Viterbi (0: by its own score). */
const MATCH_USER_DEFINED = 1, MATCH_UNUSED = 2;

const utf8Encoder = new TextEncoder();

/**
 * A SentencePiece unigram tokenizer.
 *
 * @example
 * ```ts
 * const tokenizer = SentencePieceTokenizer.fromModel(await Deno.readFile("tokenizer.model"));
 * const ids = tokenizer.encode("Hello world.");
 * tokenizer.decode(ids); // "Hello world."
 * ```
 */
export class SentencePieceTokenizer {
  readonly #pieces: string[];
  readonly #types: Uint8Array;
  readonly #scores: Float64Array;
  readonly #matchKind: Uint8Array;
  readonly #byteOfPiece: Int16Array;
  readonly #decodeAs: Int32Array;
  readonly #byteIds: Int32Array = new Int32Array(256);
  readonly #normalIds = new Map<string, number>();
  readonly #reservedIds = new Map<string, number>();
  readonly #trie: PieceTrie;
  readonly #unkId: number;
  readonly #unkScore: number;
  readonly #maxScore: number;
  readonly #spec: UnigramModelSpec;

  // Scratch buffers reused across calls (grown on demand).
  #buf: Uint8Array = new Uint8Array(1024);
  #bestScore: Float64Array = new Float64Array(0);
  #bestStart: Int32Array = new Int32Array(0);
  #bestId: Int32Array = new Int32Array(0);

  /**
   * Builds a tokenizer from a format-independent spec. Most callers want {@link SentencePieceTokenizer.fromModel}
   * or {@link SentencePieceTokenizer.fromTokenizerJson}.
   *
   * @param spec pieces, scores, types and normalization flags
   * @throws {InvalidTokenizerError} when the vocabulary is inconsistent (empty or duplicate pieces, no or two
   *   UNKNOWN pieces, malformed BYTE pieces, byte fallback without all 256 byte pieces)
   */
  constructor(spec: UnigramModelSpec) {
    const fail = (problem: string): never => {
      throw new InvalidTokenizerError(`invalid ${spec.source}: ${problem}`);
    };
    const n = spec.pieces.length;
    if (n === 0) fail("the vocabulary is empty");
    if (spec.scores.length !== n || spec.types.length !== n) fail("pieces, scores and types differ in length");
    // Copies, so that later changes to the caller's spec cannot alter the tokenizer.
    this.#spec = { ...spec, pieces: [...spec.pieces], types: spec.types.slice(), scores: spec.scores.slice() };
    this.#pieces = this.#spec.pieces;
    this.#types = this.#spec.types;
    this.#scores = Float64Array.from(spec.scores);
    this.#matchKind = new Uint8Array(n);
    this.#byteOfPiece = new Int16Array(n).fill(-1);

    let unkId = -1;
    let minScore = FLT_MAX;
    let maxScore = FLT_MIN;
    let totalBytes = 0;
    const bytesFound = new Uint8Array(256);
    const trieEntries: [Uint8Array, number][] = [];
    for (let id = 0; id < n; id++) {
      const piece = this.#pieces[id];
      const type = this.#types[id];
      if (typeof piece !== "string" || piece === "") fail(`piece ${id} is empty`);
      if (findLoneSurrogate(piece) >= 0) fail(`piece ${id} contains a lone surrogate`);
      if (!Number.isFinite(this.#scores[id])) fail(`piece ${id} (${JSON.stringify(piece)}) has a non-finite score`);
      const matchable = type === PieceType.NORMAL || type === PieceType.USER_DEFINED || type === PieceType.UNUSED;
      const ids = matchable ? this.#normalIds : this.#reservedIds;
      if (ids.has(piece)) fail(`piece ${JSON.stringify(piece)} is defined twice (ids ${ids.get(piece)} and ${id})`);
      ids.set(piece, id);
      switch (type) {
        case PieceType.NORMAL:
          minScore = Math.min(minScore, this.#scores[id]);
          maxScore = Math.max(maxScore, this.#scores[id]);
          break;
        case PieceType.USER_DEFINED:
          this.#matchKind[id] = MATCH_USER_DEFINED;
          break;
        case PieceType.UNUSED:
          this.#matchKind[id] = MATCH_UNUSED;
          break;
        case PieceType.UNKNOWN:
          if (unkId >= 0) fail(`two UNKNOWN pieces (ids ${unkId} and ${id})`);
          unkId = id;
          break;
        case PieceType.BYTE: {
          if (!spec.byteFallback) fail(`byte piece ${JSON.stringify(piece)} is present but byte_fallback is off`);
          const match = BYTE_PIECE.exec(piece);
          if (!match) fail(`byte piece ${id} is ${JSON.stringify(piece)}, expected <0xNN> with uppercase hex`);
          const byte = parseInt(match![1], 16);
          this.#byteOfPiece[id] = byte;
          bytesFound[byte] = 1;
          break;
        }
        case PieceType.CONTROL:
          break;
        default:
          fail(`piece ${id} has unknown type ${type}`);
      }
      if (matchable) {
        const bytes = utf8Encoder.encode(piece);
        totalBytes += bytes.length;
        trieEntries.push([bytes, id]);
      }
    }
    if (unkId < 0) fail("no UNKNOWN piece (<unk>) is defined");
    if (spec.byteFallback && bytesFound.includes(0)) {
      fail(`byte_fallback is on but only ${bytesFound.reduce((a, b) => a + b, 0)} of the 256 byte pieces exist`);
    }
    if (totalBytes >= 1 << 23) fail(`the vocabulary is too large (${totalBytes} bytes of pieces)`);
    this.#unkId = unkId;
    // sentencepiece: `const float unk_score = min_score() - kUnkPenalty;` (min over NORMAL pieces only).
    this.#unkScore = Math.fround(minScore - UNK_PENALTY);
    this.#maxScore = maxScore;
    this.#trie = new PieceTrie(trieEntries);
    // sentencepiece decodes ids through `PieceToId(IdToPiece(id))`, which prefers the reserved (CONTROL, UNKNOWN,
    // BYTE) piece when a normal piece has the same text.
    this.#decodeAs = new Int32Array(n);
    for (let id = 0; id < n; id++) this.#decodeAs[id] = this.pieceToId(this.#pieces[id]);
    for (let b = 0; b < 256; b++) {
      this.#byteIds[b] = this.pieceToId(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    }
  }

  /**
   * Loads a SentencePiece `.model` file (serialized `ModelProto`), parsed by hand.
   *
   * @param bytes the file's bytes
   * @returns the tokenizer
   * @throws {InvalidTokenizerError} when the bytes are malformed or use an unsupported feature (a non-unigram
   *   model, a normalization trie such as NFKC, `treat_whitespace_as_suffix`)
   */
  static fromModel(bytes: Uint8Array): SentencePieceTokenizer {
    return new SentencePieceTokenizer(unigramSpecFromModelProto(parseSentencePieceModel(bytes)));
  }

  /**
   * Loads a Hugging Face `tokenizer.json` whose model is `Unigram`. Tokenization follows SentencePiece's
   * semantics (see {@link unigramSpecFromTokenizerJson} for where that differs from the `tokenizers` library).
   *
   * @param json the file's text or bytes, or the parsed object
   * @returns the tokenizer
   * @throws {InvalidTokenizerError} when the JSON is malformed, not a Unigram model, or uses an unsupported
   *   normalizer or pre-tokenizer
   */
  static fromTokenizerJson(json: string | Uint8Array | Record<string, unknown>): SentencePieceTokenizer {
    return new SentencePieceTokenizer(unigramSpecFromTokenizerJson(json));
  }

  /** Number of pieces (the largest valid id + 1). */
  get vocabSize(): number {
    return this.#pieces.length;
  }

  /** Id of the UNKNOWN piece (`<unk>`). */
  get unkId(): number {
    return this.#unkId;
  }

  /**
   * The id of a piece: looked up among CONTROL, UNKNOWN and BYTE pieces first, then the others; the UNKNOWN id
   * when the piece does not exist (as sentencepiece's `PieceToId`).
   */
  pieceToId(piece: string): number {
    return this.#reservedIds.get(piece) ?? this.#normalIds.get(piece) ?? this.#unkId;
  }

  /**
   * The piece string of an id.
   *
   * @throws {InvalidTokenIdError} when the id is not an integer in `[0, vocabSize)`
   */
  idToPiece(id: number): string {
    this.#checkId(id);
    return this.#pieces[id];
  }

  /**
   * The {@link PieceType} of an id.
   *
   * @throws {InvalidTokenIdError} when the id is not an integer in `[0, vocabSize)`
   */
  pieceType(id: number): PieceTypeValue {
    this.#checkId(id);
    return this.#types[id] as PieceTypeValue;
  }

  /**
   * Tokenizes text into ids, as `SentencePieceProcessor.encode(text)` (no BOS/EOS). Empty text gives `[]`.
   *
   * @param text the text
   * @returns the ids
   * @throws {InvalidTextError} when the text contains a lone surrogate (it has no UTF-8 form)
   */
  encode(text: string): number[] {
    const ids: number[] = [];
    this.#encode(text, ids, null);
    return ids;
  }

  /**
   * Tokenizes text into piece strings, as `encode(text, out_type=str)`: byte-fallback characters appear as
   * `<0xNN>` pieces; without byte fallback an unknown run appears as its own text.
   *
   * @param text the text
   * @returns the pieces
   * @throws {InvalidTextError} when the text contains a lone surrogate
   */
  encodeAsPieces(text: string): string[] {
    const ids: number[] = [];
    const pieces: string[] = [];
    this.#encode(text, ids, pieces);
    return pieces;
  }

  /**
   * Turns ids back into text, as `SentencePieceProcessor.decode(ids)`: control pieces vanish, `<unk>` becomes the
   * model's unknown surface (`" ⁇ "`), runs of byte pieces are decoded as UTF-8 with one U+FFFD per invalid
   * byte, `▁` becomes a space, and the first leading `▁` of the text is dropped (the dummy prefix).
   *
   * @param ids token ids
   * @returns the text
   * @throws {InvalidTokenIdError} when an id is not an integer in `[0, vocabSize)`
   */
  decode(ids: ArrayLike<number>): string {
    for (let i = 0; i < ids.length; i++) this.#checkId(ids[i]);
    const stripDummy = this.#spec.addDummyPrefix || this.#spec.removeExtraWhitespaces;
    let text = "";
    let pending: number[] = [];
    let isBosWs = true;
    let bosWsSeen = false;
    for (let i = 0; i < ids.length; i++) {
      const id = this.#decodeAs[ids[i]];
      const type = this.#types[id];
      if (type === PieceType.BYTE) {
        pending.push(this.#byteOfPiece[id]);
        continue;
      }
      if (pending.length > 0) {
        text += decodeUtf8PerByteReplacement(pending);
        pending = [];
      }
      if (bosWsSeen || text.length > 0) isBosWs = false;
      bosWsSeen = false;
      if (type === PieceType.CONTROL) continue;
      if (type === PieceType.UNKNOWN) {
        text += this.#spec.unkSurface;
        continue;
      }
      let piece = this.#pieces[id];
      if (isBosWs && stripDummy && piece.startsWith(SPACE_SYMBOL)) {
        piece = piece.slice(1);
        // With remove_extra_whitespaces every leading ▁ piece is stripped, so none counts as "seen".
        bosWsSeen = !this.#spec.removeExtraWhitespaces;
      }
      text += piece.includes(SPACE_SYMBOL) ? piece.replaceAll(SPACE_SYMBOL, " ") : piece;
    }
    if (pending.length > 0) text += decodeUtf8PerByteReplacement(pending);
    return text;
  }

  #checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.#pieces.length) {
      throw new InvalidTokenIdError(id, this.#pieces.length);
    }
  }

  /** Normalizes `text` into `this.#buf` as UTF-8 (sentencepiece `Normalizer::Normalize`, identity rule). */
  #normalize(text: string): number {
    const spec = this.#spec;
    const len = text.length;
    let i = 0;
    if (spec.removeExtraWhitespaces) { while (i < len && text.charCodeAt(i) === 0x20) i++; }
    if (i === len) return 0;
    const bad = findLoneSurrogate(text);
    if (bad >= 0) {
      throw new InvalidTextError(
        `text contains a lone surrogate U+${text.charCodeAt(bad).toString(16).toUpperCase()} at index ${bad}; ` +
          "it has no UTF-8 form",
      );
    }
    const need = (len - i) * 3 + 3;
    if (this.#buf.length < need) this.#buf = new Uint8Array(Math.max(need, this.#buf.length * 2));
    const buf = this.#buf;
    let o = 0;
    if (spec.addDummyPrefix) {
      const first = text.charCodeAt(i);
      if (spec.dummyPrefixOnLeadingSpace || (first !== 0x20 && first !== 0x2581)) {
        buf[o++] = SP0;
        buf[o++] = SP1;
        buf[o++] = SP2;
      }
    }
    const removeExtra = spec.removeExtraWhitespaces;
    const escape = spec.escapeWhitespaces;
    let prevSpace = removeExtra;
    for (; i < len; i++) {
      const c = text.charCodeAt(i);
      if (c < 0x80) {
        if (c === 0x20) {
          if (prevSpace) continue;
          if (escape) {
            buf[o++] = SP0;
            buf[o++] = SP1;
            buf[o++] = SP2;
          } else {
            buf[o++] = 0x20;
          }
          prevSpace = removeExtra;
          continue;
        }
        buf[o++] = c;
      } else if (c < 0x800) {
        buf[o++] = 0xc0 | (c >> 6);
        buf[o++] = 0x80 | (c & 0x3f);
      } else if (c >= 0xd800 && c <= 0xdbff) {
        // A high surrogate followed by a low one (lone surrogates were rejected above).
        const cp = ((c - 0xd800) << 10) + (text.charCodeAt(++i) - 0xdc00) + 0x10000;
        buf[o++] = 0xf0 | (cp >> 18);
        buf[o++] = 0x80 | ((cp >> 12) & 0x3f);
        buf[o++] = 0x80 | ((cp >> 6) & 0x3f);
        buf[o++] = 0x80 | (cp & 0x3f);
      } else {
        buf[o++] = 0xe0 | (c >> 12);
        buf[o++] = 0x80 | ((c >> 6) & 0x3f);
        buf[o++] = 0x80 | (c & 0x3f);
      }
      prevSpace = false;
    }
    if (removeExtra) {
      if (escape) {
        while (o >= 3 && buf[o - 3] === SP0 && buf[o - 2] === SP1 && buf[o - 1] === SP2) o -= 3;
      } else {
        while (o >= 1 && buf[o - 1] === 0x20) o--;
      }
    }
    return o;
  }

  #encode(text: string, ids: number[], pieces: string[] | null): void {
    const n = this.#normalize(text);
    if (n === 0) return;
    const state = { prevUnk: false };
    if (!this.#spec.splitOnSpaceSymbol) {
      this.#viterbi(n, 0, ids, pieces, state);
      return;
    }
    // Hugging Face Metaspace(split=true): every ▁ starts a new word (merged with what follows it).
    const buf = this.#buf;
    let start = 0;
    for (let i = 1; i + 2 < n; i++) {
      if (buf[i] === SP0 && buf[i + 1] === SP1 && buf[i + 2] === SP2) {
        this.#viterbi(i, start, ids, pieces, state);
        start = i;
        i += 2;
      }
    }
    this.#viterbi(n, start, ids, pieces, state);
  }

  /**
   * sentencepiece `Model::EncodeOptimized` over `buf[start, end)`, then the byte fallback of
   * `PopulateSentencePieceText`. Path scores are stored as float32 (`BestPathNode::best_path_score` is a
   * `float`); piece candidates are formed and compared in double (`score + best_path_score_till_here` where the
   * score is promoted to double), UNK candidates in float32. Ties keep the earlier candidate (strict `>`).
   */
  #viterbi(end: number, start: number, ids: number[], pieces: string[] | null, state: { prevUnk: boolean }): void {
    const buf = this.#buf;
    const size = end - start;
    if (this.#bestScore.length < size + 1) {
      const capacity = Math.max(size + 1, this.#bestScore.length * 2);
      this.#bestScore = new Float64Array(capacity);
      this.#bestStart = new Int32Array(capacity);
      this.#bestId = new Int32Array(capacity);
    }
    const bestScore = this.#bestScore;
    const bestStart = this.#bestStart;
    const bestId = this.#bestId;
    bestStart.fill(-1, 0, size + 1);
    bestScore[0] = 0;
    const trie = this.#trie;
    const rootChildren = trie.rootChildren;
    const values = trie.values;
    const scores = this.#scores;
    const matchKind = this.#matchKind;
    const unkScore = this.#unkScore;
    const unkId = this.#unkId;

    let s = 0;
    while (s < size) {
      const lead = buf[start + s];
      let mblen = lead < 0x80 ? 1 : lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
      if (mblen > size - s) mblen = size - s;
      const here = bestScore[s];
      let hasSingle = false;
      let node = rootChildren[lead];
      let k = s + 1;
      while (node >= 0) {
        const id = values[node];
        if (id >= 0) {
          const kind = matchKind[id];
          if (kind !== MATCH_UNUSED) {
            const length = k - s;
            const score = kind === MATCH_USER_DEFINED ? Math.fround(length * this.#maxScore) - 0.1 : scores[id];
            const candidate = score + here;
            if (bestStart[k] === -1 || candidate > bestScore[k]) {
              bestScore[k] = Math.fround(candidate);
              bestStart[k] = s;
              bestId[k] = id;
            }
            if (length === mblen) hasSingle = true;
          }
        }
        if (k >= size) break;
        node = trie.child(node, buf[start + k]);
        k++;
      }
      if (!hasSingle) {
        const e = s + mblen;
        const candidate = Math.fround(unkScore + here);
        if (bestStart[e] === -1 || candidate > bestScore[e]) {
          bestScore[e] = candidate;
          bestStart[e] = s;
          bestId[e] = unkId;
        }
      }
      s += mblen;
    }

    // Backtrack, then emit in order.
    const path: number[] = [];
    for (let e = size; e > 0; e = bestStart[e]) path.push(e);
    for (let p = path.length - 1; p >= 0; p--) {
      const e = path[p];
      const b = bestStart[e];
      const id = bestId[e];
      if (id === unkId) {
        if (this.#spec.byteFallback) {
          for (let j = start + b; j < start + e; j++) {
            const byteId = this.#byteIds[buf[j]];
            ids.push(byteId);
            pieces?.push(this.#pieces[byteId]);
          }
        } else if (state.prevUnk) {
          // sentencepiece merges a run of unknown characters into one UNKNOWN token.
          if (pieces) pieces[pieces.length - 1] += this.#surface(start + b, start + e);
        } else {
          ids.push(unkId);
          pieces?.push(this.#surface(start + b, start + e));
        }
        state.prevUnk = true;
      } else {
        ids.push(id);
        pieces?.push(this.#pieces[id]);
        state.prevUnk = false;
      }
    }
  }

  #surface(start: number, end: number): string {
    return decodeUtf8PerByteReplacement(this.#buf, start, end);
  }
}
