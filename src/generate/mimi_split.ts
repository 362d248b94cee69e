/**
 * Where to cut the Mimi decoder between the two workers. The FlowLM worker runs, per frame, the AR step and then the
 * decoder's first `cut` stages; the other worker the remaining stages. The pipeline runs at the pace of the busier
 * worker, so the cut that minimises `max(step + first stages, last stages)` is the fastest (the audio is the same
 * for every cut: the same arithmetic, split differently).
 *
 * The costs are estimated from the model's shape, not timed at load (timing on a shared machine is noise, and the
 * weights must be split before they are loaded): the AR step reads all its weights once per frame (memory-bound:
 * bytes over an effective bandwidth), each decoder stage does its multiply-accumulates (compute-bound: MACs over the
 * rate a GEMM of its width reaches). The rates are what `deno task bench` measures (`flowlm.ar_step`,
 * `mimi.stage`); only their ratios matter, which vary much less between machines than the rates.
 *
 * @module
 */

import type { MimiStage } from "../runtime/mimi_decoder.ts";

/** Effective bytes per second of the AR step (its weights streamed once per step; BF16 and int8 alike). */
const STEP_BYTES_PER_S = 10e9;

/**
 * Multiply-accumulates per second a decoder stage reaches, by the narrowest dimension of its GEMMs (`width`):
 * `mimi.stage` on the full-size decoder, 2026-12-07 (AMD EPYC, baseline variant, quiet moment). Interpolated in
 * log₂(width) between these points, clamped outside.
 */
const RATE_BY_WIDTH: [number, number][] = [
  [1, 1.2e9],
  [32, 5.3e9],
  [64, 9.3e9],
  [128, 12.5e9],
  [256, 13.9e9],
  [512, 15.9e9],
];

/** Attention blocks run slower than their projections' MACs say (scores, softmax and P·V are not counted). */
const ATTENTION_FACTOR = 0.65;

function rate(width: number): number {
  const x = Math.log2(Math.max(1, width));
  const pts = RATE_BY_WIDTH.map(([w, r]) => [Math.log2(w), r]);
  if (x <= pts[0][0]) return pts[0][1];
  for (let i = 1; i < pts.length; i++) {
    const [x0, r0] = pts[i - 1], [x1, r1] = pts[i];
    if (x <= x1) return r0 + (r1 - r0) * (x - x0) / (x1 - x0);
  }
  return pts[pts.length - 1][1];
}

/** Estimated milliseconds of one frame of `stage`. */
export function stageMs(stage: MimiStage): number {
  const r = rate(stage.width) * (stage.name.endsWith(".attn") ? ATTENTION_FACTOR : 1);
  return stage.macs / r * 1e3;
}

/** Estimated milliseconds of one AR step reading `stepWeightBytes`. */
export function stepMs(stepWeightBytes: number): number {
  return stepWeightBytes / STEP_BYTES_PER_S * 1e3;
}

/**
 * The number of decoder stages (from the start of `plan`) the FlowLM worker should run so that both workers carry
 * about equal work per frame: `0` (the whole decoder in the second worker, when the AR step alone outweighs it) to
 * `plan.length − 1` (the second worker always runs at least the last stage).
 *
 * @example
 * ```ts
 * const cut = chooseMimiSplit(mimiDecoderPlan(core, config), flowLm.stepWeightBytes);
 * ```
 */
export function chooseMimiSplit(plan: MimiStage[], stepWeightBytes: number): number {
  const costs = plan.map(stageMs);
  const total = costs.reduce((a, b) => a + b, 0);
  const step = stepMs(stepWeightBytes);
  let best = 0, bestPace = Infinity, front = 0;
  for (let cut = 0; cut < plan.length; cut++) {
    const pace = Math.max(step + front, total - front);
    if (pace < bestPace - 1e-9) [best, bestPace] = [cut, pace];
    front += costs[cut];
  }
  return best;
}

/**
 * A stage with no state carried from frame to frame (a transformer layer's feed-forward half: norm, two linears,
 * residual), so either worker can run it for any frame.
 */
function isPositionWise(stage: MimiStage): boolean {
  return stage.name.endsWith(".ff");
}

/**
 * The stage both workers hold and take in turn, next to the cut: the stage at `cut` or the one before it, when it is
 * position-wise and each worker keeps stages of its own besides; `null` when there is none. The cut then moves by
 * fractions of a stage, frame by frame (see {@link SwingBalance}): the FlowLM worker runs stages `0…s − 1`, the other
 * `s + 1…`, and stage `s` runs in one of them.
 *
 * @example
 * ```ts
 * const s = sharedStage(plan, chooseMimiSplit(plan, stepWeightBytes));
 * ```
 */
export function sharedStage(plan: MimiStage[], cut: number): number | null {
  if (cut < 1) return null; // the whole decoder in the second worker, as asked
  for (const s of [cut, cut - 1]) {
    if (s >= 1 && s + 1 < plan.length && isPositionWise(plan[s])) return s;
  }
  return null;
}

/** Frames between two adjustments of {@link SwingBalance}'s share. */
const WINDOW = 8;
/** How far one adjustment moves the share. */
const SHARE_STEP = 0.125;
/** Busy times within this fraction of each other count as balanced. */
const TOLERANCE = 0.03;

/**
 * Which worker runs the shared stage of each frame. A fraction `share` of frames runs it in the FlowLM worker,
 * spread evenly (a credit counter); every few frames the share moves toward equal busy time in both workers, as
 * their replies report it. Engines and machines differ in which part is slower (Deno's V8 runs the AR step and the
 * transformer relatively faster than Bun's JSC), so it is measured, not modelled; the audio is the same either way.
 *
 * @example
 * ```ts
 * const balance = new SwingBalance();
 * const inFlowWorker = balance.next(); // for this frame
 * balance.served(0, flowWorkerBusyMs); // from each reply
 * balance.frame(); // when the frame is done
 * ```
 */
export class SwingBalance {
  #share = 0.5;
  #credit = 0;
  #frames = 0;
  #served: [number, number] = [0, 0];
  #windowStart: [number, number] | null = null;

  /** The fraction of frames whose shared stage runs in the FlowLM worker. */
  get share(): number {
    return this.#share;
  }

  /** Whether the FlowLM worker (`true`) or the other one runs the next frame's shared stage. */
  next(): boolean {
    this.#credit += this.#share;
    if (this.#credit < 1) return false;
    this.#credit -= 1;
    return true;
  }

  /** Records worker `w`'s busy milliseconds so far (0: the FlowLM worker). */
  served(w: 0 | 1, ms: number): void {
    this.#served[w] = ms;
  }

  /** Counts a decoded frame; every {@link WINDOW} frames, moves the share toward the less busy worker. */
  frame(): void {
    if (this.#windowStart === null) this.#windowStart = [...this.#served];
    if (++this.#frames % WINDOW !== 0) return;
    const [a, b] = [this.#served[0] - this.#windowStart[0], this.#served[1] - this.#windowStart[1]];
    this.#windowStart = [...this.#served];
    if (a > b * (1 + TOLERANCE)) this.#share = Math.max(0, this.#share - SHARE_STEP);
    else if (b > a * (1 + TOLERANCE)) this.#share = Math.min(1, this.#share + SHARE_STEP);
  }
}
