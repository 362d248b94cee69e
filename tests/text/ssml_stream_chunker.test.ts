// The SSML subset, the whole-text speech plan, and the streaming chunker's rule: chunks depend only on the text
// (any split into deltas gives the same items), sentence ends close chunks, no chunk passes the budget.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFixture } from "../support/fixtures.ts";
import { SentencePieceTokenizer } from "../../src/text/tokenizer.ts";
import { splitIntoChunks } from "../../src/text/chunking.ts";
import { breakFrames, isSsml, parseSsml, SsmlError, SsmlParser } from "../../src/text/ssml.ts";
import { planSpeech, type SpeechItem } from "../../src/text/speech_plan.ts";
import { endsSentence, STREAM_MIN_TOKENS, StreamChunker } from "../../src/text/stream_chunker.ts";
import { InvalidTextError } from "../../src/errors.ts";

const tokenizer = SentencePieceTokenizer.fromModel(await readFixture("text/tokenizer.model"));

/** A deterministic pseudo-random split of `text` into pieces of 1–`max` characters (code units). */
function split(text: string, seed: number, max: number): string[] {
  const pieces: string[] = [];
  let s = seed;
  for (let i = 0; i < text.length;) {
    s = (s * 1103515245 + 12345) >>> 0;
    const n = 1 + (s >>> 16) % max;
    pieces.push(text.slice(i, i + n));
    i += n;
  }
  return pieces;
}

function streamItems(pieces: Iterable<string>, options = {}): SpeechItem[] {
  const chunker = new StreamChunker(tokenizer, options);
  const items: SpeechItem[] = [];
  for (const p of pieces) items.push(...chunker.push(p));
  items.push(...chunker.end());
  return items;
}

const LONG = "Hello there. This is a test of streaming text. Dr. Smith paid $3.50 for 2 coffees at 9:30 am, " +
  "which is a lot. Is it? Yes! The quick brown fox jumps over the lazy dog again and again, and then once more; " +
  "it never stops jumping, running, leaping, bounding, skipping and hopping over every dog it ever meets in the " +
  "long grass by the river near the old mill on the hill. “Quoted sentence.” Final words without a period";

describe("SSML subset", () => {
  test("breaks, p, s, escapes, comments", () => {
    assert.ok(isSsml("  <speak>x</speak>"));
    assert.ok(!isSsml("<speaker>"));
    assert.deepEqual(
      parseSsml(
        '<speak version="1.0"><p><s>A &amp; B &lt;3 &#233;&#x1F600;</s></p><!-- note --><break time="1.5s"/>' +
          "<break strength='weak'/><break/>C</speak>",
      ),
      [
        { type: "boundary" },
        { type: "boundary" },
        { type: "text", text: "A & B <3 é😀" },
        { type: "boundary" },
        { type: "boundary" },
        { type: "break", ms: 1500 },
        { type: "break", ms: 500 },
        { type: "break", ms: 750 },
        { type: "text", text: "C" },
      ],
    );
  });

  test("the parser gives the same events for any split of the document", () => {
    const doc = '<speak>One &amp; two.<break time="250ms"/><p>Three <s>four</s>.</p><!-- x --> Five &#65;.</speak>';
    const whole = parseSsml(doc);
    const joinText = (events: ReturnType<typeof parseSsml>) => {
      const out: unknown[] = [];
      for (const e of events) {
        const last = out.at(-1) as { type: string; text: string } | undefined;
        if (e.type === "text" && last?.type === "text") last.text += e.text;
        else out.push({ ...e });
      }
      return out;
    };
    for (let seed = 1; seed <= 20; seed++) {
      const parser = new SsmlParser();
      const events = [...split(doc, seed, 5).flatMap((p) => parser.push(p)), ...parser.end()];
      assert.deepEqual(joinText(events), joinText(whole));
    }
  });

  test("errors are typed and name the element", () => {
    const cases: [string, string, string | undefined][] = [
      ["<speak><emphasis>x</emphasis></speak>", "unsupported_ssml", "emphasis"],
      ['<speak><prosody rate="slow">x</prosody></speak>', "unsupported_ssml", "prosody"],
      ['<speak><break time="1s" foo="2"/></speak>', "unsupported_ssml", "break"],
      ['<speak><break time="fast"/></speak>', "invalid_ssml", undefined],
      ['<speak><break time="11s"/></speak>', "invalid_ssml", "break"],
      ['<speak><break strength="huge"/></speak>', "invalid_ssml", "break"],
      ["<speak><p>x</s></speak>", "invalid_ssml", "s"],
      ["<speak>x", "invalid_ssml", "speak"],
      ["<speak>a & b</speak>", "invalid_ssml", undefined],
      ["<speak>&nbsp;</speak>", "invalid_ssml", undefined],
      ["<speak>x</speak> tail", "invalid_ssml", undefined],
      ["<speak><break>x</break></speak>", "invalid_ssml", "break"],
    ];
    for (const [doc, code, element] of cases) {
      assert.throws(() => parseSsml(doc), (e: unknown) => {
        assert.ok(e instanceof SsmlError, doc);
        assert.equal(e.code, code, doc);
        assert.equal(e.element, element, doc);
        if (element) assert.match(e.message, new RegExp(element), doc);
        return true;
      });
    }
  });

  test("a break lasts the whole number of frames nearest the requested time", () => {
    assert.equal(breakFrames(500, 24000, 1920), 6); // 6.25 frames
    assert.equal(breakFrames(80, 24000, 1920), 1);
    assert.equal(breakFrames(120, 24000, 1920), 2); // 1.5 → 2
    assert.equal(breakFrames(30, 24000, 1920), 0);
    assert.equal(breakFrames(1000, 24000, 1920), 13); // 12.5 → 13
  });

  test("planSpeech: plain text is the reference's chunking; SSML splits at breaks and p/s", () => {
    const plain = planSpeech(tokenizer, LONG);
    assert.deepEqual(plain, splitIntoChunks(tokenizer, LONG).map((chunk) => ({ type: "chunk", chunk })));
    const plan = planSpeech(tokenizer, '<speak><s>Hello.</s> <break time="1s"/>Good <p>bye</p></speak>');
    assert.deepEqual(
      plan.map((i) => i.type === "chunk" ? i.chunk.text : i.ms),
      ["Hello.", 1000, "Good.", "Bye."],
    );
    assert.deepEqual(
      planSpeech(tokenizer, "<speak>It costs $5.</speak>", { normalize: "en" }).map((i) =>
        i.type === "chunk" && i.chunk.text
      ),
      ["It costs five dollars."],
    );
    assert.throws(() => planSpeech(tokenizer, "<speak> </speak>"), InvalidTextError);
  });
});

describe("StreamChunker", () => {
  test("sentence ends: abbreviations, initials, numbers and closers", () => {
    for (const w of ["end.", "end!", "what?", "so…", "wait...", 'said."', "(this.)", "yes.”"]) {
      assert.ok(endsSentence(w), w);
    }
    for (const w of ["Dr.", "e.g.", "U.S.", "J.", "3.14", "word", "Jan.", "(Mr."]) assert.ok(!endsSentence(w), w);
  });

  test("same items for any split into deltas (whole, word by word, character by character, random)", () => {
    for (const text of [LONG, '<speak>One. <break time="300ms"/>Two &amp; three.<s>Four</s> five</speak>']) {
      const whole = streamItems([text], { normalize: "en" });
      assert.ok(whole.length >= 3);
      assert.deepEqual(streamItems(Array.from(text), { normalize: "en" }), whole);
      assert.deepEqual(streamItems(text.split(/(?<= )/), { normalize: "en" }), whole);
      for (let seed = 1; seed <= 10; seed++) {
        assert.deepEqual(streamItems(split(text, seed, 7), { normalize: "en" }), whole, `seed ${seed}`);
      }
    }
  });

  test("the rule: first sentence alone, later chunks ≥ the minimum at sentence ends, never over budget", () => {
    const items = streamItems([LONG]);
    const chunks = items.map((i) => i.type === "chunk" ? i.chunk : assert.fail("no breaks"));
    assert.equal(chunks[0].text, "Hello there.");
    for (const c of chunks) assert.ok(c.ids.length <= 50, c.text);
    for (const c of chunks.slice(1, -1)) {
      // closed at a sentence end with enough tokens, or at a clause end because the next word would not fit
      assert.ok(
        (endsSentence(c.text.split(" ").at(-1)!) && c.ids.length >= STREAM_MIN_TOKENS) ||
          /[,;:]$/.test(c.text) || c.ids.length > 40,
        c.text,
      );
    }
    assert.equal(chunks.at(-1)!.text, "“Quoted sentence.” Final words without a period.");
    const plain = (s: string) => s.replaceAll(/[,.]/g, "").toLowerCase(); // chunks are capitalised when prepared
    assert.equal(plain(chunks.map((c) => c.text).join(" ")), plain(LONG));
  });

  test("a chunk is emitted as soon as its sentence end is followed by whitespace", () => {
    const chunker = new StreamChunker(tokenizer);
    assert.deepEqual(chunker.push("Hi there."), []);
    const items = chunker.push(" And");
    assert.equal(items.length, 1);
    assert.equal(items[0].type === "chunk" && items[0].chunk.text, "Hi there.");
    assert.deepEqual(chunker.push(" then"), []);
    assert.deepEqual(chunker.end().map((i) => i.type === "chunk" && i.chunk.text), ["And then."]);
  });

  test("empty streams are the reference's empty-text error", () => {
    assert.throws(() => streamItems([" ", "\n"]), InvalidTextError);
    assert.throws(() => streamItems([]), InvalidTextError);
  });
});

describe("StreamChunker.speculate", () => {
  test("offers the chunk a following space would close, and only then", () => {
    const chunker = new StreamChunker(tokenizer);
    chunker.push("Hello there");
    assert.equal(chunker.speculate(), null);
    chunker.push(".");
    const guess = chunker.speculate();
    assert.equal(guess?.text, "Hello there.");
    const [item] = chunker.push(" Next");
    assert.deepEqual(item, { type: "chunk", chunk: guess });
    chunker.push(" one 3.");
    assert.equal(chunker.speculate(), null, "a later chunk is still short of the minimum");
    chunker.push("14");
    assert.equal(chunker.speculate(), null);
  });
});
