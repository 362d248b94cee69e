// The web page in headless Chromium (Debian's chromium driven by playwright-core): type, speak, audio frames
// scheduled as they arrive, statistics shown, no console errors; a screenshot goes to bench/results/. Runs in the
// Deno pass (playwright-core is CommonJS, loaded with createRequire; Bun and the Node bundle skip it).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CHROMIUM, launchChromium, watchedPage } from "../support/chromium.ts";
import { repoRoot } from "../support/fixtures.ts";
import { LONG_STREAMS, withServer } from "../support/server.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const skip = !g.Deno ? "runs in the Deno pass" : !existsSync(CHROMIUM) ? "no /usr/bin/chromium" : false;

describe("server: the web page in headless Chromium", { skip }, () => {
  test("type, speak: frames scheduled as they arrive, first audio and speed shown, WAV offered, no errors", async () => {
    await withServer({ generation: LONG_STREAMS }, async ({ base }) => {
      const profile = mkdtempSync(join(tmpdir(), "pocket-chromium-"));
      const context = await launchChromium(profile, ["--autoplay-policy=no-user-gesture-required"]);
      try {
        const problems: string[] = [];
        const page = await watchedPage(context, problems);
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
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
        rmSync(profile, { recursive: true, force: true });
      }
    });
  });
});
