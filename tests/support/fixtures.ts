/**
 * Locating test fixtures from any runtime.
 *
 * Test files live exactly two folders below the repository root (`tests/<area>/x.test.ts`), and the Node bundles
 * that `scripts/test.sh` builds live at the same depth (`dist/node/x.test.mjs`), so a URL relative to
 * `import.meta.url` with `../../` reaches the repository root in Deno, Bun and the bundled Node run alike.
 */
import { readFile } from "node:fs/promises";

/** The repository root as a `file:` URL (ends with `/`). */
export const repoRoot: URL = new URL("../../", import.meta.url);

/** URL of a file under `tests/fixtures/`. */
export function fixtureUrl(relative: string): URL {
  return new URL(`tests/fixtures/${relative}`, repoRoot);
}

/** Bytes of a file under `tests/fixtures/`. */
export async function readFixture(relative: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(fixtureUrl(relative)));
}

/** Parsed JSON of a file under `tests/fixtures/`. */
export async function readFixtureJson<T = unknown>(relative: string): Promise<T> {
  return JSON.parse(new TextDecoder().decode(await readFixture(relative))) as T;
}
