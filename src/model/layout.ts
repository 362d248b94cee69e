/**
 * The tensor layout a config implies: every tensor name and shape of the reference's `TTSModel.state_dict()`
 * (spec §6), in state-dict order, and the check of a weights file against it (the reference loads with
 * `strict=True`: no missing, no extra tensor, exact shapes).
 *
 * @module
 */
import { InvalidWeightsError } from "../errors.ts";
import type { PocketTtsConfig } from "./config.ts";
import type { DType } from "./safetensors.ts";

/** What kind of parameter a tensor is (decides how synthetic weights initialise it). */
export type TensorRole =
  | "linear" // 2-D weight [out, in]
  | "conv" // Conv1d weight [out, in/groups, k]
  | "convtr" // ConvTranspose1d weight [in, out/groups, K]
  | "bias"
  | "norm_weight" // LayerNorm gain
  | "embedding" // text table, BOS vectors
  | "latent_stat" // emb_mean / emb_std
  | "rms_alpha" // timestep-embedder norm gain
  | "layer_scale"
  | "freqs"; // timestep frequencies (a buffer)

/** One tensor the model expects. */
export interface ExpectedTensor {
  /** Tensor name (module path). */
  readonly name: string;
  /** Shape. */
  readonly shape: readonly number[];
  /** Parameter kind. */
  readonly role: TensorRole;
  /**
   * For weights: the number of inputs that reach one output (Linear `in`, Conv1d `in/groups · k`, ConvTranspose1d
   * `in/groups · K/S`). 0 for other tensors.
   */
  readonly fanIn: number;
}

/** Size of the sinusoidal timestep embedding fed to the flow head's time MLPs (upstream constant). */
export const TIMESTEP_EMBEDDING_SIZE = 256;

/** Every tensor the model described by `config` has, in state-dict order. */
export function expectedTensors(config: PocketTtsConfig): ExpectedTensor[] {
  const out: ExpectedTensor[] = [];
  const add = (name: string, shape: number[], role: TensorRole, fanIn = 0) =>
    out.push({ name, shape: Object.freeze(shape), role, fanIn });
  const linear = (name: string, outF: number, inF: number, bias: boolean) => {
    add(`${name}.weight`, [outF, inF], "linear", inF);
    if (bias) add(`${name}.bias`, [outF], "bias");
  };
  const conv = (name: string, outC: number, inC: number, k: number, bias = true, groups = 1) => {
    add(`${name}.weight`, [outC, inC / groups, k], "conv", (inC / groups) * k);
    if (bias) add(`${name}.bias`, [outC], "bias");
  };
  const convtr = (name: string, inC: number, outC: number, k: number, stride: number, bias = true, groups = 1) => {
    add(`${name}.weight`, [inC, outC / groups, k], "convtr", (inC / groups) * (k / stride));
    if (bias) add(`${name}.bias`, [outC], "bias");
  };
  const norm = (name: string, n: number) => {
    add(`${name}.weight`, [n], "norm_weight");
    add(`${name}.bias`, [n], "bias");
  };
  const transformerLayer = (p: string, d: number, ff: number, layerScale: boolean) => {
    linear(`${p}.self_attn.in_proj`, 3 * d, d, false);
    linear(`${p}.self_attn.out_proj`, d, d, false);
    norm(`${p}.norm1`, d);
    norm(`${p}.norm2`, d);
    linear(`${p}.linear1`, ff, d, false);
    linear(`${p}.linear2`, d, ff, false);
    if (layerScale) {
      add(`${p}.layer_scale_1.scale`, [d], "layer_scale");
      add(`${p}.layer_scale_2.scale`, [d], "layer_scale");
    }
  };

  const fl = config.flow_lm;
  const mm = config.mimi;
  const sn = mm.seanet;
  const d = fl.transformer.d_model;
  const latent = mm.quantizer.dimension;
  const fd = fl.flow.dim;

  // FlowLM: own vectors and buffers, text table
  add("flow_lm.bos_emb", [latent], "embedding");
  if (fl.insert_bos_before_voice) add("flow_lm.bos_before_voice", [1, 1, d], "embedding");
  const inner = mm.inner_dim ?? sn.dimension;
  add("flow_lm.speaker_proj_weight", [d, inner], "linear", inner);
  add("flow_lm.emb_std", [latent], "latent_stat");
  add("flow_lm.emb_mean", [latent], "latent_stat");
  add("flow_lm.conditioner.embed.weight", [fl.lookup_table.n_bins + 1, fl.lookup_table.dim], "embedding");
  // flow head (SimpleMLPAdaLN with two timestep embedders)
  const fn = "flow_lm.flow_net";
  for (const i of [0, 1]) {
    add(`${fn}.time_embed.${i}.freqs`, [TIMESTEP_EMBEDDING_SIZE / 2], "freqs");
    linear(`${fn}.time_embed.${i}.mlp.0`, fd, TIMESTEP_EMBEDDING_SIZE, true);
    linear(`${fn}.time_embed.${i}.mlp.2`, fd, fd, true);
    add(`${fn}.time_embed.${i}.mlp.3.alpha`, [fd], "rms_alpha");
  }
  linear(`${fn}.cond_embed`, fd, d, true);
  linear(`${fn}.input_proj`, fd, latent, true);
  for (let i = 0; i < fl.flow.depth; i++) {
    const r = `${fn}.res_blocks.${i}`;
    norm(`${r}.in_ln`, fd);
    linear(`${r}.mlp.0`, fd, fd, true);
    linear(`${r}.mlp.2`, fd, fd, true);
    linear(`${r}.adaLN_modulation.1`, 3 * fd, fd, true);
  }
  linear(`${fn}.final_layer.linear`, latent, fd, true);
  linear(`${fn}.final_layer.adaLN_modulation.1`, 2 * fd, fd, true);
  // backbone
  linear("flow_lm.input_linear", d, latent, false);
  const ff = Math.trunc(d * fl.transformer.hidden_scale);
  for (let i = 0; i < fl.transformer.num_layers; i++) transformerLayer(`flow_lm.transformer.layers.${i}`, d, ff, false);
  norm("flow_lm.out_norm", d);
  linear("flow_lm.out_eos", 1, d, true);

  // Mimi SEANet encoder: ratios reversed; modules are numbered including the parameter-free ELUs.
  const resBlock = (p: string, dim: number) => {
    const hidden = Math.floor(dim / sn.compress);
    conv(`${p}.block.1.conv`, hidden, dim, sn.residual_kernel_size);
    conv(`${p}.block.3.conv`, dim, hidden, 1);
  };
  {
    let idx = 0;
    let ch = sn.n_filters;
    conv(`mimi.encoder.model.${idx++}.conv`, ch, sn.channels, sn.kernel_size);
    for (const r of [...sn.ratios].reverse()) {
      for (let j = 0; j < sn.n_residual_layers; j++) resBlock(`mimi.encoder.model.${idx++}`, ch);
      idx++; // ELU
      conv(`mimi.encoder.model.${idx++}.conv`, 2 * ch, ch, 2 * r);
      ch *= 2;
    }
    idx++; // ELU
    conv(`mimi.encoder.model.${idx}.conv`, sn.dimension, ch, sn.last_kernel_size);
  }
  // Mimi SEANet decoder
  {
    let idx = 0;
    let ch = sn.n_filters * 2 ** sn.ratios.length;
    conv(`mimi.decoder.model.${idx++}.conv`, ch, sn.dimension, sn.kernel_size);
    for (const r of sn.ratios) {
      idx++; // ELU
      convtr(`mimi.decoder.model.${idx++}.convtr`, ch, Math.floor(ch / 2), 2 * r, r);
      ch = Math.floor(ch / 2);
      for (let j = 0; j < sn.n_residual_layers; j++) resBlock(`mimi.decoder.model.${idx++}`, ch);
    }
    idx++; // ELU
    conv(`mimi.decoder.model.${idx}.conv`, sn.channels, ch, sn.last_kernel_size);
  }
  // Mimi transformers (projections only where widths differ)
  const mt = mm.transformer;
  for (const side of ["encoder_transformer", "decoder_transformer"]) {
    for (let i = 0; i < mt.num_layers; i++) {
      transformerLayer(`mimi.${side}.transformer.layers.${i}`, mt.d_model, mt.dim_feedforward, mt.layer_scale !== null);
    }
    if (mt.input_dimension !== mt.d_model) linear(`mimi.${side}.input_proj`, mt.d_model, mt.input_dimension, false);
    mt.output_dimensions.forEach((od, k) => {
      if (od !== mt.d_model) linear(`mimi.${side}.output_projs.${k}`, od, mt.d_model, false);
    });
  }
  conv("mimi.quantizer.output_proj", mm.quantizer.output_dimension, mm.quantizer.dimension, 1, false);
  // down/up-sampling between the SEANet rate and the latent rate
  const stride = mm.sample_rate / sn.ratios.reduce((a, b) => a * b, 1) / mm.frame_rate;
  if (stride !== 1) {
    conv("mimi.downsample.conv.conv", inner, sn.dimension, 2 * stride, false);
    convtr(
      "mimi.upsample.convtr.convtr",
      mm.outer_dim ?? sn.dimension,
      sn.dimension,
      2 * stride,
      stride,
      false,
      sn.dimension,
    );
  }
  return out;
}

/** Name of the SEANet decoder's output conv weight (its synthetic init is scaled down). */
export function decoderOutputConvName(config: PocketTtsConfig): string {
  const sn = config.mimi.seanet;
  const idx = 1 + sn.ratios.length * (2 + sn.n_residual_layers) + 1;
  return `mimi.decoder.model.${idx}.conv.weight`;
}

/** A tensor as found in a weights file (name, dtype, shape). */
export interface FoundTensor {
  /** Tensor name. */
  readonly name: string;
  /** Element type. */
  readonly dtype: DType;
  /** Shape. */
  readonly shape: readonly number[];
}

/** One disagreement between a weights file and the config. */
export interface WeightProblem {
  /** The tensor concerned. */
  tensor: string;
  /** Kind of disagreement. */
  kind: "missing" | "unexpected" | "shape" | "dtype";
  /** A sentence naming the tensor, the expected and the actual value. */
  message: string;
}

const WEIGHT_DTYPES: readonly DType[] = ["BF16", "F16", "F32"];

function fmt(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/** Every disagreement between the tensors of a weights file and what `config` expects (empty when they match). */
export function checkTensors(config: PocketTtsConfig, found: Iterable<FoundTensor>): WeightProblem[] {
  const expected = new Map(expectedTensors(config).map((t) => [t.name, t]));
  const problems: WeightProblem[] = [];
  const seen = new Set<string>();
  for (const t of found) {
    seen.add(t.name);
    const e = expected.get(t.name);
    if (!e) {
      problems.push({
        tensor: t.name,
        kind: "unexpected",
        message: `unexpected tensor "${t.name}" ${fmt(t.shape)}: not part of the model this config describes`,
      });
      continue;
    }
    if (t.shape.length !== e.shape.length || t.shape.some((n, i) => n !== e.shape[i])) {
      problems.push({
        tensor: t.name,
        kind: "shape",
        message: `tensor "${t.name}": expected shape ${fmt(e.shape)} (from the config), got ${fmt(t.shape)}`,
      });
    }
    if (!WEIGHT_DTYPES.includes(t.dtype)) {
      problems.push({
        tensor: t.name,
        kind: "dtype",
        message: `tensor "${t.name}": dtype ${t.dtype} is not a weight type (expected ${WEIGHT_DTYPES.join(", ")})`,
      });
    }
  }
  for (const e of expected.values()) {
    if (!seen.has(e.name)) {
      problems.push({
        tensor: e.name,
        kind: "missing",
        message: `missing tensor "${e.name}" (expected shape ${fmt(e.shape)})`,
      });
    }
  }
  return problems;
}

/**
 * Check the tensors of a weights file against the config, like the reference's strict load.
 *
 * @param config the validated config
 * @param found the file's tensors
 * @param file the file name, for the message
 * @throws {InvalidWeightsError} for the first problem (naming tensor, expected and actual), with a count of others
 */
export function validateTensors(config: PocketTtsConfig, found: Iterable<FoundTensor>, file?: string): void {
  const problems = checkTensors(config, found);
  if (problems.length === 0) return;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? "s" : ""})` : "";
  throw new InvalidWeightsError(`${file ? `${file}: ` : ""}${problems[0].message}${more}`, {
    tensor: problems[0].tensor,
    file,
  });
}

/** Total number of parameters (elements) the config implies. */
export function parameterCount(config: PocketTtsConfig): number {
  return expectedTensors(config).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
}
