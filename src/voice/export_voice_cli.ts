/**
 * The `export-voice` subcommand: `pocket-tts export-voice AUDIO OUT.safetensors [--model DIR | --language L]
 * [--max-seconds S] [-q]` clones a voice from a recording (WAV, FLAC, MP3, Ogg) and writes it as a voice-state file in
 * the reference's format, loadable with `--voice OUT.safetensors` here and upstream. Bad input ends with a one-line
 * `error: …` on stderr and exit code 1.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ConfigError, PocketTtsError } from "../errors.ts";
import { TTSModel } from "../generate/tts_model.ts";
import { cliErrorLine, MODEL_FLAGS, modelLoadOptions } from "../model_flags.ts";

/** The subcommand's `--help` text. */
export const EXPORT_VOICE_USAGE =
  `Usage: pocket-tts export-voice AUDIO OUT.safetensors [--model DIR|URL | --language NAME] [--max-seconds S] [-q]

Clone a voice from a recording (WAV, FLAC, MP3 or Ogg; path or URL) and save it as a voice-state file.

Options:
  --language NAME           Published language (default: english)
  --model DIR|URL           Custom model: a directory or URL holding config.json, weights and tokenizer
  --max-seconds S           Use at most the first S seconds of the recording (default 30)
  --cache-dir DIR           Download cache (default $POCKET_TTS_CACHE or ~/.cache/pocket-tts)
  --offline                 Never use the network
  --simd auto|baseline|relaxed   WebAssembly variant (default auto)
  -q, --quiet               No progress or summary on stderr
  -h, --help                Show this help`;

/**
 * Runs `export-voice` with `argv` (the arguments after the subcommand) and returns the exit code.
 *
 * @example
 * ```ts
 * const code = await runExportVoice(["me.wav", "me.safetensors", "--max-seconds", "10"]);
 * ```
 */
export async function runExportVoice(
  argv: string[],
  io: { stdout: (s: string) => void; stderr: (s: string) => void } = {
    stdout: (s) => console.log(s),
    stderr: (s) => console.error(s),
  },
): Promise<number> {
  let tts: TTSModel | null = null;
  try {
    let parsed;
    try {
      parsed = parseArgs({
        args: argv,
        allowPositionals: true,
        strict: true,
        options: {
          language: MODEL_FLAGS.language,
          model: MODEL_FLAGS.model,
          "max-seconds": { type: "string" },
          "cache-dir": MODEL_FLAGS["cache-dir"],
          offline: MODEL_FLAGS.offline,
          simd: MODEL_FLAGS.simd,
          quiet: { type: "boolean", short: "q" },
          help: { type: "boolean", short: "h" },
        },
      });
    } catch (e) {
      throw new ConfigError(`${(e as Error).message} (see export-voice --help)`);
    }
    const { values: o, positionals } = parsed;
    if (o.help) {
      io.stdout(EXPORT_VOICE_USAGE);
      return 0;
    }
    if (positionals.length !== 2) throw new ConfigError("export-voice takes AUDIO and OUT.safetensors (see --help)");
    const [audio, out] = positionals;
    const maxSeconds = o["max-seconds"] === undefined ? undefined : Number(o["max-seconds"]);
    if (maxSeconds !== undefined && !(maxSeconds > 0 && Number.isFinite(maxSeconds))) {
      throw new ConfigError(`--max-seconds must be a positive number, got "${o["max-seconds"]}"`);
    }
    const note = (s: string) => !o.quiet && io.stderr(s);
    // One short job: a single instance starts faster than two workers.
    const loadOptions = modelLoadOptions(o, { onNotice: note, workers: 0 });
    const started = performance.now();
    tts = await TTSModel.load(loadOptions);
    const voice = await tts.loadVoice(audio, { maxSeconds });
    const fs = await import("node:fs/promises");
    const tmp = `${out}.partial`;
    try {
      await fs.writeFile(tmp, tts.exportVoice(voice));
      await fs.rename(tmp, out);
    } catch (cause) {
      await fs.rm(tmp, { force: true });
      throw new PocketTtsError("output", `cannot write ${out}: ${(cause as Error)?.message ?? cause}`);
    }
    note(`voice of ${voice.positions} positions in ${((performance.now() - started) / 1000).toFixed(2)} s → ${out}`);
    return 0;
  } catch (e) {
    io.stderr(cliErrorLine(e));
    return 1;
  } finally {
    tts?.dispose();
  }
}
