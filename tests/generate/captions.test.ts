import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { toWebVtt } from "../../src/generate/captions.ts";

describe("toWebVtt", () => {
  test("cues with millisecond times from sample positions; text escaped", () => {
    const vtt = toWebVtt([
      { text: "Hello there.", start: 0, end: 1920 * 10 },
      { text: "A <b> & c --> d", start: 1920 * 16, end: 24000 * 3725 + 12 },
    ], 24000);
    assert.equal(
      vtt,
      "WEBVTT\n\n1\n00:00:00.000 --> 00:00:00.800\nHello there.\n\n" +
        "2\n00:00:01.280 --> 01:02:05.001\nA &lt;b&gt; &amp; c --&gt; d\n",
    );
  });

  test("no captions: just the header", () => {
    assert.equal(toWebVtt([], 24000), "WEBVTT\n");
  });
});
