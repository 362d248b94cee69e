/**
 * Headless Chromium for the browser tests: Debian's `/usr/bin/chromium` driven by `playwright-core` (CommonJS, loaded
 * with `createRequire` from the repository root), a fresh profile, no background traffic, and every console error or
 * page error of a page collected.
 */
import { createRequire } from "node:module";
import { repoRoot } from "./fixtures.ts";

/** Where Debian installs Chromium (`scripts/setup.sh`). */
export const CHROMIUM = "/usr/bin/chromium";

/** The parts of a playwright page the tests use. */
// deno-lint-ignore no-explicit-any
export type Page = any;

/** A persistent browser context (playwright's `BrowserContext`). */
export interface ChromiumContext {
  pages(): Page[];
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

/** Launches Chromium headless with its profile in `profileDir`; `args` are added to the usual flags. */
export async function launchChromium(profileDir: string, args: string[] = []): Promise<ChromiumContext> {
  const { chromium } = createRequire(new URL("package.json", repoRoot))("playwright-core");
  return await chromium.launchPersistentContext(profileDir, {
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
      ...args,
    ],
  });
}

/** The context's page, whose console errors and page errors are pushed to `problems` as they happen. */
export async function watchedPage(context: ChromiumContext, problems: string[]): Promise<Page> {
  const page = context.pages()[0] ?? await context.newPage();
  page.on("console", (m: { type(): string; text(): string; location(): unknown }) => {
    if (m.type() === "error") problems.push(`console: ${m.text()} (${JSON.stringify(m.location())})`);
  });
  page.on("pageerror", (e: Error) => problems.push(`page error: ${e.message}`));
  return page;
}

/**
 * Runs `fn` on the watched page of a fresh Chromium profile in `profileDir`, closes the browser, and returns the
 * console and page errors seen (for the caller to assert empty).
 */
export async function withWatchedPage(profileDir: string, fn: (page: Page) => Promise<void>): Promise<string[]> {
  const context = await launchChromium(profileDir);
  const problems: string[] = [];
  try {
    await fn(await watchedPage(context, problems));
  } finally {
    await context.close();
  }
  return problems;
}
