import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fixtureUrl, readFixture } from "../support/fixtures.ts";
import { FakeHub } from "./fake_hub.ts";
import { fetchAsset, type FetchAssetOptions, resolveModel } from "../../src/model/assets.ts";
import { BrowserCache, sha256Hex } from "../../src/model/cache.ts";
import { openSafetensors, parseSafetensors } from "../../src/model/safetensors.ts";
import type { ProgressEvent } from "../../src/model/download.ts";
import { envFrom } from "../../src/model/env.ts";
import { DownloadError, ModelFileError, OfflineError } from "../../src/errors.ts";
import { GATED_REVISION, UNGATED_REVISION } from "../../src/model/builtin_configs.ts";

const GATED = "kyutai/pocket-tts";
const UNGATED = "kyutai/pocket-tts-without-voice-cloning";
const WEIGHTS = "languages/english/model.safetensors";
const TOKENIZER = "languages/english/tokenizer.model";
const REV_A = "a".repeat(40);
const REV_B = "b".repeat(40);

let hub: FakeHub;
let tiny: Uint8Array;
let tokenizer: Uint8Array;
let tinyConfig: Uint8Array;
const gatedWeights = new Uint8Array(300_000).map((_, i) => (i * 7) & 255); // distinct from the ungated bytes
const dirs: string[] = [];

async function tmpCache(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "pocket-cache-"));
  dirs.push(d);
  return d;
}

async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? join(prefix, e.name) : e.name;
    if (e.isDirectory()) out.push(...await listFiles(dir, rel));
    else out.push(rel);
  }
  return out.sort();
}

function opts(cache: string, extra: FetchAssetOptions = {}): FetchAssetOptions {
  return { cache, endpoint: hub.hubUrl, token: null, env: envFrom({}), ...extra };
}

before(async () => {
  tiny = await readFixture("model/tiny/model.safetensors");
  tokenizer = await readFixture("model/text/tokenizer.model");
  tinyConfig = await readFixture("model/tiny/config.json");
  hub = await new FakeHub().start();
  await hub.addFile(GATED, GATED_REVISION, WEIGHTS, gatedWeights, { gated: true });
  await hub.addFile(UNGATED, UNGATED_REVISION, WEIGHTS, tiny);
  await hub.addFile(UNGATED, UNGATED_REVISION, TOKENIZER, tokenizer);
  await hub.addFile("acme/voices", REV_A, "model.safetensors", tiny, { ref: "main" });
  await hub.addFile("acme/voices", REV_B, "model.safetensors", gatedWeights);
  await hub.addFile("acme/voices", REV_A, "notes.txt", new TextEncoder().encode("revision A"), { ref: "main" });
  await hub.addFile("acme/voices", REV_B, "notes.txt", new TextEncoder().encode("revision B"));
  // a custom model served by plain URL, laid out like the golden folder (tokenizer at ../text/)
  hub.statics.set("models/tiny/config.json", tinyConfig);
  hub.statics.set("models/tiny/model.safetensors", tiny);
  hub.statics.set("models/text/tokenizer.model", tokenizer);
});

after(async () => {
  await hub.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe("downloads from a Hugging Face look-alike", () => {
  test("success with progress; the token stays on the hub; the file is cached with its sha256", async () => {
    const cache = await tmpCache();
    const events: ProgressEvent[] = [];
    const mark = hub.log.length;
    const a = await fetchAsset(
      `hf://${GATED}/${WEIGHTS}@${GATED_REVISION}`,
      opts(cache, {
        token: hub.token,
        onProgress: (e) => events.push({ ...e }),
      }),
    );
    assert.equal(a.origin, "download");
    assert.deepEqual(await a.read(), gatedWeights);
    assert.equal(a.size, gatedWeights.length);
    assert.equal(a.sha256, await sha256Hex(gatedWeights));
    assert.equal(a.revision, GATED_REVISION);
    assert.equal(a.path, join(cache, "hf", GATED, GATED_REVISION, WEIGHTS));
    assert.deepEqual(new Uint8Array(await readFile(a.path!)), gatedWeights);
    // progress: starts at 0, increases, ends at the total, names the file
    assert.ok(events.length >= 2);
    assert.deepEqual(events[0], {
      file: `hf://${GATED}/${WEIGHTS}@${GATED_REVISION}`,
      loaded: 0,
      total: gatedWeights.length,
    });
    assert.equal(events.at(-1)!.loaded, gatedWeights.length);
    assert.ok(events.every((e, i) => i === 0 || e.loaded >= events[i - 1].loaded));
    // request path is HF's layout; the token went to the hub but not to the CDN (another origin)
    const reqs = hub.since(mark);
    assert.deepEqual(reqs.map((r) => [r.server, r.path]), [
      ["hub", `/${GATED}/resolve/${GATED_REVISION}/${WEIGHTS}`],
      ["cdn", `/blobs/${a.sha256}`],
    ]);
    assert.equal(reqs[0].authorization, `Bearer ${hub.token}`);
    assert.equal(reqs[1].authorization, null);
    assert.deepEqual(await listFiles(cache), [
      join(".meta", "hf", GATED, GATED_REVISION, WEIGHTS + ".json"),
      join("hf", GATED, GATED_REVISION, WEIGHTS),
    ]);
  });

  test("cache hit without network, even with the server gone from the endpoint", async () => {
    const cache = await tmpCache();
    const spec = `hf://${UNGATED}/${TOKENIZER}@${UNGATED_REVISION}`;
    await fetchAsset(spec, opts(cache));
    const mark = hub.log.length;
    const hit = await fetchAsset(spec, opts(cache, { endpoint: "http://127.0.0.1:9" }));
    assert.equal(hit.origin, "cache");
    assert.deepEqual(await hit.read(), tokenizer);
    assert.equal(hub.log.length, mark);
    // verify: true re-hashes the cached copy (still no network)
    const verified = await fetchAsset(spec, opts(cache, { endpoint: "http://127.0.0.1:9", verify: true }));
    assert.equal(verified.origin, "cache");
  });

  test("HF_ENDPOINT from the environment selects the server", async () => {
    const cache = await tmpCache();
    const a = await fetchAsset(`hf://${UNGATED}/${TOKENIZER}@${UNGATED_REVISION}`, {
      cache,
      token: null,
      env: envFrom({ HF_ENDPOINT: hub.hubUrl + "/" }),
    });
    assert.equal(a.url, `${hub.hubUrl}/${UNGATED}/resolve/${UNGATED_REVISION}/${TOKENIZER}`);
    assert.deepEqual(await a.read(), tokenizer);
  });

  test("revision pinning: each revision is its own entry; a branch is revalidated, a commit never", async () => {
    const cache = await tmpCache();
    const a = await fetchAsset(`hf://acme/voices/notes.txt@${REV_A}`, opts(cache));
    const b = await fetchAsset(`hf://acme/voices/notes.txt@${REV_B}`, opts(cache));
    assert.equal(new TextDecoder().decode(await a.read()), "revision A");
    assert.equal(new TextDecoder().decode(await b.read()), "revision B");
    assert.notEqual(a.path, b.path);
    // unpinned: hf://…/notes.txt means @main
    const m1 = await fetchAsset("hf://acme/voices/notes.txt", opts(cache));
    assert.equal(m1.revision, "main");
    assert.equal(new TextDecoder().decode(await m1.read()), "revision A");
    let mark = hub.log.length;
    const m2 = await fetchAsset("hf://acme/voices/notes.txt", opts(cache));
    assert.equal(m2.origin, "cache");
    assert.deepEqual(hub.since(mark).map((r) => r.method), ["HEAD"]);
    hub.setRef("acme/voices", "main", REV_B);
    mark = hub.log.length;
    const m3 = await fetchAsset("hf://acme/voices/notes.txt", opts(cache));
    assert.equal(m3.origin, "download");
    assert.equal(new TextDecoder().decode(await m3.read()), "revision B");
    assert.deepEqual(hub.since(mark).map((r) => r.method), ["HEAD", "GET"]);
    // the pinned entries did not move
    mark = hub.log.length;
    assert.equal(
      new TextDecoder().decode(await (await fetchAsset(`hf://acme/voices/notes.txt@${REV_A}`, opts(cache))).read()),
      "revision A",
    );
    assert.equal(hub.log.length, mark);
    // offline, a branch is served from the cache without asking
    const off = await fetchAsset("hf://acme/voices/notes.txt", opts(cache, { offline: true }));
    assert.equal(off.origin, "cache");
    assert.equal(hub.log.length, mark);
    hub.setRef("acme/voices", "main", REV_A);
  });

  test("404: typed error naming the file and HF's error code; nothing cached", async () => {
    const cache = await tmpCache();
    const cases: [string, RegExp][] = [
      [`hf://${UNGATED}/languages/klingon/model.safetensors@${UNGATED_REVISION}`, /EntryNotFound/],
      [`hf://${UNGATED}/${WEIGHTS}@${"c".repeat(40)}`, /RevisionNotFound/],
      [`hf://nobody/nothing/x.bin@main`, /RepoNotFound/],
    ];
    for (const [spec, code] of cases) {
      await assert.rejects(fetchAsset(spec, opts(cache)), (e: unknown) => {
        assert.ok(e instanceof DownloadError);
        assert.equal(e.code, "not_found");
        assert.equal(e.status, 404);
        assert.ok(e.message.startsWith(`${spec}: not found (HTTP 404`), e.message);
        assert.match(e.message, code);
        return true;
      });
    }
    assert.deepEqual(await listFiles(cache), []);
  });

  test("401 on the gated repository: typed error that says what to do", async () => {
    const cache = await tmpCache();
    await assert.rejects(fetchAsset(`hf://${GATED}/${WEIGHTS}@${GATED_REVISION}`, opts(cache)), (e: unknown) => {
      assert.ok(e instanceof DownloadError);
      assert.equal(e.code, "unauthorized");
      assert.equal(e.status, 401);
      assert.match(e.message, /access denied \(HTTP 401 Unauthorized, GatedRepo\).*accept its terms.*HF_TOKEN/);
      return true;
    });
    await assert.rejects(
      fetchAsset(`hf://${GATED}/${WEIGHTS}@${GATED_REVISION}`, opts(cache, { token: "hf_wrong" })),
      /the token \(HF_TOKEN\) was refused/,
    );
  });

  for (const fault of ["cut", "reset"] as const) {
    test(`body ${fault === "cut" ? "cut off mid-transfer" : "dropped mid-transfer"}: no cache entry left, next call recovers`, async () => {
      const cache = await tmpCache();
      const spec = `hf://${UNGATED}/${WEIGHTS}@${UNGATED_REVISION}`;
      hub.fail(WEIGHTS, fault);
      const events: ProgressEvent[] = [];
      await assert.rejects(fetchAsset(spec, opts(cache, { onProgress: (e) => events.push(e) })), (e: unknown) => {
        assert.ok(e instanceof DownloadError, String(e));
        assert.equal(e.code, "incomplete");
        assert.ok(e.message.startsWith(`${spec}: `), e.message);
        assert.match(e.message, /(cut off after|connection lost after) \d+ (of|bytes)/);
        return true;
      });
      assert.ok(events.at(-1)!.loaded < tiny.length);
      assert.deepEqual(await listFiles(cache), []); // no partial file, no temp file, no record
      const ok = await fetchAsset(spec, opts(cache));
      assert.equal(ok.origin, "download");
      assert.deepEqual(await ok.read(), tiny);
    });
  }

  test("a small file cut off mid-transfer (served directly, not via the CDN)", async () => {
    const cache = await tmpCache();
    hub.fail(TOKENIZER, "cut");
    await assert.rejects(fetchAsset(`hf://${UNGATED}/${TOKENIZER}@${UNGATED_REVISION}`, opts(cache)), {
      code: "incomplete",
    });
    assert.deepEqual(await listFiles(cache), []);
  });

  test("connection dropped before any response: typed error, nothing cached, next call recovers", async () => {
    const cache = await tmpCache();
    const spec = `hf://${UNGATED}/${TOKENIZER}@${UNGATED_REVISION}`;
    hub.fail(TOKENIZER, "drop");
    await assert.rejects(fetchAsset(spec, opts(cache)), (e: unknown) => {
      assert.ok(e instanceof OfflineError, String(e));
      assert.deepEqual(e.missing, [spec]);
      assert.match(e.message, /not cached and it cannot be downloaded \(cannot reach 127\.0\.0\.1:\d+/);
      return true;
    });
    assert.deepEqual(await listFiles(cache), []);
    assert.deepEqual(await (await fetchAsset(spec, opts(cache))).read(), tokenizer);
  });

  test("checksum mismatch: announced sha256 or a caller's expected sha256/size; nothing cached", async () => {
    const cache = await tmpCache();
    const spec = `hf://${UNGATED}/${WEIGHTS}@${UNGATED_REVISION}`;
    hub.fail(WEIGHTS, "bad_sha");
    await assert.rejects(fetchAsset(spec, opts(cache)), (e: unknown) => {
      assert.ok(e instanceof DownloadError);
      assert.equal(e.code, "checksum");
      assert.match(e.message, /sha256 mismatch: expected 0{64}, got [0-9a-f]{64}; the download was discarded/);
      return true;
    });
    await assert.rejects(
      fetchAsset(spec, opts(cache, { expectedSha256: "f".repeat(64) })),
      /sha256 mismatch: expected f{64}/,
    );
    await assert.rejects(fetchAsset(spec, opts(cache, { expectedSize: 12 })), { code: "incomplete" });
    await assert.rejects(
      fetchAsset(`${hub.hubUrl}/models/tiny/model.safetensors`, opts(cache, { expectedSize: tiny.length + 1 })),
      /size mismatch|cut off/,
    );
    assert.deepEqual(await listFiles(cache), []);
    hub.fail(WEIGHTS, "error500");
    await assert.rejects(fetchAsset(spec, opts(cache)), { code: "http_error", status: 500 });
  });

  test("a safetensors file read straight from a URL", async () => {
    const st = await openSafetensors(`${hub.hubUrl}/models/tiny/model.safetensors`);
    assert.equal(st.tensors.length, 150);
    assert.deepEqual(await st.read("flow_lm.bos_emb"), await parseSafetensors(tiny).read("flow_lm.bos_emb"));
    await assert.rejects(openSafetensors(`${hub.hubUrl}/models/none.safetensors`), /HTTP 404/);
  });

  test("a model given as a YAML config file", async () => {
    const dir = await tmpCache();
    const cfg = JSON.parse(new TextDecoder().decode(tinyConfig));
    const yaml = (v: unknown, ind = ""): string =>
      Object.entries(v as Record<string, unknown>).map(([k, x]) =>
        x !== null && typeof x === "object" && !Array.isArray(x)
          ? `${ind}${k}:\n${yaml(x, ind + "  ")}`
          : `${ind}${k}: ${Array.isArray(x) ? `[${x.join(", ")}]` : x === null ? "null" : String(x)}\n`
      ).join("");
    cfg.weights_path = fileURLToPath(fixtureUrl("model/tiny/model.safetensors"));
    cfg.flow_lm.lookup_table.tokenizer_path = fileURLToPath(fixtureUrl("model/text/tokenizer.model"));
    await writeFile(join(dir, "model.yaml"), "# a YAML config\n" + yaml(cfg));
    const m = await resolveModel({ model: join(dir, "model.yaml") }, { cache: null, env: envFrom({}) });
    assert.equal(m.configSource, join(dir, "model.yaml"));
    assert.equal(m.config.mimi.frame_rate, 12.5);
    assert.deepEqual(m.config.mimi.seanet.ratios, [6, 5, 4]);
    assert.equal(m.weights.path, cfg.weights_path);
  });

  test("a missing local file is a typed error", async () => {
    await assert.rejects(fetchAsset("/no/such/dir/model.safetensors"), (e: unknown) => {
      assert.ok(e instanceof ModelFileError);
      assert.equal(e.message, "/no/such/dir/model.safetensors: file not found");
      return true;
    });
  });

  test("browser Cache API store (where the runtime has one)", {
    skip: typeof caches === "undefined" ? "no Cache API" : false,
  }, async () => {
    const store = new BrowserCache(`pocket-tts-test-${Math.random().toString(36).slice(2)}`);
    try {
      const spec = `hf://${UNGATED}/${TOKENIZER}@${UNGATED_REVISION}`;
      const a = await fetchAsset(spec, { cache: store, endpoint: hub.hubUrl, token: null, env: envFrom({}) });
      assert.equal(a.origin, "download");
      assert.equal(a.path, null);
      const mark = hub.log.length;
      const b = await fetchAsset(spec, { cache: store, endpoint: hub.hubUrl, token: null, env: envFrom({}) });
      assert.equal(b.origin, "cache");
      assert.deepEqual(await b.read(), tokenizer);
      assert.equal(hub.log.length, mark);
      hub.fail(WEIGHTS, "bad_sha");
      await assert.rejects(
        fetchAsset(`hf://${UNGATED}/${WEIGHTS}@${UNGATED_REVISION}`, {
          cache: store,
          endpoint: hub.hubUrl,
          token: null,
          env: envFrom({}),
        }),
        { code: "checksum" },
      );
      assert.equal(await store.get(`hf/${UNGATED}/${UNGATED_REVISION}/${WEIGHTS}`), null);
    } finally {
      await caches.delete(store.location);
    }
  });
});

describe("resolving a whole model", () => {
  test("built-in language: 401 on the gated weights, fallback to the ungated ones with a notice", async () => {
    const cache = await tmpCache();
    const notices: string[] = [];
    const m = await resolveModel({ language: "english" }, opts(cache, { onNotice: (n) => notices.push(n) }));
    assert.equal(m.hasVoiceCloning, false);
    assert.equal(m.weights.source, `hf://${UNGATED}/${WEIGHTS}@${UNGATED_REVISION}`);
    assert.deepEqual(await m.weights.read(), tiny);
    assert.deepEqual(await m.tokenizer.read(), tokenizer);
    assert.equal(m.configSource, 'built-in language "english"');
    assert.equal(notices.length, 1);
    assert.deepEqual(m.notices, notices);
    assert.match(
      notices[0],
      /Could not get the weights with voice cloning \(.*HTTP 401.*\)\. Using hf:\/\/kyutai\/pocket-tts-without-voice-cloning\/.* instead: voice cloning from audio is unavailable/,
    );
    assert.match(notices[0], /accept the terms at https:\/\/huggingface\.co\/kyutai\/pocket-tts and set HF_TOKEN/);
  });

  test("built-in language with a valid token: the gated weights, voice cloning available", async () => {
    const cache = await tmpCache();
    const m = await resolveModel({ language: "english" }, opts(cache, { token: hub.token }));
    assert.equal(m.hasVoiceCloning, true);
    assert.equal(m.weights.source, `hf://${GATED}/${WEIGHTS}@${GATED_REVISION}`);
    assert.deepEqual(m.notices, []);
  });

  test("offline with an empty cache: one error naming every missing file and how to provide it", async () => {
    const cache = await tmpCache();
    const mark = hub.log.length;
    await assert.rejects(resolveModel({ language: "english" }, opts(cache, { offline: true })), (e: unknown) => {
      assert.ok(e instanceof OfflineError);
      assert.equal(e.code, "offline");
      assert.deepEqual(e.missing, [
        `hf://${GATED}/${WEIGHTS}@${GATED_REVISION} or hf://${UNGATED}/${WEIGHTS}@${UNGATED_REVISION}`,
        `hf://${UNGATED}/${TOKENIZER}@${UNGATED_REVISION}`,
      ]);
      for (const f of e.missing) assert.ok(e.message.includes(f));
      assert.match(e.message, /^2 model files are not cached and offline mode is on/);
      assert.match(e.message, /--model DIR/);
      assert.match(e.message, /POCKET_TTS_CACHE/);
      assert.ok(!e.message.includes("\n"));
      return true;
    });
    assert.equal(hub.log.length, mark);
    // HF_HUB_OFFLINE=1 does the same
    await assert.rejects(
      resolveModel({ language: "german" }, { cache, token: null, env: envFrom({ HF_HUB_OFFLINE: "1" }) }),
      OfflineError,
    );
  });

  test("network unreachable with an empty cache: the same single error, with the cause", async () => {
    const cache = await tmpCache();
    await assert.rejects(
      resolveModel({ language: "english" }, opts(cache, { endpoint: "http://127.0.0.1:9" })),
      (e: unknown) => {
        assert.ok(e instanceof OfflineError);
        assert.equal(e.missing.length, 2);
        assert.match(e.message, /not cached and they cannot be downloaded \(cannot reach 127\.0\.0\.1:9/);
        return true;
      },
    );
  });

  test("offline with the ungated files cached: resolves from the cache with the fallback notice", async () => {
    const cache = await tmpCache();
    await resolveModel({ language: "english" }, opts(cache));
    const mark = hub.log.length;
    const notices: string[] = [];
    const m = await resolveModel(
      { language: "english" },
      opts(cache, { offline: true, onNotice: (n) => notices.push(n) }),
    );
    assert.equal(hub.log.length, mark);
    assert.equal(m.weights.origin, "cache");
    assert.equal(m.tokenizer.origin, "cache");
    assert.equal(m.hasVoiceCloning, false);
    assert.match(notices[0], /not cached and cannot be downloaded/);
  });

  test("custom model by URL: config.json, then weights and tokenizer relative to it", async () => {
    const cache = await tmpCache();
    const m = await resolveModel({ model: `${hub.hubUrl}/models/tiny/` }, opts(cache));
    assert.equal(m.configSource, `${hub.hubUrl}/models/tiny/config.json`);
    assert.equal(m.weights.source, `${hub.hubUrl}/models/tiny/model.safetensors`);
    assert.equal(m.tokenizer.source, `${hub.hubUrl}/models/text/tokenizer.model`);
    assert.equal(m.hasVoiceCloning, true);
    assert.deepEqual(await m.weights.read(), tiny);
    assert.equal(m.config.flow_lm.transformer.d_model, 64);
    assert.ok(m.weights.path!.startsWith(join(cache, "url")));
    // and again from the cache, without network
    const mark = hub.log.length;
    const again = await resolveModel({ model: `${hub.hubUrl}/models/tiny/config.json` }, opts(cache));
    assert.equal(again.weights.origin, "cache");
    assert.equal(hub.log.length, mark);
  });

  test("custom model directory: used in place; a missing file is named", async () => {
    const dir = fileURLToPath(fixtureUrl("model/tiny"));
    const m = await resolveModel({ model: dir }, { cache: null, env: envFrom({}) });
    assert.equal(m.weights.origin, "local");
    assert.equal(m.weights.path, join(dir, "model.safetensors"));
    assert.equal(m.tokenizer.path, fileURLToPath(fixtureUrl("model/text/tokenizer.model")));
    assert.equal(m.configFile!.path, join(dir, "config.json"));
    await assert.rejects(
      resolveModel({ model: join(dir, "nope") }, { cache: null, env: envFrom({}) }),
      (e: unknown) => {
        assert.ok(e instanceof ModelFileError);
        assert.match(e.message, /nope\/config\.json: file not found$/);
        return true;
      },
    );
    await assert.rejects(resolveModel({ language: "english", model: dir }), /either a language or a model/);
  });
});
