// The browser example: loads @pocket/tts as plain ES modules (see the import map in index.html), downloads the
// model once with a progress bar (later visits read it from the Cache API), and plays each 80 ms frame as soon as it
// is generated: every frame is scheduled to start exactly where the previous one ends, so there are no gaps as long
// as generation keeps ahead of playback (it runs several times faster than real time).
//
// Query parameters prefill the form: ?text=…&model=…&voice=…&seed=…&workers=0&simd=baseline (workers=1: the whole
// model in one worker on the threads build, where the page is cross-origin isolated)
import { encodeWav, TTSModel } from "@pocket/tts";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
for (const key of ["text", "model", "voice", "seed"]) if (params.has(key)) $(key).value = params.get(key);
if (params.get("workers") === "0") $("single").checked = true;
const simd = params.get("simd") ?? "auto";

/** Start the first frame this long after it arrives, so the next one is ready before it ends. */
const LEAD_SECONDS = 0.15;

let loaded = null; // { key, tts }
let audioContext = null;

function status(text) {
  $("status").textContent = text;
}

/** Download progress over every file seen so far. */
function progressTracker() {
  const files = new Map();
  return ({ file, loaded, total }) => {
    files.set(file, { loaded, total: total ?? loaded });
    let done = 0, all = 0;
    for (const f of files.values()) {
      done += f.loaded;
      all += f.total;
    }
    $("progress").value = all ? done / all : 0;
    status(`Downloading ${file.split("/").pop()}: ${(loaded / 1e6).toFixed(1)} MB`);
  };
}

async function model() {
  const source = $("model").value.trim();
  const workers = $("single").checked ? 0 : params.get("workers") === "1" ? 1 : "auto";
  const key = JSON.stringify([source, workers]);
  if (loaded?.key === key) return loaded.tts;
  loaded?.tts.dispose();
  loaded = null;
  status("Loading the model…");
  let downloaded = false;
  const track = progressTracker();
  const tts = await TTSModel.load({
    ...(source ? { model: new URL(source, location.href).href } : {}),
    workers,
    simd,
    onProgress: (e) => {
      downloaded = true;
      track(e);
    },
  });
  $("progress").value = 1;
  loaded = { key, tts, downloaded };
  return tts;
}

async function speak() {
  $("speak").disabled = true;
  try {
    // Created on the click, so the autoplay policy lets it start.
    audioContext ??= new AudioContext({ sampleRate: 24000 });
    await audioContext.resume();
    const tts = await model();
    const voiceSpec = $("voice").value.trim();
    const voice = voiceSpec
      ? await tts.loadVoice(/^[a-z_]+$/.test(voiceSpec) ? voiceSpec : new URL(voiceSpec, location.href).href)
      : undefined;
    const seedText = $("seed").value.trim();
    status("Speaking…");
    const started = performance.now();
    let firstAudioMs = null;
    let next = 0; // where the next frame starts, in audioContext time
    let underruns = 0;
    const frames = [];
    for await (
      const frame of tts.stream($("text").value, { voice, ...(seedText ? { seed: Number(seedText) } : {}) })
    ) {
      firstAudioMs ??= performance.now() - started;
      const buffer = audioContext.createBuffer(1, frame.length, tts.sampleRate);
      buffer.copyToChannel(frame, 0);
      const source = audioContext.createBufferSource();
      source.buffer = buffer;
      source.connect(audioContext.destination);
      if (frames.length === 0) next = audioContext.currentTime + LEAD_SECONDS;
      else if (next < audioContext.currentTime) {
        underruns++; // generation fell behind playback: restart the timeline (an audible gap)
        next = audioContext.currentTime + LEAD_SECONDS;
      }
      source.start(next);
      next += buffer.duration;
      frames.push(frame);
    }
    const audio = new Float32Array(frames.length * (frames[0]?.length ?? 0));
    frames.forEach((f, i) => audio.set(f, i * f.length));
    const seconds = audio.length / tts.sampleRate;
    const wallSeconds = (performance.now() - started) / 1000;
    status(
      `${seconds.toFixed(2)} s of audio, first audio after ${firstAudioMs?.toFixed(0)} ms, ` +
        `${(seconds / wallSeconds).toFixed(1)}× real time${underruns ? `, ${underruns} gaps` : ""}.`,
    );
    // For tests and for saving: the WAV the CLI would write for the same request.
    const wav = encodeWav(audio, tts.sampleRate, { unknownLength: true, trailingSilenceMs: 200 });
    let binary = "";
    for (let i = 0; i < wav.length; i += 0x8000) binary += String.fromCharCode(...wav.subarray(i, i + 0x8000));
    globalThis.pocketResult = {
      wavBase64: btoa(binary),
      frames: frames.length,
      underruns,
      firstAudioMs,
      usesWorkers: tts.usesWorkers,
      downloaded: loaded.downloaded,
      progress: $("progress").value,
    };
  } catch (e) {
    status(`Error: ${e.message}`);
    globalThis.pocketResult = { error: `${e.name}: ${e.message}`, code: e.code };
  } finally {
    $("speak").disabled = false;
  }
}

$("speak").addEventListener("click", speak);
