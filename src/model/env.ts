/**
 * Reading environment variables in any runtime (Deno, Bun, Node, browsers), without failing where there is no
 * environment or no permission to read it.
 *
 * @module
 */

/** Looks up one environment variable; `undefined` when unset or unreadable. */
export type EnvReader = (name: string) => string | undefined;

/** The runtime's environment (Deno.env, or process.env in Bun and Node; nothing in browsers). */
export const runtimeEnv: EnvReader = (name) => {
  const g = globalThis as {
    Deno?: { env: { get(n: string): string | undefined } };
    process?: { env?: Record<string, string | undefined> };
  };
  try {
    if (g.Deno) return g.Deno.env.get(name);
    return g.process?.env?.[name];
  } catch {
    return undefined; // no --allow-env
  }
};

/** An {@link EnvReader} over a plain object (for tests and embedding). */
export function envFrom(vars: Record<string, string | undefined>): EnvReader {
  return (name) => vars[name];
}

/** True when a variable holds a truthy flag (`1`, `true`, `yes`, `on`, any case). */
export function envFlag(env: EnvReader, name: string): boolean {
  return /^(1|true|yes|on)$/i.test(env(name)?.trim() ?? "");
}

/** True when running with a file system (Deno, Bun, Node) rather than in a browser or worker without one. */
export function hasFileSystem(): boolean {
  const g = globalThis as { Deno?: unknown; process?: { versions?: { node?: string } } };
  return g.Deno !== undefined || g.process?.versions?.node !== undefined;
}
