/**
 * A download progress bar for terminals: renders {@link ProgressEvent}s on one line (`\r`-updated) when the stream
 * is a TTY, or as a start and an end line otherwise (logs, CI).
 *
 * @module
 */
import type { ProgressCallback, ProgressEvent } from "./download.ts";

/** Options of {@link createProgressBar}. */
export interface ProgressBarOptions {
  /** Whether the output is an interactive terminal (redraws in place). */
  isTTY: boolean;
  /** Bar width in characters (default 30). */
  width?: number;
  /** Minimum time between redraws in ms (default 100). */
  intervalMs?: number;
  /** Clock (default `Date.now`). */
  now?: () => number;
}

function mb(n: number): string {
  return (n / 1e6).toFixed(1);
}

function label(file: string): string {
  const name = file.replace(/@[0-9a-f]{40}$/i, "").split("/").slice(-3).join("/");
  return name.length > 48 ? `…${name.slice(-47)}` : name;
}

/** Render one progress line (without `\r` or newline). */
export function formatProgress(e: ProgressEvent, width = 30): string {
  if (e.total === null || e.total === 0) return `${label(e.file)} ${mb(e.loaded)} MB`;
  const frac = Math.min(1, e.loaded / e.total);
  const full = Math.round(frac * width);
  return `${label(e.file)} [${"#".repeat(full)}${"-".repeat(width - full)}] ${(frac * 100).toFixed(0).padStart(3)}% ` +
    `${mb(e.loaded)}/${mb(e.total)} MB`;
}

/** A progress callback that can also close its line (call `end()` before printing anything else, e.g. an error). */
export type ProgressBar = ProgressCallback & { end(): void };

/**
 * A {@link ProgressCallback} that draws a progress bar with `write` (e.g. `s => process.stderr.write(s)`).
 */
export function createProgressBar(write: (text: string) => void, options: ProgressBarOptions): ProgressBar {
  const width = options.width ?? 30;
  const interval = options.intervalMs ?? 100;
  const now = options.now ?? Date.now;
  let last = -Infinity;
  let current = "";
  let open = false;
  const bar = (e: ProgressEvent) => {
    const done = e.total !== null && e.loaded >= e.total;
    if (!options.isTTY) {
      if (e.loaded === 0 && e.file !== current) {
        current = e.file;
        write(`downloading ${e.file}${e.total !== null ? ` (${mb(e.total)} MB)` : ""}\n`);
      } else if (done) write(`downloaded ${e.file}\n`);
      return;
    }
    const t = now();
    if (!done && e.loaded !== 0 && t - last < interval) return;
    last = t;
    write(`\r${formatProgress(e, width)}\x1b[K${done ? "\n" : ""}`);
    open = !done;
  };
  return Object.assign(bar, {
    end() {
      if (open) write("\n");
      open = false;
    },
  });
}
