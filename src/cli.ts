/**
 * The command-line interface: `deno run -A mod.ts [options] "text"` and `deno run -A mod.ts info …`.
 * Bad input ends with a one-line `error: …` on stderr and exit code 1, never a stack trace.
 *
 * @module
 */

import { PocketTtsError } from "./errors.ts";
import { runInfo } from "./model/info.ts";
import { VERSION } from "./version.ts";

/** Where the CLI writes; injectable for tests. */
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
       pocket-tts info [--model DIR|URL | --language NAME]

Speak TEXT (or stdin with -) and write a WAV file.

Subcommands:
  info                 Resolve and validate a model's files without generating

Options:
  -h, --help           Show this help
  --version            Show the version`;

/**
 * Runs the CLI with `argv` (without the program name) and returns the exit code.
 *
 * @example
 * ```ts
 * const code = await runCli(["info", "--language", "english"]);
 * ```
 */
export async function runCli(argv: string[], io: CliIo = defaultIo): Promise<number> {
  try {
    if (argv[0] === "info") return await runInfo(argv.slice(1));
    if (argv.includes("--help") || argv.includes("-h")) {
      io.stdout(USAGE);
      return 0;
    }
    if (argv.includes("--version")) {
      io.stdout(`@pocket/tts ${VERSION}`);
      return 0;
    }
    throw new PocketTtsError(
      "not_available",
      "speech generation is not available in this build yet; `info` validates a model",
    );
  } catch (e) {
    io.stderr(`error: ${e instanceof PocketTtsError ? e.message : String(e)}`);
    return 1;
  }
}
