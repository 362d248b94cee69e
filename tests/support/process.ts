/**
 * Long-running child processes for tests (servers started as users start them): a free loopback port, a child whose
 * output is collected as it comes and whose exit is a promise, and waiting for a line of its output. Nothing here
 * blocks the test's event loop, so a server in the test's own process keeps answering meanwhile.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import process from "node:process";

/** A port nobody listens on now (the OS picks it; a child may then bind it). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A running child: its output so far, and its exit. */
export interface Service {
  child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output: { stdout: string; stderr: string };
  /** Resolves when the process has exited (and its pipes are closed). */
  exited: Promise<{ code: number | null; signal: string | null }>;
  /** Resolves with the first match of `pattern` in stdout (rejects if the process exits first). */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray>;
  /**
   * Sends `signal` to the process. (Through `process.kill`: after `child.kill(sig)`, Deno's `node:child_process`
   * reports the exit as by `sig` even when the process handled it and exited with a code.)
   */
  signal(signal: "SIGINT" | "SIGTERM" | "SIGKILL"): void;
}

/** Starts `cmd args` with piped output (stdin closed). */
export function startService(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Service {
  const child = spawn(cmd, args, { cwd: options.cwd, env: options.env, stdio: ["ignore", "pipe", "pipe"] });
  const output = { stdout: "", stderr: "" };
  const listeners = new Set<() => void>();
  child.stdout!.on("data", (b: Uint8Array) => {
    output.stdout += String(b);
    for (const l of listeners) l();
  });
  child.stderr!.on("data", (b: Uint8Array) => output.stderr += String(b));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    child.on("close", (code, signal) => {
      resolve({ code, signal });
      for (const l of listeners) l();
    });
  });
  let done = false;
  void exited.then(() => done = true);
  const waitFor = (pattern: RegExp) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = output.stdout.match(pattern);
        if (m) {
          listeners.delete(check);
          resolve(m);
        } else if (done || child.exitCode !== null || child.signalCode !== null) {
          listeners.delete(check);
          reject(new Error(`${cmd} exited before printing ${pattern}: ${output.stderr}`));
        }
      };
      listeners.add(check);
      check();
    });
  const signal = (sig: "SIGINT" | "SIGTERM" | "SIGKILL") => {
    if (!done && child.exitCode === null && child.signalCode === null) process.kill(child.pid!, sig);
  };
  return { child, output, exited, waitFor, signal };
}
