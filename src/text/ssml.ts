/**
 * The SSML subset the generator understands, for input that starts with `<speak>`: `<break time="500ms"/>` or
 * `<break strength="…"/>`, `<p>`, `<s>`, plain text, comments and the XML escapes (`&amp;`, `&#233;`, …). Anything
 * else is rejected with an {@link SsmlError} naming the element, never read aloud.
 *
 * The parser is incremental ({@link SsmlParser.push} takes arbitrary pieces of the document), so streamed text and
 * whole text give the same events.
 *
 * @module
 */

import { PocketTtsError } from "../errors.ts";

/** SSML that is malformed (`"invalid_ssml"`) or uses an element or attribute outside the subset (`"unsupported_ssml"`). */
export class SsmlError extends PocketTtsError {
  /** The element concerned, when there is one. */
  element?: string;

  /**
   * Creates the error.
   *
   * @param code `"invalid_ssml"` or `"unsupported_ssml"`
   * @param message description naming the problem
   * @param element the element concerned
   */
  constructor(code: "invalid_ssml" | "unsupported_ssml", message: string, element?: string) {
    super(code, message);
    this.element = element;
  }
}

/** What an SSML document says, in order. */
export type SsmlEvent =
  /** Text to speak (escapes decoded). */
  | { type: "text"; text: string }
  /** Silence of `ms` milliseconds (also a chunk boundary). */
  | { type: "break"; ms: number }
  /** A `<p>` or `<s>` started or ended: the current chunk ends here. */
  | { type: "boundary" };

/** Milliseconds of each `strength` (`<break/>` alone is `medium`). */
export const BREAK_STRENGTH_MS: Readonly<Record<string, number>> = {
  "none": 0,
  "x-weak": 250,
  "weak": 500,
  "medium": 750,
  "strong": 1000,
  "x-strong": 1250,
};

/** The longest break accepted. */
export const MAX_BREAK_MS = 10_000;

const NAMED_ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
/** Longest entity we wait for before deciding it is malformed (`&#x10FFFF;` is 10 characters). */
const MAX_ENTITY = 12;
/** Longest tag we buffer (a `<break>` with both attributes fits easily). */
const MAX_TAG = 1024;

/**
 * Whether `text` is SSML for this library: it starts (after whitespace) with a `<speak>` tag.
 *
 * @example
 * ```ts
 * isSsml("<speak>Hi</speak>"); // true
 * ```
 */
export function isSsml(text: string): boolean {
  return /^\s*<speak[\s/>]/.test(text);
}

function parseTime(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s)\s*$/.exec(value);
  if (!m) throw new SsmlError("invalid_ssml", `<break time="${value}">: expected a duration such as "500ms" or "1.5s"`);
  const ms = Number(m[1]) * (m[2] === "s" ? 1000 : 1);
  if (ms > MAX_BREAK_MS) {
    throw new SsmlError("invalid_ssml", `<break time="${value}"> exceeds the ${MAX_BREAK_MS / 1000} s limit`, "break");
  }
  return ms;
}

function parseAttributes(element: string, source: string): Map<string, string> {
  const attributes = new Map<string, string>();
  const pattern = /\s*([A-Za-z_:][\w:.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')\s*/y;
  let at = 0;
  while (at < source.length) {
    pattern.lastIndex = at;
    const m = pattern.exec(source);
    if (!m) throw new SsmlError("invalid_ssml", `malformed attributes in <${element}>: "${source.trim()}"`, element);
    attributes.set(m[1], decodeEntities(m[2] ?? m[3]));
    at = pattern.lastIndex;
  }
  return attributes;
}

function decodeEntity(body: string): string {
  if (body in NAMED_ENTITIES) return NAMED_ENTITIES[body];
  const m = /^#(?:x([0-9A-Fa-f]{1,6})|([0-9]{1,7}))$/.exec(body);
  const cp = m ? parseInt(m[1] ?? m[2], m[1] ? 16 : 10) : NaN;
  if (!(cp >= 1 && cp <= 0x10ffff) || (cp >= 0xd800 && cp <= 0xdfff)) {
    throw new SsmlError("invalid_ssml", `unknown or invalid escape "&${body};"`);
  }
  return String.fromCodePoint(cp);
}

function decodeEntities(text: string): string {
  return text.replace(/&([^;&\s]*);?/g, (all, body: string) => {
    if (!all.endsWith(";")) throw new SsmlError("invalid_ssml", `a bare "&" must be written "&amp;"`);
    return decodeEntity(body);
  });
}

/**
 * An incremental parser for the subset: feed pieces with {@link push}, then call {@link end}.
 *
 * @example
 * ```ts
 * const parser = new SsmlParser();
 * const events = [...parser.push('<speak>Hi<break time="1s"/>the'), ...parser.push("re.</speak>"), ...parser.end()];
 * // [{type:"text",text:"Hi"}, {type:"break",ms:1000}, {type:"text",text:"the"}, {type:"text",text:"re."}]
 * ```
 */
export class SsmlParser {
  #buffer = "";
  #stack: string[] = [];
  #started = false;
  #finished = false;

  /** Parses the next piece of the document and returns the events it completes. */
  push(piece: string): SsmlEvent[] {
    this.#buffer += piece;
    const events: SsmlEvent[] = [];
    for (;;) {
      if (this.#buffer === "") break;
      const lt = this.#buffer.indexOf("<");
      const text = lt < 0 ? this.#buffer : this.#buffer.slice(0, lt);
      if (text !== "") {
        // Hold back a possibly unfinished escape at the end.
        const amp = text.lastIndexOf("&");
        const open = amp >= 0 && !text.slice(amp).includes(";") && lt < 0;
        if (open && text.length - amp > MAX_ENTITY) {
          throw new SsmlError("invalid_ssml", `a bare "&" must be written "&amp;"`);
        }
        const ready = open ? text.slice(0, amp) : text;
        if (ready !== "") this.#text(ready, events);
        this.#buffer = this.#buffer.slice(ready.length);
        if (open) break;
        continue;
      }
      const consumed = this.#tag(events);
      if (consumed === 0) break;
      this.#buffer = this.#buffer.slice(consumed);
    }
    return events;
  }

  /** Ends the document: checks that `</speak>` closed it and nothing is left over. */
  end(): SsmlEvent[] {
    if (this.#buffer.trim() !== "") {
      throw new SsmlError("invalid_ssml", `the document ends inside "${this.#buffer.slice(0, 40)}"`);
    }
    if (!this.#finished) throw new SsmlError("invalid_ssml", "the document ends before </speak>", "speak");
    return [];
  }

  #text(text: string, events: SsmlEvent[]): void {
    if (!this.#started || this.#finished) {
      if (text.trim() === "") return;
      throw new SsmlError("invalid_ssml", `text outside <speak>: "${text.trim().slice(0, 40)}"`);
    }
    events.push({ type: "text", text: decodeEntities(text) });
  }

  /** Parses the tag at the start of the buffer; returns the characters consumed, or 0 when it is incomplete. */
  #tag(events: SsmlEvent[]): number {
    const b = this.#buffer;
    if (b.startsWith("<!--")) {
      const end = b.indexOf("-->", 4);
      return end < 0 ? 0 : end + 3;
    }
    if ("<!--".startsWith(b)) return 0; // could still become a comment
    const close = b.indexOf(">");
    if (close < 0) {
      if (b.length > MAX_TAG) throw new SsmlError("invalid_ssml", `unterminated tag "${b.slice(0, 40)}…"`);
      return 0;
    }
    const tag = b.slice(0, close + 1);
    const m = /^<(\/?)([A-Za-z_][\w:.-]*)([^>]*?)(\/?)>$/s.exec(tag);
    if (!m) throw new SsmlError("invalid_ssml", `malformed tag "${tag.slice(0, 60)}"`);
    const [, closing, name, rest, selfClosing] = m;
    if (!["speak", "break", "p", "s"].includes(name)) {
      throw new SsmlError(
        "unsupported_ssml",
        `unsupported SSML element <${name}> (supported: speak, break, p, s)`,
        name,
      );
    }
    if (!this.#started && (name !== "speak" || closing)) {
      throw new SsmlError("invalid_ssml", `the document must start with <speak>, not ${tag}`, name);
    }
    if (this.#finished) throw new SsmlError("invalid_ssml", `${tag} after </speak>`, name);
    if (closing) {
      if (rest.trim() !== "" || selfClosing) throw new SsmlError("invalid_ssml", `malformed closing tag ${tag}`, name);
      const open = this.#stack.pop();
      if (open !== name) {
        throw new SsmlError("invalid_ssml", `</${name}> does not close ${open ? `<${open}>` : "anything"}`, name);
      }
      if (name === "speak") this.#finished = true;
      else events.push({ type: "boundary" });
      return tag.length;
    }
    const attributes = parseAttributes(name, rest);
    if (name === "break") {
      for (const key of attributes.keys()) {
        if (key !== "time" && key !== "strength") {
          throw new SsmlError("unsupported_ssml", `unsupported attribute "${key}" on <break>`, "break");
        }
      }
      if (!selfClosing) throw new SsmlError("invalid_ssml", "<break> must be empty: write <break/>", "break");
      const time = attributes.get("time");
      const strength = attributes.get("strength");
      let ms: number;
      if (time !== undefined) ms = parseTime(time);
      else if (strength !== undefined) {
        if (!(strength in BREAK_STRENGTH_MS)) {
          throw new SsmlError(
            "invalid_ssml",
            `<break strength="${strength}">: expected one of ${Object.keys(BREAK_STRENGTH_MS).join(", ")}`,
            "break",
          );
        }
        ms = BREAK_STRENGTH_MS[strength];
      } else ms = BREAK_STRENGTH_MS.medium;
      events.push({ type: "break", ms });
      return tag.length;
    }
    if (name === "speak") {
      if (this.#started) throw new SsmlError("invalid_ssml", "<speak> cannot be nested", "speak");
      this.#started = true;
    }
    if (selfClosing) {
      if (name !== "speak") events.push({ type: "boundary" });
      else this.#finished = true;
      return tag.length;
    }
    this.#stack.push(name);
    if (name !== "speak") events.push({ type: "boundary" });
    return tag.length;
  }
}

/**
 * Parses a whole SSML document.
 *
 * @example
 * ```ts
 * parseSsml('<speak><s>One.</s><break time="500ms"/><s>Two &amp; three.</s></speak>');
 * ```
 *
 * @throws {SsmlError} malformed SSML, or an element or attribute outside the subset
 */
export function parseSsml(document: string): SsmlEvent[] {
  const parser = new SsmlParser();
  return [...parser.push(document), ...parser.end()];
}

/**
 * Frames of silence for a break: the whole number of frames nearest to the requested time (ties round up).
 *
 * @example
 * ```ts
 * breakFrames(500, 24000, 1920); // 6 (480 ms: 6.25 frames rounded)
 * ```
 */
export function breakFrames(ms: number, sampleRate: number, samplesPerFrame: number): number {
  return Math.round((ms * sampleRate) / 1000 / samplesPerFrame);
}
