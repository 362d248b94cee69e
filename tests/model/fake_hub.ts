/**
 * A Hugging Face look-alike on loopback for download tests: real TCP, real HTTP/1.1, no mocks.
 *
 * Two servers (so two origins): the hub answers `{hub}/{owner}/{repo}/resolve/{revision}/{path}` like
 * huggingface.co does — small files directly (ETag = a git blob id), `.safetensors` files with a 302 to the CDN
 * carrying `X-Linked-Etag` (sha256) and `X-Linked-Size`; gated repositories answer 401 without the right token;
 * unknown repositories, revisions and files 404 with `X-Error-Code`. The CDN serves blobs by sha256. Any other
 * path on the hub serves the "static" files (for custom models given by URL).
 *
 * Raw sockets (`node:net`) rather than an HTTP server library, so a response can be cut mid-body or a connection
 * dropped exactly, the same way in Deno, Bun and Node. Every request is logged.
 */
import { createServer, type Server, type Socket } from "node:net";

/** Faults the next matching request(s) suffer. */
export type Fault =
  | "cut" // full Content-Length announced, half the body sent, then the connection closed
  | "reset" // half the body sent, then the socket destroyed
  | "drop" // connection closed before any response
  | "bad_sha" // X-Linked-Etag announces a wrong sha256
  | "error500";

/** One logged request. */
export interface LoggedRequest {
  server: "hub" | "cdn";
  method: string;
  path: string;
  authorization: string | null;
}

interface Repo {
  gated: boolean;
  /** commit → path → bytes */
  commits: Map<string, Map<string, Uint8Array>>;
  /** branch/tag → commit */
  refs: Map<string, string>;
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  302: "Found",
  401: "Unauthorized",
  404: "Not Found",
  500: "Internal Server Error",
};

/** The fake hub and CDN. */
export class FakeHub {
  /** Accepted token for gated repositories. */
  readonly token = "hf_test_token";
  /** Every request, in order. */
  readonly log: LoggedRequest[] = [];
  /** Static files served at `{hub}/{path}` (custom models given by URL). */
  readonly statics = new Map<string, Uint8Array>();
  #repos = new Map<string, Repo>();
  #blobs = new Map<string, Uint8Array>();
  #faults: { match: string; fault: Fault; times: number }[] = [];
  #hub: Server | null = null;
  #cdn: Server | null = null;
  #sockets = new Set<Socket>();
  /** Base URL of the hub (`http://127.0.0.1:port`). */
  hubUrl = "";
  /** Base URL of the CDN. */
  cdnUrl = "";

  /** Add a file to a repository at a commit; optionally point a branch at that commit. */
  async addFile(
    repo: string,
    commit: string,
    path: string,
    bytes: Uint8Array,
    opts: { gated?: boolean; ref?: string } = {},
  ) {
    let r = this.#repos.get(repo);
    if (!r) {
      r = { gated: opts.gated ?? false, commits: new Map(), refs: new Map() };
      this.#repos.set(repo, r);
    }
    if (opts.gated !== undefined) r.gated = opts.gated;
    if (!r.commits.has(commit)) r.commits.set(commit, new Map());
    r.commits.get(commit)!.set(path, bytes);
    if (opts.ref) r.refs.set(opts.ref, commit);
    this.#blobs.set(await sha256(bytes), bytes);
  }

  /** Point a branch or tag at a commit. */
  setRef(repo: string, ref: string, commit: string) {
    this.#repos.get(repo)!.refs.set(ref, commit);
  }

  /** Make the next `times` requests whose path contains `match` fail with `fault`. */
  fail(match: string, fault: Fault, times = 1) {
    this.#faults.push({ match, fault, times });
  }

  /** Requests seen since index `from`. */
  since(from: number): LoggedRequest[] {
    return this.log.slice(from);
  }

  #takeFault(path: string): Fault | null {
    const i = this.#faults.findIndex((f) => path.includes(f.match) && f.times > 0);
    if (i < 0) return null;
    const f = this.#faults[i];
    if (--f.times === 0) this.#faults.splice(i, 1);
    return f.fault;
  }

  /** Start both servers on ephemeral loopback ports. */
  async start(): Promise<this> {
    this.#hub = await this.#listen("hub");
    this.#cdn = await this.#listen("cdn");
    this.hubUrl = `http://127.0.0.1:${(this.#hub.address() as { port: number }).port}`;
    this.cdnUrl = `http://127.0.0.1:${(this.#cdn.address() as { port: number }).port}`;
    return this;
  }

  /** Stop both servers and close every connection. */
  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await Promise.all(
      [this.#hub, this.#cdn].map((srv) => new Promise<void>((res) => srv ? srv.close(() => res()) : res())),
    );
  }

  #listen(which: "hub" | "cdn"): Promise<Server> {
    const server = createServer((socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
      socket.on("error", () => {});
      let buf = "";
      const onData = (d: Uint8Array | string) => {
        buf += typeof d === "string" ? d : new TextDecoder("latin1").decode(d);
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        socket.off("data", onData);
        const [requestLine, ...headerLines] = buf.slice(0, end).split("\r\n");
        const [method, target] = requestLine.split(" ");
        const headers = new Map<string, string>();
        for (const h of headerLines) {
          const c = h.indexOf(":");
          if (c > 0) headers.set(h.slice(0, c).trim().toLowerCase(), h.slice(c + 1).trim());
        }
        const path = decodeURIComponent(new URL(target, "http://x").pathname);
        this.log.push({ server: which, method, path, authorization: headers.get("authorization") ?? null });
        this.#handle(which, method, path, headers, socket).catch(() => socket.destroy());
      };
      socket.on("data", onData);
    });
    return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
  }

  #send(
    socket: Socket,
    method: string,
    status: number,
    headers: Record<string, string | number>,
    body: Uint8Array = new Uint8Array(0),
    fault: Fault | null = null,
  ) {
    const h: Record<string, string | number> = { "content-length": body.length, connection: "close", ...headers };
    const head = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Status"}\r\n` +
      Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join("") + "\r\n";
    socket.write(head);
    if (method === "HEAD") {
      socket.end();
      return;
    }
    if (fault === "cut" || fault === "reset") {
      const half = body.subarray(0, Math.floor(body.length / 2));
      socket.write(half, () => {
        if (fault === "cut") socket.end();
        else setTimeout(() => socket.destroy(), 10);
      });
      return;
    }
    socket.end(body);
  }

  async #handle(which: "hub" | "cdn", method: string, path: string, headers: Map<string, string>, socket: Socket) {
    const fault = this.#takeFault(path);
    if (fault === "drop") {
      socket.destroy();
      return;
    }
    if (fault === "error500") {
      this.#send(socket, method, 500, {}, new TextEncoder().encode("boom"));
      return;
    }
    if (which === "cdn") {
      const m = /^\/blobs\/([0-9a-f]{64})$/.exec(path);
      const blob = m ? this.#blobs.get(m[1]) : undefined;
      if (!blob) return this.#send(socket, method, 404, {});
      return this.#send(socket, method, 200, { "content-type": "application/octet-stream" }, blob, fault);
    }
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (!m) {
      const file = this.statics.get(path.slice(1));
      if (!file) return this.#send(socket, method, 404, {});
      return this.#send(socket, method, 200, { "content-type": "application/octet-stream" }, file, fault);
    }
    const [, repoName, revision, filePath] = m;
    const repo = this.#repos.get(repoName);
    const notFound = (code: string) =>
      this.#send(socket, method, 404, { "x-error-code": code, "x-error-message": `${code} for ${path}` });
    if (!repo) return notFound("RepoNotFound");
    if (repo.gated && headers.get("authorization") !== `Bearer ${this.token}`) {
      return this.#send(socket, method, 401, { "x-error-code": "GatedRepo" }, new TextEncoder().encode("gated"));
    }
    const commit = repo.commits.has(revision) ? revision : repo.refs.get(revision);
    if (!commit || !repo.commits.has(commit)) return notFound("RevisionNotFound");
    const bytes = repo.commits.get(commit)!.get(filePath);
    if (!bytes) return notFound("EntryNotFound");
    const sha = await sha256(bytes);
    if (filePath.endsWith(".safetensors")) {
      // a body fault on an LFS file happens where the body is: on the CDN
      if (fault === "cut" || fault === "reset") this.#faults.unshift({ match: `/blobs/${sha}`, fault, times: 1 });
      const announced = fault === "bad_sha" ? "0".repeat(64) : sha;
      return this.#send(socket, method, 302, {
        location: `${this.cdnUrl}/blobs/${sha}`,
        "x-linked-etag": `"${announced}"`,
        "x-linked-size": bytes.length,
        "x-repo-commit": commit,
        etag: `"${announced}"`,
      });
    }
    const gitId = sha.slice(0, 40);
    return this.#send(socket, method, 200, { etag: `"${gitId}"`, "x-repo-commit": commit }, bytes, fault);
  }
}
