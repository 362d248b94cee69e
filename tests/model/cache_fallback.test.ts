// Caches where nothing can be persisted: a directory that cannot be written falls back to memory (downloads still
// work, nothing half-written), the default without any cache directory is memory, and a browser storage quota too
// small for a file is a typed DownloadError with code "quota", not a crash. (Real permissions are exercised by
// tests/delivery/serverless.test.ts: `deno serve` without write permission or HOME.)
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  type AssetCache,
  BrowserCache,
  type CachedFile,
  FsOrMemoryCache,
  MemoryCache,
  openCache,
} from "../../src/model/cache.ts";
import { DownloadError } from "../../src/errors.ts";
import { envFrom } from "../../src/model/env.ts";

async function* chunks(...parts: (number[] | Uint8Array)[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield p instanceof Uint8Array ? p : new Uint8Array(p);
}

const META = { source: "https://example.test/model.safetensors", url: "https://example.test/model.safetensors" };

/** A directory cache whose writes fail as a read-only or forbidden directory does, before reading any chunk. */
function unwritable(error: Error): AssetCache {
  const store = new MemoryCache();
  return {
    kind: "fs",
    location: "/readonly/pocket-tts",
    get: () => Promise.resolve(null),
    put: () => Promise.reject(error),
    delete: (k) => store.delete(k),
    verify: (e: CachedFile) => store.verify(e),
  };
}

describe("caches with nowhere to persist", () => {
  for (
    const error of [
      Object.assign(new Error("EACCES: permission denied, mkdir"), { code: "EACCES" }),
      Object.assign(new Error("EROFS: read-only file system"), { code: "EROFS" }),
      Object.assign(new Error('Requires write access to "/readonly"'), { name: "NotCapable" }),
    ]
  ) {
    test(`an unwritable directory (${(error as { code?: string }).code ?? error.name}) falls back to memory`, async () => {
      const notices: string[] = [];
      const cache = new FsOrMemoryCache(unwritable(error), (m) => notices.push(m));
      const entry = await cache.put("url/abc/model.safetensors", chunks([1, 2], [3]), {
        ...META,
        etag: null,
        commit: null,
      });
      assert.deepEqual(await entry.read(), new Uint8Array([1, 2, 3]));
      assert.equal(entry.path, null);
      assert.equal(cache.kind, "memory");
      assert.equal(notices.length, 1);
      assert.match(notices[0], /cannot write the cache directory \/readonly\/pocket-tts .*keeping downloads in memory/);
      assert.equal((await cache.get("url/abc/model.safetensors"))?.size, 3);
    });
  }

  test("other write errors are not hidden", async () => {
    const cache = new FsOrMemoryCache(unwritable(Object.assign(new Error("no space"), { code: "ENOSPC" })));
    await assert.rejects(
      cache.put("k/x", chunks([1]), { ...META, etag: null, commit: null }),
      /no space/,
    );
  });

  test("no cache directory at all (no HOME, no POCKET_TTS_CACHE): memory", () => {
    const g = globalThis as { document?: unknown };
    if (g.document) return; // a browser has the Cache API instead
    assert.equal(openCache(undefined, envFrom({}))?.kind, "memory");
  });

  test("a browser storage quota too small for a file: DownloadError code quota, nothing stored", async () => {
    const g = globalThis as { caches?: unknown };
    const saved = Object.getOwnPropertyDescriptor(globalThis, "caches");
    const quota = new DOMException("Quota exceeded.", "QuotaExceededError");
    Object.defineProperty(globalThis, "caches", {
      configurable: true,
      writable: true,
      value: {
        open: () => Promise.resolve({ put: () => Promise.reject(quota), match: () => Promise.resolve(undefined) }),
      },
    });
    try {
      const cache = new BrowserCache("pocket-tts-test");
      await assert.rejects(
        cache.put("url/abc/model.safetensors", chunks(new Uint8Array(2_000_000)), {
          ...META,
          etag: null,
          commit: null,
        }),
        (e: unknown) =>
          e instanceof DownloadError && e.code === "quota" &&
          /storage quota does not hold this 2\.0 MB file/.test(e.message),
      );
      assert.equal(await cache.get("url/abc/model.safetensors"), null);
    } finally {
      if (saved) Object.defineProperty(globalThis, "caches", saved);
      else delete g.caches;
    }
  });
});
