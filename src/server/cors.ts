/**
 * CORS, off unless the operator lists origins. A listed origin is echoed back (with `Vary: Origin`); `"*"` allows
 * any origin and is never combined with credentials: this server never sends `Access-Control-Allow-Credentials`
 * (browsers send the API key as an explicit header, which CORS allows through `Access-Control-Allow-Headers`).
 *
 * @module
 */

/** CORS settings: exact origins such as `"https://app.example"`, or `["*"]` for any. */
export interface CorsOptions {
  /** Allowed origins, exact (`"https://app.example"`), or `"*"` for any. */
  origins: string[];
}

const ALLOWED_HEADERS = "authorization, content-type";
const ALLOWED_METHODS = "GET, POST, DELETE, OPTIONS";

/**
 * The CORS policy: `headers(req)` to add to a response, `preflight(req)` to answer an `OPTIONS` request.
 *
 * @example
 * ```ts
 * const cors = corsPolicy({ origins: ["https://app.example"] });
 * const extra = cors.headers(new Request("http://x/", { headers: { origin: "https://app.example" } }));
 * ```
 */
export function corsPolicy(options: CorsOptions | undefined): {
  headers(req: Request): Record<string, string>;
  preflight(req: Request): Response;
} {
  const origins = new Set(options?.origins ?? []);
  const any = origins.has("*");
  const allowOrigin = (req: Request): string | null => {
    const origin = req.headers.get("origin");
    if (!origin) return null;
    if (any) return "*";
    return origins.has(origin) ? origin : null;
  };
  const headers = (req: Request): Record<string, string> => {
    const o = allowOrigin(req);
    if (!o) return {};
    return {
      "access-control-allow-origin": o,
      "access-control-expose-headers": "x-model, x-request-id",
      ...(any ? {} : { vary: "Origin" }),
    };
  };
  return {
    headers,
    preflight(req) {
      const h = headers(req);
      if (!h["access-control-allow-origin"]) return new Response(null, { status: 204 });
      return new Response(null, {
        status: 204,
        headers: {
          ...h,
          "access-control-allow-methods": ALLOWED_METHODS,
          "access-control-allow-headers": ALLOWED_HEADERS,
          "access-control-max-age": "600",
        },
      });
    },
  };
}
