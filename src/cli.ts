/**
 * The command-line interface: `deno run -A mod.ts [options] "text"` (also `bun mod.ts …`) writes speech to a WAV
 * file, or streams it to stdout with `-o -`; `deno run -A mod.ts info …` validates a model. Bad input ends with a
 * one-line `error: …` on stderr and exit code 1, never a stack trace.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ConfigError, PocketTtsError } from "./errors.ts";
import { runInfo } from "./model/info.ts";
import { createProgressBar } from "./model/progress_bar.ts";
import { parseSafetensors, toFloat32 } from "./model/safetensors.ts";
import { WavStreamWriter } from "./audio/wav.ts";
import { replayNoise } from "./generate/noise.ts";
import { type GenerateOptions, TTSModel } from "./generate/tts_model.ts";
import { runExportVoice } from "./voice/export_voice_cli.ts";
import {
  cliErrorLine,
  flagNumber,
  GENERATION_FLAGS,
  GENERATION_FLAGS_USAGE,
  generationFlagOptions,
  MODEL_FLAGS,
  modelLoadOptions,
} from "./model_flags.ts";
import { VERSION } from "./version.ts";

/** Where the CLI reads and writes; injectable for tests. */
export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

const defaultIo: CliIo = {
  stdout: (s) => console.log(s),
  stderr: (s) => console.error(s),
};

/** The `--help` text. */
export const USAGE = `Usage: pocket-tts [options] [TEXT | -]
       pocket-tts info [--model DIR|URL | --language NAME] [--offline] [--json]
       pocket-tts serve [--host H] [--port N] [--voices DIR] [--api-key KEY] [model options]   (serve --help)
       pocket-tts export-voice AUDIO OUT.safetensors [--model DIR|URL | --language NAME] [--max-seconds S] [-q]

Speak TEXT (or standard input with -) with Kyutai's Pocket TTS and write a 24 kHz WAV file.
With --stream-input, speech starts while standard input is still arriving (e.g. piped from a language model).

Options:
  --text TEXT               The text (instead of the positional argument)
  --voice NAME|FILE|URL     Predefined voice name, voice file, or a recording to clone (WAV, FLAC, MP3, Ogg)
                            (default: the language's default voice)
  --max-seconds S           Clone from at most the first S seconds of the recording (default 30)
  --language NAME           Published language (default: english)
  --model DIR|URL           Custom model: a directory or URL holding config.json, weights and tokenizer
  -o, --output-path FILE    Output WAV (default ./tts_output.wav; - streams the WAV to stdout)
${GENERATION_FLAGS_USAGE}
  --seed N                  Seed for reproducible output
  --stream-input            Read the text from standard input as it arrives and speak each chunk as soon as it is
                            decided (tts.streamText); the audio is the same as for the whole text at once
  --normalize               Write out English numbers, dates, currency, units, abbreviations, URLs (off by default)
  --simd auto|baseline|relaxed   WebAssembly variant (default auto, or $POCKET_TTS_SIMD)
  --workers auto|0|1|2      Where the model runs: this thread (0), one worker on two threads (1: earliest first
                            audio), two pipelined workers (2: highest throughput; auto, the default)
  --threads N               Split the model's matrix products over N threads (with --workers 2: the prefills,
                            cloning and each chunk's first frame only; default 2 where shared memory exists)
  --quantize                Int8 FlowLM transformer: faster, not bit-exact (as the reference's --quantize)
  --cache-dir DIR           Download cache (default $POCKET_TTS_CACHE or ~/.cache/pocket-tts)
  --offline                 Never use the network
  --list-voices             List the predefined voices and exit
  -q, --quiet               No progress or summary on stderr
  -h, --help                Show this help
  --version                 Show the version

Subcommands:
  info                      Resolve and validate a model's files without generating
  serve                     HTTP server: web page, OpenAI speech API, the reference's /tts (see serve --help)
  export-voice              Clone a voice from a recording into a voice-state file`;

const OPTIONS = {
  text: { type: "string" },
  voice: { type: "string" },
  "max-seconds": { type: "string" },
  ...MODEL_FLAGS,
  "output-path": { type: "string", short: "o" },
  ...GENERATION_FLAGS,
  seed: { type: "string" },
  "stream-input": { type: "boolean" },
  normalize: { type: "boolean" },
  "list-voices": { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
  // Undocumented (tests): a safetensors file whose `noise` tensor [rows, 32] gives each FlowLM call's x₀.
  "noise-file": { type: "string" },
} as const;

function stderrIsTerminal(): boolean {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  try {
    return g.Deno ? g.Deno.stderr.isTerminal() : Boolean(g.process?.stderr?.isTTY);
  } catch {
    return false;
  }
}

/** Standard input as text deltas, as they arrive (a UTF-8 sequence split between reads is held back whole). */
async function* stdinText(): AsyncGenerator<string> {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  const decoder = new TextDecoder();
  for await (const bytes of g.Deno ? g.Deno.stdin.readable : g.process.stdin) {
    const text = decoder.decode(bytes as Uint8Array, { stream: true });
    if (text) yield text;
  }
  const tail = decoder.decode();
  if (tail) yield tail;
}

async function readStdin(): Promise<string> {
  let text = "";
  for await (const delta of stdinText()) text += delta;
  return text;
}

/** A byte sink: a file or standard output. */
interface Sink {
  write(bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

async function openSink(path: string): Promise<Sink> {
  if (path === "-") {
    // deno-lint-ignore no-explicit-any
    const g = globalThis as any;
    if (g.Deno) {
      const w = g.Deno.stdout.writable.getWriter();
      return { write: (b) => w.write(b), close: () => w.close() };
    }
    return {
      write: (b) => new Promise((res, rej) => g.process.stdout.write(b, (e: unknown) => e ? rej(e) : res())),
      close: () => Promise.resolve(),
    };
  }
  const fs = await import("node:fs/promises");
  const tmp = `${path}.partial`;
  const handle = await fs.open(tmp, "w").catch((cause) => {
    throw new PocketTtsError("output", `cannot write ${path}: ${cause?.message ?? cause}`);
  });
  return {
    write: async (b) => void await handle.write(b),
    close: async () => {
      await handle.close();
      await fs.rename(tmp, path);
    },
  };
}

function noiseFromFile(bytes: Uint8Array): (x0: Float32Array) => void {
  const reader = parseSafetensors(bytes, "--noise-file");
  const info = reader.get("noise");
  if (!info || info.shape.length !== 2 || info.shape[1] !== 32) {
    throw new ConfigError('--noise-file must hold a tensor "noise" of shape [rows, 32]');
  }
  const raw = bytes.subarray(info.fileOffset, info.fileOffset + info.byteLength);
  return replayNoise(toFloat32({ dtype: info.dtype, bytes: raw })).noise;
}

/**
 * Runs the CLI with `argv` (without the program name) and returns the exit code.
 *
 * @example
 * ```ts
 * const code = await runCli(["Hello world", "-o", "hello.wav"]);
 * ```
 */
export async function runCli(argv: string[], io: CliIo = defaultIo): Promise<number> {
  if (argv[0] === "info") return await runInfo(argv.slice(1));
  if (argv[0] === "serve") {
    try {
      return await (await import("./server/serve_cli.ts")).runServe(argv.slice(1), io);
    } catch (e) {
      io.stderr(cliErrorLine(e));
      return 1;
    }
  }
  if (argv[0] === "export-voice") return await runExportVoice(argv.slice(1), io);
  let tts: TTSModel | null = null;
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    } catch (e) {
      throw new ConfigError(`${(e as Error).message} (see --help)`);
    }
    const { values: o, positionals } = parsed;
    if (o.help) {
      io.stdout(USAGE);
      return 0;
    }
    if (o.version) {
      io.stdout(`@pocket/tts ${VERSION}`);
      return 0;
    }
    const quiet = o.quiet ?? false;
    const note = (s: string) => !quiet && io.stderr(s);
    const loadOptions = modelLoadOptions(o);
    if (o["list-voices"]) {
      const { PREDEFINED_VOICES } = await import("./model/builtin_configs.ts");
      io.stdout(o.model ? "(a custom model has no predefined voices)" : PREDEFINED_VOICES.join("\n"));
      return 0;
    }
    if (positionals.length > 1) throw new ConfigError("give the text as one argument (quote it)");
    let text = o.text ?? positionals[0];
    const streamInput = o["stream-input"] ?? false;
    if (streamInput && (text ?? "-") !== "-") {
      throw new ConfigError("--stream-input reads standard input: give no text, or -");
    }
    if (text === undefined && !streamInput) {
      throw new ConfigError("no text given (pass it as an argument, with --text, or - for stdin)");
    }
    if (text === "-" && !streamInput) text = await readStdin();

    const bar = createProgressBar((s) => !quiet && io.stderr(s), { isTTY: stderrIsTerminal() });
    const started = performance.now();
    tts = await TTSModel.load({ ...loadOptions, onProgress: quiet ? undefined : bar, onNotice: note });
    bar.end();
    const maxSeconds = flagNumber("max-seconds", o["max-seconds"]);
    const voice = o.voice !== undefined ? await tts.loadVoice(o.voice, { maxSeconds }) : undefined;
    const noise = o["noise-file"] !== undefined
      ? noiseFromFile(new Uint8Array(await (await import("node:fs/promises")).readFile(o["noise-file"])))
      : undefined;

    const outPath = o["output-path"] ?? "./tts_output.wav";
    const writer = new WavStreamWriter(tts.sampleRate);
    const sink = await openSink(outPath);
    await sink.write(writer.header());
    const t0 = performance.now();
    let firstAudio = 0, samples = 0;
    const options: GenerateOptions = {
      voice,
      ...generationFlagOptions(o),
      seed: flagNumber("seed", o.seed, true),
      normalize: o.normalize ? "en" : undefined,
      noise,
      onWarning: (m) => note(`warning: ${m}`),
    };
    // Standard input is read only now, with the model ready: the first sentence is spoken as soon as it ends.
    for await (const frame of streamInput ? tts.streamText(stdinText(), options) : tts.stream(text!, options)) {
      if (samples === 0) firstAudio = performance.now() - t0;
      samples += frame.length;
      await sink.write(writer.encode(frame));
    }
    // The reference's writer ends every file with 200 ms of silence.
    await sink.write(writer.silence(200));
    await sink.close();
    const seconds = samples / tts.sampleRate, elapsed = (performance.now() - t0) / 1000;
    note(
      `${seconds.toFixed(2)} s of audio in ${elapsed.toFixed(2)} s (${(seconds / elapsed).toFixed(2)}× real time), ` +
        `first audio after ${firstAudio.toFixed(0)} ms, model ready in ${((t0 - started) / 1000).toFixed(2)} s` +
        (outPath === "-" ? "" : ` → ${outPath}`),
    );
    return 0;
  } catch (e) {
    io.stderr(cliErrorLine(e));
    return 1;
  } finally {
    tts?.dispose();
  }
}
