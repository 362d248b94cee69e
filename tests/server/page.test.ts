// The web page in headless Chromium (Debian's chromium driven by playwright-core): type, speak, audio frames
// scheduled as they arrive, statistics shown, no console errors; a screenshot goes to bench/results/. Runs in the
// Deno pass (playwright-core is CommonJS, loaded with createRequire; Bun and the Node bundle skip it).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { repoRoot } from "../support/fixtures.ts";
import { LONG_STREAMS, withServer } from "../support/server.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const CHROMIUM = "/usr/bin/chromium";
const skip = !g.Deno ? "runs in the Deno pass" : !existsSync(CHROMIUM) ? "no /usr/bin/chromium" : false;

describe("server: the web page in headless Chromium", { skip }, () => {
  test("type, speak: frames scheduled as they arrive, first audio and speed shown, WAV offered, no errors", async () => {
    const require = createRequire(new URL("tests/server/page.test.ts", repoRoot));
    const { chromium } = require("playwright-core");
    await withServer({ generation: LONG_STREAMS }, async ({ base }) => {
      const profile = mkdtempSync(join(tmpdir(), "pocket-chromium-"));
      const context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--no-first-run",
          "--autoplay-policy=no-user-gesture-required",
        ],
      });
      try {
        const page = context.pages()[0] ?? await context.newPage();
        const errors: string[] = [];
        page.on("console", (m: { type(): string; text(): string }) => m.type() === "error" && errors.push(m.text()));
        page.on("pageerror", (e: Error) => errors.push(e.message));
        await page.goto(`${base}/`);
        await page.waitForSelector('#voice option[value="tiny"]', { state: "attached" });
        await page.fill("#text", "Hello from the browser test.");
        await page.click("#speak");
        await page.locator("#status").filter({ hasText: /^done/ }).waitFor({ timeout: 60_000 });
        const frames = Number(await page.textContent("#frames"));
        assert.ok(frames >= 10, `frames scheduled: ${frames}`);
        assert.match(await page.textContent("#ttfa"), /^\d+\.\d\d s$/);
        assert.match(await page.textContent("#rtf"), /× real time$/);
        assert.equal(await page.isVisible("#download"), true);
        assert.match(await page.getAttribute("#download", "href"), /^blob:/);
        const dir = fileURLToPath(new URL("bench/results/", repoRoot));
        mkdirSync(dir, { recursive: true });
        await page.screenshot({ path: join(dir, "server_page.png"), fullPage: true });
        assert.deepEqual(errors, []);
      } finally {
        await context.close();
        rmSync(profile, { recursive: true, force: true });
      }
    });
  });
});
