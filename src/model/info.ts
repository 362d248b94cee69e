/**
 * The `info` command: resolve a model without generating anything, validate every file (config schema, tokenizer,
 * safetensors header and tensor shapes against the config) and print what a user needs to know: the config's
 * dimensions, each file's size, source, revision and cache state, the parameter count and dtypes.
 *
 * ```
 * info [--model DIR|URL | --language NAME] [--offline] [--verify] [--json]
 * ```
 *
 * Exit code 0 when the model is valid; 1 with a one-line `error: …` on stderr naming the file and the problem
 * (no stack trace) when it is not; 2 for a usage error.
 *
 * @module
 */
import { PocketTtsError } from "../errors.ts";
import { type ResolvedAsset, type ResolvedModel, resolveModel } from "./assets.ts";
import { builtinLanguage, builtinLanguageNames, DEFAULT_LANGUAGE } from "./builtin_configs.ts";
import { modelDimensions } from "./config.ts";
import { createProgressBar } from "./progress_bar.ts";
import { type ModelCheck, validateModel } from "./validate.ts";

/** Where `info` writes (defaults: the process's stdout and stderr). */
export interface InfoIo {
  /** Writes to standard output. */
  out(text: string): void;
  /** Writes to standard error. */
  err(text: string): void;
  /** Whether stderr is a terminal (progress bar redraws in place). */
  isTTY: boolean;
}

/** Usage text of the `info` command. */
export const INFO_USAGE = `Usage: info [--model DIR|URL | --language NAME] [--offline] [--verify] [--json]

Resolve a model (downloading missing files), validate every file, and print its dimensions, files and parameters.

  --model DIR|URL    a folder, URL or hf://owner/repo[/dir][@rev] holding config.json (+ weights, tokenizer),
                     or a config file (.json, .yaml)
  --language NAME    a built-in language (default ${DEFAULT_LANGUAGE}): ${builtinLanguageNames().join(", ")}
  --offline          use cached files only (also: HF_HUB_OFFLINE=1)
  --verify           re-hash cached files against their recorded sha256
  --json             print the report as JSON
  -h, --help         show this help

Environment: POCKET_TTS_CACHE (cache folder), HF_ENDPOINT (Hugging Face mirror), HF_TOKEN (gated weights).
Exit status: 0 valid, 1 invalid or unavailable (one-line error on stderr), 2 usage error.
`;

async function defaultIo(): Promise<InfoIo> {
  const { default: process } = await import("node:process");
  return {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    isTTY: Boolean(process.stderr.isTTY),
  };
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, " ").trim();
}

function n(x: number): string {
  return x.toLocaleString("en-US");
}

function state(a: ResolvedAsset): string {
  switch (a.origin) {
    case "local":
      return "local file";
    case "cache":
      return a.path ? `cached at ${a.path}` : "cached (browser cache)";
    case "download":
      return a.path ? `downloaded now to ${a.path}` : "downloaded now (not cached)";
  }
}

function fileJson(role: string, a: ResolvedAsset) {
  return {
    role,
    source: a.source,
    size: a.size,
    revision: a.revision,
    sha256: a.sha256,
    state: a.origin,
    path: a.path,
    url: a.url,
  };
}

/** The report as a JSON-ready object. */
export function infoReportJson(model: ResolvedModel, check: ModelCheck): Record<string, unknown> {
  const files = [
    ...(model.configFile ? [fileJson("config", model.configFile)] : []),
    fileJson("weights", model.weights),
    fileJson("tokenizer", model.tokenizer),
  ];
  return {
    valid: true,
    model: model.name,
    language: builtinLanguage(model.name) ?? null,
    configSource: model.configSource,
    dimensions: modelDimensions(model.config),
    config: model.config,
    files,
    weights: check.weights,
    tokenizer: check.tokenizer,
    voiceCloning: model.hasVoiceCloning,
    notices: model.notices,
  };
}

/** The report as text lines. */
export function infoReportText(model: ResolvedModel, check: ModelCheck): string {
  const c = model.config;
  const d = modelDimensions(c);
  const lang = builtinLanguage(model.name);
  const lines: string[] = [];
  const row = (k: string, v: string) => lines.push(`${k.padEnd(14)}${v}`);
  row("Model", lang ? `${model.name} (built-in, sig ${lang.sig}${lang.preview ? ", preview" : ""})` : model.name);
  row("Config", model.configSource);
  row(
    "FlowLM",
    `d_model ${d.dModel}, ${d.numLayers} layers, ${d.numHeads} heads × ${d.headDim}, FFN ${d.ffnDim}; ` +
      `flow head ${d.flowDim} wide, ${d.flowDepth} blocks; vocabulary ${d.vocabSize} (+1 padding row); latent ${d.latentDim}`,
  );
  row(
    "Mimi",
    `${d.sampleRate} Hz, ${d.frameRate} frames/s (${d.samplesPerFrame} samples each); SEANet ${c.mimi.seanet.n_filters} ` +
      `filters, ratios [${c.mimi.seanet.ratios.join(", ")}], dimension ${c.mimi.seanet.dimension}; transformer ` +
      `d_model ${d.mimiDModel}, ${d.mimiNumLayers} layers, ${d.mimiNumHeads} heads, FFN ${d.mimiFfnDim}, context ` +
      `${d.mimiContext}; inner_dim ${d.innerDim}, outer_dim ${d.outerDim}`,
  );
  row(
    "Text",
    `tokenizer ${c.flow_lm.lookup_table.tokenizer}; insert_bos_before_voice ${c.flow_lm.insert_bos_before_voice}; ` +
      `pad_with_spaces_for_short_inputs ${c.pad_with_spaces_for_short_inputs}; remove_semicolons ` +
      `${c.remove_semicolons}; frames after EOS ${c.model_recommended_frames_after_eos ?? "automatic"}`,
  );
  lines.push("Files");
  const file = (role: string, a: ResolvedAsset) => {
    const rev = a.revision ? `, revision ${a.revision}` : "";
    const sha = a.sha256 ? `, sha256 ${a.sha256.slice(0, 16)}…` : "";
    lines.push(`  ${role.padEnd(12)}${a.source}`);
    lines.push(`  ${"".padEnd(12)}${n(a.size)} bytes${rev}${sha}; ${state(a)}`);
  };
  if (model.configFile) file("config", model.configFile);
  file("weights", model.weights);
  file("tokenizer", model.tokenizer);
  const w = check.weights;
  const dtypes = Object.entries(w.dtypes).map(([k, v]) => `${k} × ${v}`).join(", ");
  row(
    "Weights",
    `${n(w.tensors)} tensors, ${n(w.parameters)} parameters (${dtypes}); header ${n(w.headerBytes)} bytes`,
  );
  row("Tokenizer", `${check.tokenizer.kind}, ${n(check.tokenizer.vocabSize)} pieces`);
  row(
    "Voice cloning",
    model.hasVoiceCloning ? "available" : "unavailable (weights without the voice-cloning encoder)",
  );
  lines.push("OK: every file is valid");
  return lines.join("\n") + "\n";
}

/**
 * Run the `info` command.
 *
 * @param argv the arguments after `info` (a leading `"info"` is skipped)
 * @param io where to write (default: the process's stdout/stderr)
 * @returns the exit code: 0 valid, 1 invalid or unavailable, 2 usage error
 */
export async function runInfo(argv: string[], io?: InfoIo): Promise<number> {
  const out = io ?? await defaultIo();
  const args = argv[0] === "info" ? argv.slice(1) : argv;
  let values: {
    model?: string;
    language?: string;
    offline?: boolean;
    verify?: boolean;
    json?: boolean;
    help?: boolean;
  };
  const { parseArgs } = await import("node:util");
  try {
    ({ values } = parseArgs({
      args,
      options: {
        model: { type: "string" },
        language: { type: "string" },
        offline: { type: "boolean" },
        verify: { type: "boolean" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    out.err(`error: ${oneLine(e instanceof Error ? e.message : String(e))}\n${INFO_USAGE}`);
    return 2;
  }
  if (values.help) {
    out.out(INFO_USAGE);
    return 0;
  }
  if (values.model !== undefined && values.language !== undefined) {
    out.err(`error: give either --model or --language, not both\n`);
    return 2;
  }
  const bar = createProgressBar(out.err, { isTTY: out.isTTY });
  try {
    const model = await resolveModel(
      values.model !== undefined ? { model: values.model } : { language: values.language ?? DEFAULT_LANGUAGE },
      {
        offline: values.offline ? true : undefined,
        verify: values.verify,
        onProgress: bar,
        onNotice: (m) => {
          bar.end();
          out.err(`notice: ${oneLine(m)}\n`);
        },
      },
    );
    bar.end();
    const check = await validateModel(model);
    if (values.json) out.out(JSON.stringify(infoReportJson(model, check), null, 2) + "\n");
    else out.out(infoReportText(model, check));
    return 0;
  } catch (e) {
    bar.end();
    const msg = e instanceof PocketTtsError
      ? e.message
      : `unexpected failure: ${e instanceof Error ? e.message : String(e)}`;
    out.err(`error: ${oneLine(msg)}\n`);
    return 1;
  }
}
