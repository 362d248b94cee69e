import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  assetFolder,
  DEFAULT_HF_ENDPOINT,
  formatAssetRef,
  hfEndpoint,
  hfResolveUrl,
  isPinnedRevision,
  parseAssetRef,
  parseHfUrl,
} from "../../src/model/hf_url.ts";
import { cacheKey, defaultCacheDir } from "../../src/model/cache.ts";
import { envFlag, envFrom } from "../../src/model/env.ts";
import { ConfigError } from "../../src/errors.ts";

const REV = "39592ff23c9ef80098bb74895d104c26275fe2c9";

describe("asset references", () => {
  test("hf:// URLs: repo, path, revision (default main), normalisation, errors", () => {
    assert.deepEqual(parseHfUrl(`hf://kyutai/pocket-tts/languages/english/model.safetensors@${REV}`), {
      repo: "kyutai/pocket-tts",
      path: "languages/english/model.safetensors",
      revision: REV,
    });
    assert.deepEqual(parseHfUrl("hf://kyutai/pocket-tts-without-voice-cloning/tokenizer.model"), {
      repo: "kyutai/pocket-tts-without-voice-cloning",
      path: "tokenizer.model",
      revision: "main",
    });
    assert.equal(parseHfUrl("hf://o/r/a/./b/../c.bin@v1").path, "a/c.bin");
    assert.throws(() => parseHfUrl("hf://kyutai"), ConfigError);
    assert.throws(() => parseHfUrl("hf://o/r/x@"), /empty revision/);
    assert.throws(() => parseHfUrl("hf://o/r/../../x"), /above the repository root/);
  });

  test("Hugging Face resolve URLs and the endpoint from HF_ENDPOINT", () => {
    assert.equal(
      hfResolveUrl(parseHfUrl(`hf://kyutai/pocket-tts/languages/english/model.safetensors@${REV}`)),
      `https://huggingface.co/kyutai/pocket-tts/resolve/${REV}/languages/english/model.safetensors`,
    );
    assert.equal(
      hfResolveUrl(parseHfUrl("hf://o/r/my dir/a#b.bin@refs/pr/1"), "http://mirror:8080/hf/"),
      "http://mirror:8080/hf/o/r/resolve/refs%2Fpr%2F1/my%20dir/a%23b.bin",
    );
    assert.equal(hfEndpoint(envFrom({})), DEFAULT_HF_ENDPOINT);
    assert.equal(hfEndpoint(envFrom({ HF_ENDPOINT: "https://hf-mirror.com/" })), "https://hf-mirror.com");
    assert.equal(hfEndpoint(envFrom({ HF_ENDPOINT: "  " })), DEFAULT_HF_ENDPOINT);
  });

  test("relative references resolve against a config's folder (path, URL, hf)", () => {
    const local = assetFolder(parseAssetRef("/models/tiny/config.json"));
    assert.deepEqual(parseAssetRef("../text/tokenizer.model", local), {
      kind: "path",
      path: "/models/text/tokenizer.model",
    });
    assert.deepEqual(parseAssetRef("/abs/w.safetensors", local), { kind: "path", path: "/abs/w.safetensors" });
    assert.deepEqual(parseAssetRef("model.safetensors", assetFolder(parseAssetRef("rel/dir/config.json"))), {
      kind: "path",
      path: "rel/dir/model.safetensors",
    });
    const url = assetFolder(parseAssetRef("https://example.com/m/tiny/config.json"));
    assert.equal(
      formatAssetRef(parseAssetRef("../text/tokenizer.model", url)),
      "https://example.com/m/text/tokenizer.model",
    );
    const hf = assetFolder(parseAssetRef("hf://user/model/v2/config.yaml@v1.0"));
    assert.equal(formatAssetRef(parseAssetRef("model.safetensors", hf)), "hf://user/model/v2/model.safetensors@v1.0");
    assert.equal(formatAssetRef(parseAssetRef("../tokenizer.model", hf)), "hf://user/model/tokenizer.model@v1.0");
    assert.equal(formatAssetRef(parseAssetRef(`hf://kyutai/x/y@${REV}`, hf)), `hf://kyutai/x/y@${REV}`);
    assert.deepEqual(parseAssetRef("file:///tmp/a%20b/c.bin"), { kind: "path", path: "/tmp/a b/c.bin" });
    assert.equal(isPinnedRevision(REV), true);
    assert.equal(isPinnedRevision("main"), false);
    assert.equal(isPinnedRevision(REV.slice(0, 7)), false);
  });
});

describe("cache location and keys", () => {
  test("POCKET_TTS_CACHE, then XDG_CACHE_HOME/pocket-tts, then ~/.cache/pocket-tts", () => {
    const env = { POCKET_TTS_CACHE: "/c", XDG_CACHE_HOME: "/x/", HOME: "/home/u" };
    assert.equal(defaultCacheDir(envFrom(env)), "/c");
    assert.equal(defaultCacheDir(envFrom({ ...env, POCKET_TTS_CACHE: undefined })), "/x/pocket-tts");
    assert.equal(defaultCacheDir(envFrom({ HOME: "/home/u" })), "/home/u/.cache/pocket-tts");
    assert.equal(
      defaultCacheDir(envFrom({ LOCALAPPDATA: "C:\\Users\\u\\AppData\\Local" })),
      "C:\\Users\\u\\AppData\\Local\\pocket-tts",
    );
    assert.equal(defaultCacheDir(envFrom({})), null);
    assert.equal(envFlag(envFrom({ HF_HUB_OFFLINE: "1" }), "HF_HUB_OFFLINE"), true);
    assert.equal(envFlag(envFrom({ HF_HUB_OFFLINE: "0" }), "HF_HUB_OFFLINE"), false);
  });

  test("keys: hf files by repo/revision/path, URLs by a hash of the URL", async () => {
    assert.equal(
      await cacheKey(parseAssetRef(`hf://kyutai/pocket-tts/languages/english/model.safetensors@${REV}`)),
      `hf/kyutai/pocket-tts/${REV}/languages/english/model.safetensors`,
    );
    assert.equal(await cacheKey(parseAssetRef("hf://o/r/f.bin@refs/pr/1")), "hf/o/r/refs%2Fpr%2F1/f.bin");
    const k1 = await cacheKey(parseAssetRef("https://example.com/a/model.safetensors"));
    const k2 = await cacheKey(parseAssetRef("https://example.com/b/model.safetensors"));
    assert.match(k1, /^url\/[0-9a-f]{32}\/model\.safetensors$/);
    assert.notEqual(k1, k2);
  });
});
