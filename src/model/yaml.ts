/**
 * A small YAML reader for the subset model configs use: nested block mappings, block sequences of scalars (the
 * `- 6` items may sit at their key's indentation), flow sequences and flow mappings of scalars (`[6, 5, 4]`,
 * `{a: b}`), comments, plain, single- and double-quoted scalars, and YAML's null/bool/int/float scalars.
 *
 * Anything outside that subset (anchors, tags, multi-line scalars, multiple documents, complex keys, sequences of
 * mappings) is rejected with a {@link ConfigError} naming the line, never silently misread. Scalars resolve like
 * PyYAML's `safe_load` for the forms configs use: `true/false` (any case) and `yes/no/on/off` are booleans,
 * `null`, `~` and empty values are null, numbers with a dot or exponent are floats.
 *
 * @module
 */
import { ConfigError } from "../errors.ts";

/** A parsed YAML value. */
export type YamlValue = null | boolean | number | string | YamlValue[] | { [key: string]: YamlValue };

interface Line {
  no: number;
  indent: number;
  text: string;
}

function fail(line: number, msg: string, source: string): never {
  throw new ConfigError(`${source}: line ${line}: ${msg}`);
}

/** Strip a trailing comment (a `#` at the start or after whitespace, outside quotes). */
function stripComment(s: string): string {
  let quote: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === quote) {
        if (quote === "'" && s[i + 1] === "'") i++;
        else quote = null;
      } else if (quote === '"' && c === "\\") i++;
    } else if (c === "'" || c === '"') {
      if (i === 0 || /[\s:[{,\-]/.test(s[i - 1])) quote = c;
    } else if (c === "#" && (i === 0 || /\s/.test(s[i - 1]))) {
      return s.slice(0, i);
    }
  }
  return s;
}

const INT_RE = /^[-+]?(0|[1-9][0-9_]*)$/;
const HEX_RE = /^0x[0-9a-fA-F_]+$/;
const FLOAT_RE = /^[-+]?(\d[\d_]*\.\d*|\.\d+|\d[\d_]*)([eE][-+]?\d+)?$/;

/** Resolve a plain (unquoted) scalar. */
function plainScalar(s: string): YamlValue {
  if (s === "" || s === "~" || /^(null|Null|NULL)$/.test(s)) return null;
  if (/^(true|True|TRUE|yes|Yes|YES|on|On|ON)$/.test(s)) return true;
  if (/^(false|False|FALSE|no|No|NO|off|Off|OFF)$/.test(s)) return false;
  if (INT_RE.test(s)) return Number(s.replace(/_/g, ""));
  if (HEX_RE.test(s)) return Number.parseInt(s.slice(2).replace(/_/g, ""), 16);
  if (FLOAT_RE.test(s) && /[.eE]/.test(s)) return Number(s.replace(/_/g, ""));
  if (/^[-+]?\.(inf|Inf|INF)$/.test(s)) return s.startsWith("-") ? -Infinity : Infinity;
  if (/^\.(nan|NaN|NAN)$/.test(s)) return NaN;
  return s;
}

function doubleQuoted(body: string, line: number, source: string): string {
  let out = "";
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c !== "\\") {
      out += c;
      continue;
    }
    const e = body[++i];
    const simple: Record<string, string> = {
      "n": "\n",
      "t": "\t",
      "r": "\r",
      "0": "\0",
      '"': '"',
      "\\": "\\",
      "/": "/",
      " ": " ",
    };
    if (e in simple) out += simple[e];
    else if (e === "x" || e === "u" || e === "U") {
      const len = e === "x" ? 2 : e === "u" ? 4 : 8;
      const hex = body.slice(i + 1, i + 1 + len);
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) fail(line, `bad escape \\${e}${hex}`, source);
      out += String.fromCodePoint(Number.parseInt(hex, 16));
      i += len;
    } else fail(line, `unsupported escape \\${e}`, source);
  }
  return out;
}

/** Parse one scalar token (quoted or plain). */
function scalar(tok: string, line: number, source: string): YamlValue {
  const s = tok.trim();
  if (s.startsWith('"')) {
    if (s.length < 2 || !s.endsWith('"')) fail(line, `unterminated string ${s}`, source);
    return doubleQuoted(s.slice(1, -1), line, source);
  }
  if (s.startsWith("'")) {
    if (s.length < 2 || !s.endsWith("'")) fail(line, `unterminated string ${s}`, source);
    return s.slice(1, -1).replace(/''/g, "'");
  }
  if (/^[&*!|>%@`]/.test(s)) fail(line, `unsupported YAML construct "${s}" (anchors, tags, block scalars)`, source);
  if (/:(\s|$)/.test(s)) fail(line, `a mapping is not allowed here ("${s}")`, source);
  return plainScalar(s);
}

/** Split the inside of a flow collection on top-level commas. */
function splitFlow(body: string, line: number, source: string): string[] {
  const parts: string[] = [];
  let quote: string | null = null;
  let cur = "";
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (quote) {
      cur += c;
      if (c === quote) quote = null;
      else if (c === "\\" && quote === '"') cur += body[++i] ?? "";
    } else if (c === '"' || c === "'") {
      quote = c;
      cur += c;
    } else if (c === "[" || c === "{") fail(line, "nested flow collections are not supported", source);
    else if (c === ",") {
      parts.push(cur);
      cur = "";
    } else cur += c;
  }
  if (quote) fail(line, "unterminated string in flow collection", source);
  if (cur.trim() !== "" || parts.length > 0) parts.push(cur);
  if (parts.length && parts[parts.length - 1].trim() === "") parts.pop(); // trailing comma
  return parts;
}

/** Find the `: ` (or line-final `:`) separating a key from its value, outside quotes. */
function keySplit(s: string): number {
  let quote: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === quote) quote = null;
    } else if ((c === '"' || c === "'") && i === 0) quote = c;
    else if (c === ":" && (i === s.length - 1 || s[i + 1] === " ")) return i;
  }
  return -1;
}

function inlineValue(s: string, line: number, source: string): YamlValue {
  const t = s.trim();
  if (t.startsWith("[")) {
    if (!t.endsWith("]")) fail(line, `unterminated flow sequence ${t}`, source);
    return splitFlow(t.slice(1, -1), line, source).map((p) => scalar(p, line, source));
  }
  if (t.startsWith("{")) {
    if (!t.endsWith("}")) fail(line, `unterminated flow mapping ${t}`, source);
    const out: Record<string, YamlValue> = {};
    for (const p of splitFlow(t.slice(1, -1), line, source)) {
      const k = keySplit(p.trim());
      if (k < 0) fail(line, `flow mapping entry "${p.trim()}" has no key`, source);
      const key = scalar(p.trim().slice(0, k), line, source);
      const name = String(key);
      if (Object.hasOwn(out, name)) fail(line, `duplicate key "${name}"`, source);
      out[name] = scalar(p.trim().slice(k + 1), line, source);
    }
    return out;
  }
  return scalar(t, line, source);
}

/**
 * Parse YAML text (the config subset described in the module doc).
 *
 * @param text the YAML document
 * @param source a name for error messages (file path or URL)
 * @returns the parsed value
 * @throws {ConfigError} naming the line of any syntax outside the subset
 */
export function parseYaml(text: string, source = "<yaml>"): YamlValue {
  const lines: Line[] = [];
  const raw = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  for (let i = 0; i < raw.length; i++) {
    const no = i + 1;
    const body = stripComment(raw[i]).replace(/\s+$/, "");
    if (body.trim() === "") continue;
    const indent = body.length - body.trimStart().length;
    if (/^\s*\t/.test(body) || body.slice(0, indent).includes("\t")) {
      fail(no, "tabs are not allowed in indentation", source);
    }
    const t = body.trimStart();
    if (indent === 0 && (t === "---" || t === "...")) {
      if (t === "---" && lines.length > 0) fail(no, "multiple YAML documents are not supported", source);
      continue;
    }
    if (t.startsWith("%")) fail(no, "YAML directives are not supported", source);
    lines.push({ no, indent, text: t });
  }
  if (lines.length === 0) return null;
  let pos = 0;

  function parseBlock(indent: number): YamlValue {
    const first = lines[pos];
    if (first.text === "-" || first.text.startsWith("- ")) return parseSeq(indent);
    if (keySplit(first.text) >= 0) return parseMap(indent);
    // a lone scalar document
    pos++;
    if (pos < lines.length) fail(lines[pos].no, "unexpected content after a scalar", source);
    return inlineValue(first.text, first.no, source);
  }

  function parseSeq(indent: number): YamlValue[] {
    const out: YamlValue[] = [];
    while (
      pos < lines.length && lines[pos].indent === indent &&
      (lines[pos].text === "-" || lines[pos].text.startsWith("- "))
    ) {
      const l = lines[pos++];
      const item = l.text.slice(1).trim();
      if (item === "") fail(l.no, "nested block collections inside sequences are not supported", source);
      if (item.startsWith("- ") || (keySplit(item) >= 0 && !/^["'[{]/.test(item))) {
        fail(l.no, "sequences of mappings or sequences are not supported", source);
      }
      out.push(inlineValue(item, l.no, source));
    }
    if (pos < lines.length && lines[pos].indent > indent) fail(lines[pos].no, "unexpected indentation", source);
    return out;
  }

  function parseMap(indent: number): Record<string, YamlValue> {
    const out: Record<string, YamlValue> = {};
    while (pos < lines.length && lines[pos].indent === indent) {
      const l = lines[pos];
      if (l.text === "-" || l.text.startsWith("- ")) fail(l.no, "a sequence item where a key was expected", source);
      const k = keySplit(l.text);
      if (k < 0) fail(l.no, `expected "key: value", got "${l.text}"`, source);
      const keyVal = scalar(l.text.slice(0, k), l.no, source);
      if (keyVal === null || typeof keyVal === "object") fail(l.no, "complex or empty keys are not supported", source);
      const key = String(keyVal);
      if (Object.hasOwn(out, key)) fail(l.no, `duplicate key "${key}"`, source);
      const rest = l.text.slice(k + 1).trim();
      pos++;
      if (rest !== "") {
        out[key] = inlineValue(rest, l.no, source);
        continue;
      }
      const next = lines[pos];
      if (next && next.indent > indent) out[key] = parseBlock(next.indent);
      else if (next && next.indent === indent && (next.text === "-" || next.text.startsWith("- "))) {
        out[key] = parseSeq(indent);
      } else out[key] = null;
    }
    if (pos < lines.length && lines[pos].indent > indent) fail(lines[pos].no, "unexpected indentation", source);
    return out;
  }

  const first = lines[0];
  if (first.indent !== 0) fail(first.no, "the document must start at column 0", source);
  const value = parseBlock(0);
  if (pos < lines.length) fail(lines[pos].no, "unexpected indentation", source);
  return value;
}
