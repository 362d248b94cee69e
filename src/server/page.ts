/**
 * `GET /`: one self-contained page (no build step, no CDN). A text box, a voice picker, an optional API key and a
 * Speak button; the speech comes from `POST /v1/audio/speech` as raw PCM and plays as it arrives, each piece scheduled
 * with WebAudio right after the previous one (no gaps). It shows the time to first audio and the real-time factor,
 * and offers the WAV for download.
 *
 * @module
 */

const SCRIPT = String.raw`
const $ = (id) => document.getElementById(id);
const RATE = 24000;
let ctx = null;

async function loadVoices() {
  const res = await fetch("v1/voices", { headers: auth() });
  if (!res.ok) { $("status").textContent = "voices: " + (await errorText(res)); return; }
  const { voices } = await res.json();
  $("voice").replaceChildren(...voices.map((v) => new Option(v, v)));
}

function auth() {
  const key = $("key").value.trim();
  return key ? { authorization: "Bearer " + key } : {};
}

async function errorText(res) {
  try { return (await res.json()).error.message; } catch { return "HTTP " + res.status; }
}

function wavFile(chunks, bytes) {
  const out = new Uint8Array(44 + bytes);
  const v = new DataView(out.buffer);
  const str = (at, s) => [...s].forEach((c, i) => out[at + i] = c.charCodeAt(0));
  str(0, "RIFF"); v.setUint32(4, 36 + bytes, true); str(8, "WAVEfmt ");
  v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
  v.setUint32(24, RATE, true); v.setUint32(28, RATE * 2, true); v.setUint16(32, 2, true); v.setUint16(34, 16, true);
  str(36, "data"); v.setUint32(40, bytes, true);
  let at = 44;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return new Blob([out], { type: "audio/wav" });
}

async function speak() {
  const button = $("speak");
  button.disabled = true;
  $("download").hidden = true;
  $("status").textContent = "generating…";
  ctx ??= new AudioContext({ sampleRate: RATE });
  await ctx.resume();
  const t0 = performance.now();
  let next = 0, frames = 0, samples = 0, first = 0, rest = null;
  const chunks = [];
  try {
    const res = await fetch("v1/audio/speech", {
      method: "POST",
      headers: { "content-type": "application/json", ...auth() },
      body: JSON.stringify({ model: "pocket-tts", input: $("text").value, voice: $("voice").value, response_format: "pcm" }),
    });
    if (!res.ok) throw new Error(await errorText(res));
    const reader = res.body.getReader();
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      let bytes = value;
      if (rest) { bytes = new Uint8Array(rest.length + value.length); bytes.set(rest); bytes.set(value, rest.length); }
      const even = bytes.length & ~1;
      rest = even < bytes.length ? bytes.slice(even) : null;
      if (even === 0) continue;
      const pcm = new Int16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + even));
      chunks.push(new Uint8Array(pcm.buffer));
      const buffer = ctx.createBuffer(1, pcm.length, RATE);
      const data = buffer.getChannelData(0);
      for (let i = 0; i < pcm.length; i++) data[i] = pcm[i] / 32768;
      const src = ctx.createBufferSource();
      src.buffer = buffer;
      src.connect(ctx.destination);
      if (!first) { first = performance.now() - t0; next = ctx.currentTime + 0.05; $("ttfa").textContent = (first / 1000).toFixed(2) + " s"; }
      next = Math.max(next, ctx.currentTime); // a late piece starts now; otherwise exactly after the previous one
      src.start(next);
      next += buffer.duration;
      samples += pcm.length;
      frames = Math.floor(samples / 1920);
      $("frames").textContent = String(frames);
      const wall = (performance.now() - t0) / 1000;
      $("rtf").textContent = (samples / RATE / wall).toFixed(2) + "× real time";
    }
    $("status").textContent = "done: " + (samples / RATE).toFixed(2) + " s of audio";
    const a = $("download");
    a.href = URL.createObjectURL(wavFile(chunks, samples * 2));
    a.hidden = false;
  } catch (e) {
    $("status").textContent = "error: " + e.message;
  } finally {
    button.disabled = false;
  }
}

$("speak").addEventListener("click", speak);
$("key").addEventListener("change", loadVoices);
loadVoices();
`;

/**
 * The page's HTML.
 *
 * @example
 * ```ts
 * const html = pageHtml("Hello world."); // serve it as text/html
 * ```
 */
export function pageHtml(defaultText = "Hello! This is Pocket TTS, speaking as the audio is generated."): string {
  const text = defaultText.replace(/[&<>]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pocket TTS</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  textarea { width: 100%; min-height: 8rem; font: inherit; padding: .5rem; box-sizing: border-box; }
  .row { display: flex; gap: .75rem; align-items: center; margin: .75rem 0; flex-wrap: wrap; }
  button { font: inherit; padding: .4rem 1.4rem; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
  dt { color: #666; }
</style>
</head>
<body>
<h1>Pocket TTS</h1>
<textarea id="text" aria-label="Text to speak">${text}</textarea>
<div class="row">
  <label>Voice <select id="voice"></select></label>
  <label>API key <input id="key" type="password" autocomplete="off" placeholder="(if the server needs one)"></label>
  <button id="speak">Speak</button>
</div>
<dl>
  <dt>Status</dt><dd id="status">ready</dd>
  <dt>First audio</dt><dd id="ttfa">–</dd>
  <dt>Speed</dt><dd id="rtf">–</dd>
  <dt>Frames scheduled</dt><dd id="frames">0</dd>
</dl>
<p><a id="download" download="speech.wav" hidden>Download WAV</a></p>
<script type="module">${SCRIPT}</script>
</body>
</html>`;
}
