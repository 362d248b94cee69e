/**
 * The SentencePiece `.model` file: a serialized proto2 `ModelProto`, read by hand with protobuf defaults for every
 * absent field, and the {@link UnigramModelSpec} the tokenizer is built from (shared with `tokenizer.json`).
 *
 * @module
 */

import { InvalidTokenizerError } from "../errors.ts";
import { ProtoReader, WireType } from "./protobuf_wire.ts";

/** SentencePiece piece types (`ModelProto.SentencePiece.Type`). */
export const PieceType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

/** One of the {@link PieceType} values. */
export type PieceTypeValue = typeof PieceType[keyof typeof PieceType];

/** `TrainerSpec.ModelType`. Only `UNIGRAM` can be tokenized here. */
export const ModelType = { UNIGRAM: 1, BPE: 2, WORD: 3, CHAR: 4 } as const;

/** One vocabulary entry of a `.model` file. */
export interface SentencePieceEntry {
  /** The piece text, with `▁` (U+2581) standing for a space. */
  piece: string;
  /** Log-probability, exactly as stored (a float32). Absent means 0. */
  score: number;
  /** Piece type; absent means {@link PieceType.NORMAL}. */
  type: PieceTypeValue;
}

/** The `TrainerSpec` fields that matter when tokenizing, plus a few that describe the model. */
export interface TrainerSpec {
  /** Model type (default UNIGRAM = 1). */
  modelType: number;
  /** Vocabulary size the trainer was asked for (default 8000). */
  vocabSize: number;
  /** Characters outside the vocabulary become one BYTE piece per UTF-8 byte (default false). */
  byteFallback: boolean;
  /** Whitespace marks the end of a piece instead of its start (default false; not supported here). */
  treatWhitespaceAsSuffix: boolean;
  /** Digits were split into single pieces at training time (default false; training only). */
  splitDigits: boolean;
  /** Maximum piece length in characters at training time (default 16). */
  maxSentencepieceLength: number;
  /** Id the trainer assigned to `<unk>` (default 0). The UNKNOWN piece's position is what is used. */
  unkId: number;
  /** Id of `<s>` (default 1; −1 when absent). */
  bosId: number;
  /** Id of `</s>` (default 2; −1 when absent). */
  eosId: number;
  /** Id of `<pad>` (default −1). */
  padId: number;
  /** What decoding prints for `<unk>` (default `" ⁇ "`). */
  unkSurface: string;
}

/** `NormalizerSpec` (also used for the denormalizer). */
export interface NormalizerSpec {
  /** Rule name, e.g. `"identity"` or `"nmt_nfkc"` (default ""). */
  name: string;
  /** Compiled normalization trie; empty for `identity`. */
  precompiledCharsmap: Uint8Array;
  /** Prefix the text with `▁` (default true). */
  addDummyPrefix: boolean;
  /** Strip and collapse runs of spaces (default true). */
  removeExtraWhitespaces: boolean;
  /** Replace spaces with `▁` (default true). */
  escapeWhitespaces: boolean;
}

/** A parsed `ModelProto`. */
export interface SentencePieceModelProto {
  /** The vocabulary, in id order. */
  pieces: SentencePieceEntry[];
  /** Trainer settings (defaults when the field is absent). */
  trainerSpec: TrainerSpec;
  /** Normalizer settings (defaults when the field is absent). */
  normalizerSpec: NormalizerSpec;
  /** The denormalizer, when the file has one. */
  denormalizerSpec?: NormalizerSpec;
}

/**
 * Everything the unigram tokenizer needs, independent of the file format it came from.
 * Built by {@link unigramSpecFromModelProto} or from a Hugging Face `tokenizer.json`.
 */
export interface UnigramModelSpec {
  /** Piece strings, in id order. */
  pieces: string[];
  /** Piece scores as float32 values, in id order. */
  scores: Float32Array;
  /** Piece types ({@link PieceType}), in id order. */
  types: Uint8Array;
  /** Unknown characters become BYTE pieces. */
  byteFallback: boolean;
  /** Decoded text of the UNKNOWN piece. */
  unkSurface: string;
  /** Prefix `▁` to non-empty normalized text. */
  addDummyPrefix: boolean;
  /**
   * Prefix `▁` even when the text already starts with one (SentencePiece: true). Hugging Face's `Metaspace`
   * pre-tokenizer skips the prefix when the text starts with a space: false.
   */
  dummyPrefixOnLeadingSpace: boolean;
  /** Drop leading and trailing spaces and collapse runs of spaces. */
  removeExtraWhitespaces: boolean;
  /** Replace U+0020 with `▁`. */
  escapeWhitespaces: boolean;
  /**
   * Segment each `▁`-led word separately (Hugging Face `Metaspace` with `split: true`); SentencePiece runs one
   * Viterbi over the whole text: false.
   */
  splitOnSpaceSymbol: boolean;
  /** Where the spec came from, for error messages (e.g. `"SentencePiece model"`). */
  source: string;
}

const DEFAULT_UNK_SURFACE = " \u2047 ";

function defaultTrainerSpec(): TrainerSpec {
  return {
    modelType: ModelType.UNIGRAM,
    vocabSize: 8000,
    byteFallback: false,
    treatWhitespaceAsSuffix: false,
    splitDigits: false,
    maxSentencepieceLength: 16,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: -1,
    unkSurface: DEFAULT_UNK_SURFACE,
  };
}

function defaultNormalizerSpec(): NormalizerSpec {
  return {
    name: "",
    precompiledCharsmap: new Uint8Array(0),
    addDummyPrefix: true,
    removeExtraWhitespaces: true,
    escapeWhitespaces: true,
  };
}

function readPiece(reader: ProtoReader): SentencePieceEntry {
  const entry: SentencePieceEntry = { piece: "", score: 0, type: PieceType.NORMAL };
  while (!reader.done) {
    const { field, wireType } = reader.key();
    if (field === 1) {
      reader.expect("SentencePiece.piece", wireType, WireType.LENGTH_DELIMITED);
      entry.piece = reader.string("SentencePiece.piece");
    } else if (field === 2) {
      reader.expect("SentencePiece.score", wireType, WireType.FIXED32);
      entry.score = reader.float32();
    } else if (field === 3) {
      reader.expect("SentencePiece.type", wireType, WireType.VARINT);
      const type = reader.int32();
      if (type < PieceType.NORMAL || type > PieceType.BYTE) {
        throw new InvalidTokenizerError(`invalid SentencePiece model: ${reader.context} has unknown type ${type}`);
      }
      entry.type = type as PieceTypeValue;
    } else {
      reader.skip(wireType);
    }
  }
  return entry;
}

function readTrainerSpec(reader: ProtoReader, spec: TrainerSpec): void {
  const ints: Record<number, keyof TrainerSpec> = {
    3: "modelType",
    4: "vocabSize",
    20: "maxSentencepieceLength",
    40: "unkId",
    41: "bosId",
    42: "eosId",
    43: "padId",
  };
  const bools: Record<number, keyof TrainerSpec> = {
    24: "treatWhitespaceAsSuffix",
    25: "splitDigits",
    35: "byteFallback",
  };
  while (!reader.done) {
    const { field, wireType } = reader.key();
    if (field in ints) {
      reader.expect(`TrainerSpec.${ints[field]}`, wireType, WireType.VARINT);
      (spec as unknown as Record<string, number>)[ints[field]] = reader.int32();
    } else if (field in bools) {
      reader.expect(`TrainerSpec.${bools[field]}`, wireType, WireType.VARINT);
      (spec as unknown as Record<string, boolean>)[bools[field]] = reader.bool();
    } else if (field === 44) {
      reader.expect("TrainerSpec.unk_surface", wireType, WireType.LENGTH_DELIMITED);
      spec.unkSurface = reader.string("TrainerSpec.unk_surface");
    } else {
      reader.skip(wireType);
    }
  }
}

function readNormalizerSpec(reader: ProtoReader, spec: NormalizerSpec): void {
  while (!reader.done) {
    const { field, wireType } = reader.key();
    switch (field) {
      case 1:
        reader.expect("NormalizerSpec.name", wireType, WireType.LENGTH_DELIMITED);
        spec.name = reader.string("NormalizerSpec.name");
        break;
      case 2:
        reader.expect("NormalizerSpec.precompiled_charsmap", wireType, WireType.LENGTH_DELIMITED);
        spec.precompiledCharsmap = reader.bytes().slice();
        break;
      case 3:
        reader.expect("NormalizerSpec.add_dummy_prefix", wireType, WireType.VARINT);
        spec.addDummyPrefix = reader.bool();
        break;
      case 4:
        reader.expect("NormalizerSpec.remove_extra_whitespaces", wireType, WireType.VARINT);
        spec.removeExtraWhitespaces = reader.bool();
        break;
      case 5:
        reader.expect("NormalizerSpec.escape_whitespaces", wireType, WireType.VARINT);
        spec.escapeWhitespaces = reader.bool();
        break;
      default:
        reader.skip(wireType);
    }
  }
}

/**
 * Parses a SentencePiece `.model` file (a serialized `ModelProto`). Absent fields take their proto2 defaults:
 * a piece without `type` is NORMAL, a missing score is 0, `add_dummy_prefix`, `remove_extra_whitespaces` and
 * `escape_whitespaces` default to true, `unk_surface` to `" ⁇ "`. Unknown fields are skipped; repeated
 * occurrences of a message field are merged, as protobuf does.
 *
 * @param bytes the file's bytes
 * @returns the parsed model
 * @throws {InvalidTokenizerError} when the bytes are not a well-formed `ModelProto` with at least one piece
 */
export function parseSentencePieceModel(bytes: Uint8Array): SentencePieceModelProto {
  if (!(bytes instanceof Uint8Array)) {
    throw new InvalidTokenizerError("invalid SentencePiece model: expected the file's bytes as a Uint8Array");
  }
  const model: SentencePieceModelProto = {
    pieces: [],
    trainerSpec: defaultTrainerSpec(),
    normalizerSpec: defaultNormalizerSpec(),
  };
  const reader = new ProtoReader(bytes, "ModelProto");
  while (!reader.done) {
    const { field, wireType } = reader.key();
    switch (field) {
      case 1:
        reader.expect("ModelProto.pieces", wireType, WireType.LENGTH_DELIMITED);
        model.pieces.push(readPiece(reader.message(`ModelProto.pieces[${model.pieces.length}]`)));
        break;
      case 2:
        reader.expect("ModelProto.trainer_spec", wireType, WireType.LENGTH_DELIMITED);
        readTrainerSpec(reader.message("ModelProto.trainer_spec"), model.trainerSpec);
        break;
      case 3:
        reader.expect("ModelProto.normalizer_spec", wireType, WireType.LENGTH_DELIMITED);
        readNormalizerSpec(reader.message("ModelProto.normalizer_spec"), model.normalizerSpec);
        break;
      case 5:
        reader.expect("ModelProto.denormalizer_spec", wireType, WireType.LENGTH_DELIMITED);
        model.denormalizerSpec ??= defaultNormalizerSpec();
        readNormalizerSpec(reader.message("ModelProto.denormalizer_spec"), model.denormalizerSpec);
        break;
      default: // 4 = self_test_data, extensions
        reader.skip(wireType);
    }
  }
  if (model.pieces.length === 0) {
    throw new InvalidTokenizerError(
      `invalid SentencePiece model: no pieces (${bytes.length} bytes read; is this a SentencePiece .model file?)`,
    );
  }
  return model;
}

/**
 * Turns a parsed `.model` into the tokenizer's spec, rejecting what this implementation does not reproduce:
 * non-unigram models, a normalization trie (`precompiled_charsmap`, e.g. NFKC), a denormalizer, and
 * `treat_whitespace_as_suffix`.
 *
 * @param model a parsed `ModelProto`
 * @returns the spec
 * @throws {InvalidTokenizerError} naming the unsupported setting
 */
export function unigramSpecFromModelProto(model: SentencePieceModelProto): UnigramModelSpec {
  const { trainerSpec, normalizerSpec, denormalizerSpec } = model;
  const fail = (problem: string): never => {
    throw new InvalidTokenizerError(`unsupported SentencePiece model: ${problem}`);
  };
  if (trainerSpec.modelType !== ModelType.UNIGRAM) {
    const name = Object.entries(ModelType).find(([, v]) => v === trainerSpec.modelType)?.[0] ?? "unknown";
    fail(`model_type ${trainerSpec.modelType} (${name}); only UNIGRAM (1) is supported`);
  }
  if (normalizerSpec.precompiledCharsmap.length > 0) {
    fail(
      `normalizer "${normalizerSpec.name}" has a precompiled_charsmap (${normalizerSpec.precompiledCharsmap.length} ` +
        `bytes); only the identity normalizer is supported`,
    );
  }
  if (denormalizerSpec && denormalizerSpec.precompiledCharsmap.length > 0) {
    fail(`a denormalizer ("${denormalizerSpec.name}") is not supported`);
  }
  if (trainerSpec.treatWhitespaceAsSuffix) fail("treat_whitespace_as_suffix is not supported");
  const n = model.pieces.length;
  const spec: UnigramModelSpec = {
    pieces: new Array<string>(n),
    scores: new Float32Array(n),
    types: new Uint8Array(n),
    byteFallback: trainerSpec.byteFallback,
    unkSurface: trainerSpec.unkSurface,
    addDummyPrefix: normalizerSpec.addDummyPrefix,
    dummyPrefixOnLeadingSpace: true,
    removeExtraWhitespaces: normalizerSpec.removeExtraWhitespaces,
    escapeWhitespaces: normalizerSpec.escapeWhitespaces,
    splitOnSpaceSymbol: false,
    source: "SentencePiece model",
  };
  for (let i = 0; i < n; i++) {
    const entry = model.pieces[i];
    spec.pieces[i] = entry.piece;
    spec.scores[i] = entry.score;
    spec.types[i] = entry.type;
  }
  return spec;
}
