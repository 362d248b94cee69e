// deno-lint-ignore-file no-explicit-any
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import process from "node:process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fixtureUrl, readFixture, readFixtureJson } from "../support/fixtures.ts";
import { ensureFullWeights } from "../support/full_weights.ts";
import { corruptVariants } from "./corrupt_variants.ts";
import { FakeHub } from "./fake_hub.ts";
import { type InfoIo, runInfo } from "../../src/model/info.ts";
import { createProgressBar, formatProgress } from "../../src/model/progress_bar.ts";
import { UNGATED_REVISION } from "../../src/model/builtin_configs.ts";
import { parseConfig } from "../../src/model/config.ts";
import { syntheticCheckpoint } from "../../src/model/synthetic_weights.ts";

interface Captured extends InfoIo {
  stdout: string;
  stderr: string;
}

function capture(isTTY = false): Captured {
  const c: Captured = {
    stdout: "",
    stderr: "",
    isTTY,
    out: (t) => void (c.stdout += t),
    err: (t) => void (c.stderr += t),
  };
  return c;
}

const TINY_DIR = fileURLToPath(fixtureUrl("model/tiny"));
const TOKENIZER = fileURLToPath(fixtureUrl("model/text/tokenizer.model"));
const dirs: string[] = [];

/** A model folder: the tiny config (tokenizer path made absolute, optional edits) and the given weights. */
async function modelDir(weights: Uint8Array, edit?: (c: Record<string, any>) => void, tokenizer?: Uint8Array) {
  const dir = await mkdtemp(join(tmpdir(), "pocket-info-"));
  dirs.push(dir);
  const config = await readFixtureJson<Record<string, any>>("model/tiny/config.json");
  config.flow_lm.lookup_table.tokenizer_path = tokenizer ? "tokenizer.model" : TOKENIZER;
  edit?.(config);
  await writeFile(join(dir, "config.json"), JSON.stringify(config, null, 2));
  await writeFile(join(dir, "model.safetensors"), weights);
  if (tokenizer) await writeFile(join(dir, "tokenizer.model"), tokenizer);
  return dir;
}

after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe("info command", () => {
  test("exit 0 on the golden tiny model, with dimensions, files and parameters", async () => {
    const io = capture();
    assert.equal(await runInfo(["info", "--model", TINY_DIR], io), 0);
    assert.equal(io.stderr, "");
    const out = io.stdout;
    assert.match(out, /FlowLM\s+d_model 64, 2 layers, 4 heads × 16, FFN 256; flow head 32 wide, 2 blocks/);
    assert.match(out, /Mimi\s+24000 Hz, 12\.5 frames\/s \(1920 samples each\).*context 20/);
    assert.match(out, /Weights\s+150 tensors, 705,770 parameters \(BF16 × 150\); header 16,552 bytes/);
    assert.match(out, /Tokenizer\s+sentencepiece, 4,000 pieces/);
    assert.ok(out.includes(`${join(TINY_DIR, "model.safetensors")}\n              1,428,100 bytes; local file`));
    assert.match(out, /OK: every file is valid\n$/);
  });

  test("--json report", async () => {
    const io = capture();
    assert.equal(await runInfo(["--model", join(TINY_DIR, "config.json"), "--json"], io), 0);
    const r = JSON.parse(io.stdout);
    assert.equal(r.valid, true);
    assert.equal(r.weights.parameters, 705_770);
    assert.deepEqual(r.weights.dtypes, { BF16: 150 });
    assert.equal(r.dimensions.dModel, 64);
    assert.deepEqual(r.files.map((f: { role: string }) => f.role), ["config", "weights", "tokenizer"]);
    assert.equal(r.voiceCloning, true);
  });

  test("exit 1 with one line naming the file and the problem, for every corrupt weights variant", async () => {
    const valid = await readFixture("model/tiny/model.safetensors");
    const variants = corruptVariants(valid);
    assert.equal(variants.length, 10);
    for (const v of variants) {
      const dir = await modelDir(v.bytes);
      const io = capture();
      assert.equal(await runInfo(["--model", dir], io), 1, v.name);
      assert.equal(io.stdout, "", v.name);
      const lines = io.stderr.split("\n");
      assert.equal(lines.length, 2, `${v.name}: ${io.stderr}`); // one line + the final newline
      assert.equal(lines[1], "");
      assert.ok(lines[0].startsWith(`error: ${join(dir, "model.safetensors")}: `), `${v.name}: ${lines[0]}`);
      assert.match(lines[0], v.expect, v.name);
      if (v.tensor) assert.ok(lines[0].includes(`"${v.tensor}"`), `${v.name}: ${lines[0]}`);
      assert.ok(!/\bat .*\.ts:\d+/.test(io.stderr), "no stack trace");
    }
  });

  test("exit 1 when the config's dimensions disagree with the weights", async () => {
    const dir = await modelDir(await readFixture("model/tiny/model.safetensors"), (c) => (c.flow_lm.flow.dim = 48));
    const io = capture();
    assert.equal(await runInfo(["--model", dir], io), 1);
    assert.match(
      io.stderr,
      /^error: .*model\.safetensors: tensor "flow_lm\.flow_net\.cond_embed\.bias": expected shape \[48\] \(from the config\), got \[32\] \(and \d+ more problems\)\n$/,
    );
  });

  test("exit 1 on an invalid config, a missing file, or a broken tokenizer", async () => {
    const weights = await readFixture("model/tiny/model.safetensors");
    const cases: [string, RegExp][] = [
      [
        await modelDir(weights, (c) => (c.mimi.seanet.dropout = 0)),
        /config\.json: unknown key "mimi\.seanet\.dropout"/,
      ],
      [await modelDir(weights, (c) => (c.weights_path = "nope.safetensors")), /nope\.safetensors: file not found/],
      [await modelDir(weights, undefined, new Uint8Array([1, 2, 3, 4, 5])), /tokenizer\.model: /],
    ];
    for (const [dir, re] of cases) {
      const io = capture();
      assert.equal(await runInfo(["--model", dir], io), 1, dir);
      assert.match(io.stderr, /^error: [^\n]+\n$/);
      assert.match(io.stderr, re);
    }
  });

  test("exit 1 when the tokenizer has more pieces than the embedding table has rows", async () => {
    const edit = (c: Record<string, any>) => (c.flow_lm.lookup_table.n_bins = 3000);
    const json = await readFixtureJson<Record<string, any>>("model/tiny/config.json");
    edit(json);
    const dir = await modelDir(syntheticCheckpoint(parseConfig(json)), edit); // weights that fit the edited config
    const io = capture();
    assert.equal(await runInfo(["--model", dir], io), 1);
    assert.equal(
      io.stderr,
      `error: ${TOKENIZER}: 4000 pieces, more than the config's lookup_table.n_bins 3000 (token ids would fall ` +
        `outside the embedding table)\n`,
    );
  });

  test("usage errors exit 2; --help exits 0", async () => {
    let io = capture();
    assert.equal(await runInfo(["--model", TINY_DIR, "--language", "english"], io), 2);
    assert.match(io.stderr, /either --model or --language/);
    io = capture();
    assert.equal(await runInfo(["--frobnicate"], io), 2);
    assert.match(io.stderr, /^error: .*frobnicate/);
    io = capture();
    assert.equal(await runInfo(["--help"], io), 0);
    assert.match(io.stdout, /^Usage: info/);
    io = capture();
    assert.equal(await runInfo(["--language", "french"], io), 1);
    assert.equal(io.stderr, `error: language "french" has no 6-layer model at this version: use "french_24l"\n`);
  });
});

describe("info --language against a Hugging Face mirror (HF_ENDPOINT), full-size weights", () => {
  let hub: FakeHub;
  const saved: Record<string, string | undefined> = {};
  const vars = ["HF_ENDPOINT", "POCKET_TTS_CACHE", "HF_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "POCKET_TTS_OFFLINE"];

  before(async () => {
    const full = new Uint8Array(await readFile(await ensureFullWeights()));
    hub = await new FakeHub().start();
    const repo = "kyutai/pocket-tts-without-voice-cloning";
    await hub.addFile(repo, UNGATED_REVISION, "languages/english/model.safetensors", full);
    await hub.addFile(
      repo,
      UNGATED_REVISION,
      "languages/english/tokenizer.model",
      await readFixture("model/text/tokenizer.model"),
    );
    await hub.addFile("kyutai/pocket-tts", "0".repeat(40), "README.md", new Uint8Array(1), { gated: true });
    const cache = await mkdtemp(join(tmpdir(), "pocket-info-cache-"));
    dirs.push(cache);
    for (const v of vars) saved[v] = process.env[v];
    for (const v of vars) delete process.env[v];
    process.env.HF_ENDPOINT = hub.hubUrl;
    process.env.POCKET_TTS_CACHE = cache;
    process.env.HF_TOKEN_PATH = join(cache, "no-token");
  });

  after(async () => {
    for (const v of vars) {
      if (saved[v] === undefined) delete process.env[v];
      else process.env[v] = saved[v];
    }
    await hub.close();
  });

  test("downloads with a progress bar, falls back from the gated repo, validates 214 tensors; then offline", async () => {
    const io = capture();
    assert.equal(await runInfo(["--language", "english"], io), 0, io.stderr);
    assert.match(io.stderr, /^notice: Could not get the weights with voice cloning \(.*HTTP 401.*\)/m);
    assert.match(
      io.stderr,
      /^downloading hf:\/\/kyutai\/pocket-tts-without-voice-cloning\/languages\/english\/model\.safetensors@d29db7978e464fb90cb3359ee0c69a273b9142cc \(219\.0 MB\)$/m,
    );
    assert.match(io.stdout, /Model\s+english \(built-in, sig a0ac5076\)/);
    assert.match(io.stdout, /Weights\s+214 tensors, 109,502,146 parameters \(BF16 × 214\); header 24,896 bytes/);
    assert.match(
      io.stdout,
      /219,029,196 bytes, revision d29db7978e464fb90cb3359ee0c69a273b9142cc, sha256 022694d1410841e1…; downloaded now to /,
    );
    assert.match(io.stdout, /Voice cloning unavailable/);
    const mark = hub.log.length;
    const again = capture();
    assert.equal(await runInfo(["--language", "english", "--offline", "--verify"], again), 0, again.stderr);
    assert.match(again.stdout, /sha256 022694d1410841e1…; cached at /);
    assert.equal(hub.log.length, mark);
    const german = capture();
    assert.equal(await runInfo(["--language", "german", "--offline"], german), 1);
    assert.match(
      german.stderr,
      /^error: 2 model files are not cached and offline mode is on .*languages\/german\/model\.safetensors.*--model DIR.*POCKET_TTS_CACHE/,
    );
  });
});

describe("progress bar", () => {
  test("terminal: redraws in place at most every interval, ends the line when done", () => {
    let out = "";
    let t = 0;
    const bar = createProgressBar((s) => (out += s), { isTTY: true, width: 10, now: () => t });
    const file = "hf://kyutai/pocket-tts/languages/english/model.safetensors@39592ff23c9ef80098bb74895d104c26275fe2c9";
    bar({ file, loaded: 0, total: 2e6 });
    t = 50;
    bar({ file, loaded: 5e5, total: 2e6 }); // too soon: skipped
    t = 150;
    bar({ file, loaded: 1e6, total: 2e6 });
    bar({ file, loaded: 2e6, total: 2e6 });
    assert.equal(
      out,
      "\rlanguages/english/model.safetensors [----------]   0% 0.0/2.0 MB\x1b[K" +
        "\rlanguages/english/model.safetensors [#####-----]  50% 1.0/2.0 MB\x1b[K" +
        "\rlanguages/english/model.safetensors [##########] 100% 2.0/2.0 MB\x1b[K\n",
    );
    assert.equal(formatProgress({ file: "x/y.bin", loaded: 3e6, total: null }), "x/y.bin 3.0 MB");
  });

  test("not a terminal: one line at the start and one at the end; end() closes an open line", () => {
    let out = "";
    const bar = createProgressBar((s) => (out += s), { isTTY: false });
    bar({ file: "a", loaded: 0, total: 1e6 });
    bar({ file: "a", loaded: 5e5, total: 1e6 });
    bar({ file: "a", loaded: 1e6, total: 1e6 });
    assert.equal(out, "downloading a (1.0 MB)\ndownloaded a\n");
    let tty = "";
    const b2 = createProgressBar((s) => (tty += s), { isTTY: true });
    b2({ file: "a", loaded: 0, total: 10 });
    b2.end();
    b2.end();
    assert.ok(tty.endsWith("\x1b[K\n"));
  });
});
