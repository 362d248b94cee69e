/**
 * The voices a server offers, and the only way a request's `voice` becomes a {@link Voice}: a **name** looked up in
 * the operator's registered voices, the clients' custom voices (when uploads are enabled) or the model's predefined
 * list. A request never chooses a file path, and a URL is fetched only when the operator listed its origin
 * (`voiceUrlOrigins`; off by default), without following redirects and within the upload byte limit.
 *
 * Voices are handed out as leases: a custom voice deleted while streams use it is freed when the last one ends, and
 * one-off voices (an upload to `/tts`, an allowed URL) are freed when their stream ends.
 *
 * @module
 */

import { decodeAudio } from "../audio/decode.ts";
import type { TTSModel, Voice } from "../generate/tts_model.ts";
import type { AudioSamples } from "../voice/clone.ts";
import { HttpError } from "./errors.ts";
import { readCapped, type ServerLimits } from "./limits.ts";

/** Where a voice comes from. */
export type VoiceKind = "predefined" | "registered" | "custom";

/** A voice in use by one stream; `release()` once the stream ended (idempotent). */
export interface VoiceLease {
  /** `undefined`: the model's default voice. */
  voice: Voice | undefined;
  release(): void;
}

/** Options of {@link VoiceRegistry}. */
export interface VoiceRegistryOptions {
  limits: ServerLimits;
  /** Origins (e.g. `"https://voices.example"`) whose voice-file URLs requests may name. Default: none. */
  voiceUrlOrigins?: string[];
  /**
   * Clones a decoded recording (at most `limits.maxUploadSeconds` of it); absent when the model cannot clone
   * (recordings then get a 400).
   */
  cloneVoice?: (audio: AudioSamples) => Promise<Voice>;
}

/** Names of registered and custom voices: a letter or digit, then letters, digits, `_`, `-` or `.`; ≤ 64. */
export const VOICE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

interface Entry {
  voice: Voice;
  kind: "registered" | "custom";
  bytes: number;
  uses: number;
  removed: boolean;
}

/** Whether `bytes` start like an audio file (rather than a safetensors voice state). */
export function looksLikeAudio(bytes: Uint8Array): boolean {
  const ascii = (at: number, s: string) => [...s].every((c, i) => bytes[at + i] === c.charCodeAt(0));
  return ascii(0, "RIFF") || ascii(0, "OggS") || ascii(0, "fLaC") || ascii(0, "ID3") ||
    (bytes[0] === 0xff && (bytes[1] & 0xe0) === 0xe0);
}

/**
 * The voice registry of one server.
 *
 * @example
 * ```ts
 * const voices = new VoiceRegistry(tts, { limits: DEFAULT_LIMITS });
 * await voices.register("narrator", await Deno.readFile("voices/narrator.safetensors"));
 * const lease = await voices.resolve("narrator", "voice");
 * ```
 */
export class VoiceRegistry {
  #tts: TTSModel;
  #options: VoiceRegistryOptions;
  #named = new Map<string, Entry>();
  #predefined = new Map<string, Promise<Voice>>();
  #origins: Set<string>;
  #pending = { count: 0, bytes: 0 };

  constructor(tts: TTSModel, options: VoiceRegistryOptions) {
    this.#tts = tts;
    this.#options = options;
    this.#origins = new Set((options.voiceUrlOrigins ?? []).map((o) => new URL(o).origin));
  }

  /** Whether uploaded recordings can be cloned. */
  get canClone(): boolean {
    return this.#options.cloneVoice !== undefined;
  }

  /** Every voice name a request may use, with its kind. */
  list(): { name: string; kind: VoiceKind }[] {
    const out: { name: string; kind: VoiceKind }[] = [];
    for (const [name, e] of this.#named) if (!e.removed) out.push({ name, kind: e.kind });
    for (const name of this.#tts.predefinedVoices) if (!this.#named.has(name)) out.push({ name, kind: "predefined" });
    return out;
  }

  /**
   * Loads a voice file (voice state, or a recording when cloning is available). A recording is decoded only up to
   * `maxUploadSeconds` (whatever its format, decoding stops there); a longer one is refused (`"reject"`, for what
   * clients send) or cut there (`"truncate"`, for the operator's own voices).
   */
  async load(bytes: Uint8Array, param: string, tooLong: "reject" | "truncate" = "reject"): Promise<Voice> {
    if (looksLikeAudio(bytes)) {
      if (!this.#options.cloneVoice) {
        throw new HttpError(
          400,
          "voice_cloning_unavailable",
          "voice cloning is not available on this server: give a voice-state (.safetensors) file or a voice name",
          { param },
        );
      }
      const maxSeconds = this.#options.limits.maxUploadSeconds;
      const audio = await decodeAudio(bytes, { maxSeconds });
      if (audio.truncated && tooLong === "reject") {
        throw new HttpError(
          400,
          "upload_too_long",
          `the recording is longer than the server's limit of ${maxSeconds} s (maxUploadSeconds)`,
          { param },
        );
      }
      return await this.#options.cloneVoice(audio);
    }
    return await this.#tts.loadVoice(bytes);
  }

  /** Registers an operator's voice under `name` (replacing nothing: names are unique). */
  async register(name: string, bytes: Uint8Array): Promise<void> {
    await this.#add(name, bytes, "registered", "truncate");
  }

  /** Adds a client's custom voice, within the custom-voice count and byte limits. */
  async addCustom(name: string, bytes: Uint8Array): Promise<void> {
    this.#checkName(name);
    const { maxCustomVoices, maxCustomVoiceBytes } = this.#options.limits;
    const custom = [...this.#named.values()].filter((e) => e.kind === "custom" && !e.removed);
    if (custom.length + this.#pending.count >= maxCustomVoices) {
      throw new HttpError(409, "too_many_voices", `the server keeps at most ${maxCustomVoices} custom voices`);
    }
    if (custom.reduce((s, e) => s + e.bytes, 0) + this.#pending.bytes + bytes.byteLength > maxCustomVoiceBytes) {
      throw new HttpError(409, "voice_storage_full", `custom voices may hold at most ${maxCustomVoiceBytes} bytes`);
    }
    // Uploads being loaded count against the limits too, so concurrent uploads cannot pass them.
    this.#pending.count++;
    this.#pending.bytes += bytes.byteLength;
    try {
      await this.#add(name, bytes, "custom", "reject");
    } finally {
      this.#pending.count--;
      this.#pending.bytes -= bytes.byteLength;
    }
  }

  #checkName(name: string): void {
    if (!VOICE_NAME.test(name)) {
      throw new HttpError(400, "invalid_voice_name", `voice names are 1-64 of A-Z a-z 0-9 _ - . (got "${name}")`, {
        param: "name",
      });
    }
    if (this.#named.has(name) || this.#tts.predefinedVoices.includes(name)) {
      throw new HttpError(409, "voice_exists", `a voice named "${name}" already exists`, { param: "name" });
    }
  }

  async #add(
    name: string,
    bytes: Uint8Array,
    kind: "registered" | "custom",
    tooLong: "reject" | "truncate",
  ): Promise<void> {
    this.#checkName(name);
    const voice = await this.load(bytes, "file", tooLong);
    if (this.#named.has(name)) { // a concurrent upload of the same name won
      await this.#tts.freeVoice(voice);
      throw new HttpError(409, "voice_exists", `a voice named "${name}" already exists`, { param: "name" });
    }
    this.#named.set(name, { voice, kind, bytes: bytes.byteLength, uses: 0, removed: false });
  }

  /** Deletes a custom voice (freed once no stream uses it). */
  async removeCustom(name: string): Promise<void> {
    const e = this.#named.get(name);
    if (!e || e.removed) throw new HttpError(404, "voice_not_found", `no voice named "${name}"`);
    if (e.kind !== "custom") {
      throw new HttpError(403, "voice_protected", `"${name}" is not a custom voice and cannot be deleted`);
    }
    e.removed = true;
    this.#named.delete(name);
    if (e.uses === 0) await this.#tts.freeVoice(e.voice);
  }

  /**
   * The voice a request names (`undefined`: the default voice). Anything but a known name, or a URL of an allowed
   * origin, is a 400 that names the available voices; nothing is read or fetched for it.
   */
  async resolve(spec: string | undefined, param: string): Promise<VoiceLease> {
    if (spec === undefined || spec === "") return { voice: undefined, release() {} };
    const entry = this.#named.get(spec);
    if (entry) {
      entry.uses++;
      let done = false;
      return {
        voice: entry.voice,
        release: () => {
          if (done) return;
          done = true;
          if (--entry.uses === 0 && entry.removed) void this.#tts.freeVoice(entry.voice).catch(() => {});
        },
      };
    }
    if (this.#tts.predefinedVoices.includes(spec)) {
      let p = this.#predefined.get(spec);
      if (!p) {
        p = this.#tts.loadVoice(spec); // a name from the model's own list: it resolves to the model's voice URL
        this.#predefined.set(spec, p);
        p.catch(() => this.#predefined.delete(spec));
      }
      return { voice: await p, release() {} };
    }
    const url = this.#allowedUrl(spec);
    if (url) return this.oneOff(await this.#fetchVoice(url), param);
    const names = this.list().map((v) => v.name);
    throw new HttpError(
      400,
      "voice_not_found",
      `unknown voice "${spec.slice(0, 80)}": use one of ${names.length ? names.join(", ") : "(none registered)"}`,
      { param },
    );
  }

  /** A lease of a voice loaded for one stream: freed when released. */
  async oneOff(bytes: Uint8Array, param: string): Promise<VoiceLease> {
    const voice = await this.load(bytes, param);
    let done = false;
    return {
      voice,
      release: () => {
        if (done) return;
        done = true;
        void this.#tts.freeVoice(voice).catch(() => {});
      },
    };
  }

  #allowedUrl(spec: string): URL | null {
    if (this.#origins.size === 0) return null;
    let url: URL;
    try {
      url = new URL(spec);
    } catch {
      return null;
    }
    return (url.protocol === "https:" || url.protocol === "http:") && this.#origins.has(url.origin) ? url : null;
  }

  async #fetchVoice(url: URL): Promise<Uint8Array> {
    const max = this.#options.limits.maxUploadBytes;
    const fail = (why: string) => new HttpError(400, "voice_fetch_failed", `could not fetch the voice: ${why}`);
    let res: Response;
    try {
      res = await fetch(url, { redirect: "error", signal: AbortSignal.timeout(15_000) });
    } catch {
      throw fail("the request failed");
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw fail(`HTTP ${res.status}`);
    }
    try {
      return await readCapped(res.body, res.headers, max);
    } catch (e) {
      if (e instanceof HttpError) throw fail(`larger than ${max} bytes`);
      throw fail("the download failed");
    }
  }
}
