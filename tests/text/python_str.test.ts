import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { pyIsAlnum, pyIsSpace, pySplit, pyStrip, pyUpperChar, pyWordCount } from "../../src/text/python_str.ts";

/**
 * Code points (hex ranges) that became alphanumeric, or gained an uppercase mapping, in Unicode 15.0–17.0: the
 * only places where a JS engine with newer Unicode data may disagree with CPython 3.11 (Unicode 14.0), which the
 * tables reproduce. Measured against ICU 78 / Unicode 17.0 (Bun 1.4.5, Node 20); Deno 2.9.6 (Unicode 16) differs
 * on a subset.
 */
const LATER_ALNUM =
  "88f c5c cdc 1c89-1c8a a7cb-a7cf a7d2 a7d4 a7da-a7dc a7f1 105c0-105f3 10940-10959 10d40-10d65 10d6f-10d85 " +
  "10ec2-10ec7 1123f-11240 11380-11389 1138b 1138e 11390-113b5 113b7 113d1 113d3 116d0-116e3 11bc0-11be0 " +
  "11bf0-11bf9 11db0-11ddb 11de0-11de9 11f02 11f04-11f10 11f12-11f33 11f50-11f59 1342f 13441-13446 13460-143fa " +
  "16100-1611d 16130-16139 16d40-16d6c 16d70-16d79 16ea0-16eb8 16ebb-16ed3 16ff2-16ff6 187f8-187ff 18cff " +
  "18d09-18d1e 18d80-18df2 1b132 1b155 1ccf0-1ccf9 1d2c0-1d2d3 1df25-1df2a 1e030-1e06d 1e4d0-1e4eb 1e4f0-1e4f9 " +
  "1e5d0-1e5ed 1e5f0-1e5fa 1e6c0-1e6de 1e6e0-1e6e2 1e6e4-1e6e5 1e6e7-1e6ed 1e6f0-1e6f4 1e6fe-1e6ff 2b739-2b73f " +
  "2cea2-2cead 2ebf0-2ee5d 31350-33479";
const LATER_UPPER = "19b 264 1c8a a7cd a7cf a7d3 a7d5 a7db 10d70-10d85 16ebb-16ed3";

function parseRanges(spec: string): (cp: number) => boolean {
  const ranges = spec.split(" ").map((r) => r.split("-").map((v) => parseInt(v, 16)));
  return (cp) => ranges.some(([a, b = a]) => cp >= a && cp <= b);
}

describe("Python str semantics (CPython 3.11, Unicode 14.0)", () => {
  test("isalnum agrees with the runtime's \\p{L}|\\p{N} except on characters added after Unicode 14", () => {
    const later = parseRanges(LATER_ALNUM);
    const re = /^[\p{L}\p{N}]$/u;
    let checked = 0;
    for (let cp = 0; cp < 0x110000; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const js = re.test(String.fromCodePoint(cp));
      if (js !== pyIsAlnum(cp)) {
        assert.ok(later(cp) && js, `U+${cp.toString(16)}: table ${pyIsAlnum(cp)}, runtime ${js}`);
      }
      checked++;
    }
    assert.equal(checked, 0x110000 - 0x800);
  });

  test("upper agrees with the runtime's toUpperCase except on mappings added after Unicode 14", () => {
    const later = parseRanges(LATER_UPPER);
    for (let cp = 0; cp < 0x110000; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const s = String.fromCodePoint(cp);
      const js = s.toUpperCase();
      const py = pyUpperChar(cp);
      if (js !== py) assert.ok(later(cp) && py === s, `U+${cp.toString(16)}: table ${py}, runtime ${js}`);
    }
  });

  test("upper: the reference's multi-character and non-obvious cases", () => {
    const cases: [string, string][] = [
      ["ß", "SS"],
      ["ﬁ", "FI"],
      ["ŉ", "ʼN"],
      ["\u0390", "\u0399\u0308\u0301"],
      ["ǅ", "Ǆ"],
      ["𐐨", "𐐀"],
      ["µ", "Μ"],
      ["ª", "ª"],
      ["𝐚", "𝐚"],
      ["ɤ", "ɤ"], // U+A7CB exists only since Unicode 16
      ["ƛ", "ƛ"], // U+A7DC exists only since Unicode 16
      ["7", "7"],
    ];
    for (const [input, expected] of cases) assert.equal(pyUpperChar(input.codePointAt(0)!), expected, input);
  });

  test("whitespace: Python's set, not JS's", () => {
    for (const c of "\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000") {
      assert.ok(pyIsSpace(c.charCodeAt(0)), `U+${c.charCodeAt(0).toString(16)}`);
    }
    for (const c of "\ufeff\u200b\u180ea_") assert.ok(!pyIsSpace(c.charCodeAt(0)), `U+${c.charCodeAt(0).toString(16)}`);
    assert.equal(pyStrip("\x1c\x85 \ufeffa b\u3000\x1f"), "\ufeffa b");
    assert.equal(pyStrip(" \t "), "");
    assert.deepEqual(pySplit(" a\x1cb  c\u2028"), ["a", "b", "c"]);
    assert.equal(pyWordCount(" a\x1cb  c\u2028"), 3);
    assert.equal(pyWordCount(""), 0);
  });
});
