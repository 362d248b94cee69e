import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFixtureJson } from "../support/fixtures.ts";
import { prepareText } from "../../src/text/prepare.ts";
import { InvalidTextError, PocketTtsError } from "../../src/errors.ts";

interface PrepareResult {
  pad_with_spaces_for_short_inputs: boolean;
  remove_semicolons: boolean;
  ok: boolean;
  text?: string;
  frames_after_eos?: number;
  error?: string;
}

interface PrepareCase {
  id: string;
  category: string;
  text: string;
  results: PrepareResult[];
}

const golden = await readFixtureJson<{ cases: PrepareCase[] }>("text/prepare_text.json");

describe("prepareText matches prepare_text_prompt (prepare_text.json)", () => {
  test("has the 130 cases × 4 flag combinations", () => {
    assert.equal(golden.cases.length, 130);
    assert.ok(golden.cases.every((c) => c.results.length === 4));
  });

  for (const category of [...new Set(golden.cases.map((c) => c.category))]) {
    test(`category ${category}`, () => {
      for (const c of golden.cases.filter((c) => c.category === category)) {
        for (const r of c.results) {
          const options = {
            padWithSpacesForShortInputs: r.pad_with_spaces_for_short_inputs,
            removeSemicolons: r.remove_semicolons,
          };
          const label = `${c.id} ${JSON.stringify(c.text)} ${JSON.stringify(options)}`;
          if (r.ok) {
            const prepared = prepareText(c.text, options);
            assert.equal(prepared.text, r.text, label);
            assert.equal(prepared.framesAfterEos, r.frames_after_eos, label);
          } else {
            assert.throws(() => prepareText(c.text, options), (e: unknown) => {
              assert.ok(e instanceof InvalidTextError, label);
              assert.ok(e instanceof PocketTtsError);
              assert.equal(e.code, "empty_text");
              assert.equal(e.message, r.error, label);
              return true;
            });
          }
        }
      }
    });
  }
});
