/**
 * The optional bearer API key (`Authorization: Bearer …`, as OpenAI clients send it). Both the expected key and the
 * presented one are hashed with SHA-256 and the digests compared in constant time, so neither the key's content nor
 * its length shows in the response time.
 *
 * @module
 */

import { HttpError } from "./errors.ts";

async function sha256(s: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)));
}

/** Equality of two equal-length byte arrays in time independent of where they differ. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/**
 * A checker for `key`: resolves when the request carries it, throws a 401 {@link HttpError} otherwise.
 *
 * @example
 * ```ts
 * const check = bearerAuth("s3cret");
 * await check(new Request("http://x/", { headers: { authorization: "Bearer s3cret" } })); // passes
 * ```
 */
export function bearerAuth(key: string): (req: Request) => Promise<void> {
  if (key.length === 0) throw new RangeError("the API key must not be empty");
  const expected = sha256(key);
  return async (req) => {
    const m = /^Bearer[ ]+(.+)$/i.exec(req.headers.get("authorization") ?? "");
    const given = await sha256(m ? m[1].trim() : "");
    if (!m || !constantTimeEqual(given, await expected)) {
      throw new HttpError(
        401,
        "invalid_api_key",
        "missing or wrong API key: send it as an `Authorization: Bearer <key>` header",
        { headers: { "www-authenticate": "Bearer" } },
      );
    }
  };
}
