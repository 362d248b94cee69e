//! The Mimi decoder (spec §4.2): latent frames (12.5 Hz) → audio, streaming.
//!
//! Per frame: optional de-normalisation `z = x·emb_std + emb_mean` → `quantizer.output_proj` (1×1 conv,
//! latent → outer) → depthwise ×`stride` ConvTranspose upsample (closed form) → decoder transformer (200 Hz) →
//! SEANet decoder → `stride · hop` samples.
//!
//! [`MimiDecoder`] holds the packed weights (taken once from the store); [`MimiState`] holds one stream's carried
//! state and every scratch buffer, sized at creation for up to `max_frames` frames per call, so decoding never
//! allocates. Calls with more frames are split into chunks of `max_frames`.

use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{CoreError, Result};
use crate::kernels::conv::upsample_depthwise_2s;
use crate::kernels::linear::Linear;
use crate::memory::zeros;
use crate::mimi_transformer::{MimiTransformer, TransformerConfig, TransformerState};
use crate::params::Params;
use crate::seanet::{OpKind, SeanetConfig, SeanetDecoder, SeanetState, op_shapes};
use crate::taps::{Taps, switch_taps};
use crate::weights::WeightStore;

static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// Tensor name prefixes of the decoder transformer and the SEANet decoder.
const TRANSFORMER: &str = "mimi.decoder_transformer.transformer";
const SEANET: &str = "mimi.decoder";

/// One stage of the decoder's pipeline, from the config alone: its name, its work and the size of its output.
#[derive(Clone, Debug)]
pub struct StagePlan {
    /// `input` (de-normalisation, quantizer projection, upsample), `transformer.{i}.attn` / `.ff` (the two halves
    /// of layer `i`), or `seanet.{idx}.{conv0|up|res|last}` (module `idx` of the SEANet decoder).
    pub name: String,
    /// Multiply-accumulates per frame (projections and convolutions; attention scores excluded).
    pub macs: usize,
    /// Values the stage outputs per frame (the last stage: the frame's audio samples).
    pub out_len: usize,
    /// The narrowest matrix dimension of its GEMMs (channels, hidden width or head size): narrow GEMMs reach a
    /// lower multiply-accumulate rate, so a cost estimate needs it beside `macs`.
    pub width: usize,
}

/// The hyper-parameters of a decoder and its pipeline of stages.
struct Plan {
    latent_dim: usize,
    dim: usize,
    stride: usize,
    tcfg: TransformerConfig,
    scfg: SeanetConfig,
    stages: Vec<StagePlan>,
}

impl Plan {
    fn from_params(p: &Params) -> Result<Self> {
        let latent_dim = p.usize("latent_dim")?;
        let dim = p.usize("outer_dim")?;
        let stride = p.usize("stride")?;
        let tcfg = TransformerConfig::from_params(p)?;
        let scfg = SeanetConfig::from_params(p)?;
        if latent_dim == 0 || latent_dim > 1 << 14 || stride == 0 || stride > 1 << 10 {
            return Err(CoreError::new("latent_dim and stride must be positive and reasonably small"));
        }
        if dim != tcfg.d_model || dim != scfg.dimension {
            return Err(CoreError::new(format!(
                "unsupported Mimi widths: outer_dim {dim}, transformer d_model {}, seanet dimension {} must be equal \
                 (no projections)",
                tcfg.d_model, scfg.dimension
            )));
        }
        let ops = op_shapes(&scfg)?;
        let mut stages = vec![StagePlan {
            name: "input".into(),
            macs: latent_dim * dim + 2 * stride * dim,
            out_len: stride * dim,
            width: latent_dim.min(dim),
        }];
        for h in 0..2 * tcfg.num_layers {
            let attn = h % 2 == 0;
            stages.push(StagePlan {
                name: format!("transformer.{}.{}", h / 2, if attn { "attn" } else { "ff" }),
                macs: stride * MimiTransformer::half_macs(&tcfg, h),
                out_len: stride * dim,
                width: if attn { tcfg.d_model / tcfg.num_heads } else { dim.min(tcfg.dim_feedforward) },
            });
        }
        for o in &ops {
            let kind = match o.kind {
                OpKind::Conv0 => "conv0",
                OpKind::Up { .. } => "up",
                OpKind::Res { .. } => "res",
                OpKind::Last => "last",
            };
            let width = match o.kind {
                OpKind::Res { .. } => o.c_out / scfg.compress,
                _ => o.c_in.min(o.c_out),
            };
            stages.push(StagePlan {
                name: format!("seanet.{}.{kind}", o.idx),
                macs: stride * o.macs(&scfg),
                out_len: stride * o.rows_out * o.c_out,
                width,
            });
        }
        Ok(Self { latent_dim, dim, stride, tcfg, scfg, stages })
    }

    /// Index of the first SEANet stage (after the input stage and the transformer's half-layers).
    fn seanet0(&self) -> usize {
        1 + 2 * self.tcfg.num_layers
    }

    /// The plan and the part `stages=FROM,TO` of `params` (the whole decoder without it).
    fn part(params: &str) -> Result<(Self, usize, usize)> {
        let p = Params::parse(params)?;
        let plan = Self::from_params(&p)?;
        let n = plan.stages.len();
        if !p.has("stages") {
            return Ok((plan, 0, n));
        }
        match p.usize_list("stages")?[..] {
            [a, b] if a < b && b <= n => Ok((plan, a, b)),
            _ => Err(CoreError::new(format!("stages must be FROM,TO with FROM < TO ≤ {n}"))),
        }
    }

    /// The transformer half-layers and SEANet ops of the stages `from..to`.
    fn split(&self, from: usize, to: usize) -> (Range<usize>, Range<usize>) {
        let s0 = self.seanet0();
        let h0 = from.max(1) - 1;
        (h0..(to.min(s0).max(1) - 1).max(h0), from.max(s0) - s0..to.max(s0) - s0)
    }

    /// Every tensor the stages `from..to` take, with its shape.
    fn tensors(&self, from: usize, to: usize) -> Vec<(String, Vec<usize>)> {
        let (halves, ops) = self.split(from, to);
        let mut v = Vec::new();
        if from == 0 {
            v.push(("mimi.quantizer.output_proj.weight".to_string(), vec![self.dim, self.latent_dim, 1]));
            v.push(("mimi.upsample.convtr.convtr.weight".to_string(), vec![self.dim, 1, 2 * self.stride]));
        }
        v.extend(crate::mimi_transformer::expected_half_tensors(TRANSFORMER, &self.tcfg, halves));
        v.extend(crate::seanet::expected_op_tensors(SEANET, &self.scfg, ops));
        v
    }
}

/// The decoder's pipeline for `params` (see [`MimiDecoder::from_store`]): one `name macs out_len width` line per stage,
/// in order, then an empty line and the names of the tensors the part `stages` (default: all) takes, one per line.
/// What a caller needs to choose where to split the decoder between threads, and to load only a part's tensors.
pub fn plan_text(params: &str) -> Result<String> {
    let (plan, from, to) = Plan::part(params)?;
    let mut lines: Vec<String> = plan.stages.iter().map(|s| format!("{} {} {} {}", s.name, s.macs, s.out_len, s.width)).collect();
    lines.push(String::new());
    lines.extend(plan.tensors(from, to).into_iter().map(|(name, _)| name));
    Ok(lines.join("\n"))
}

/// The decoder's weights and dimensions: all its stages, or a contiguous run of them (`stages=FROM,TO`), so that
/// two threads can each run part of every frame, each holding only its own stages' weights and state. The parts
/// chained run exactly the whole decoder's arithmetic, so their audio is bit-identical to it.
pub struct MimiDecoder {
    id: u32,
    pub latent_dim: usize,
    /// Channels after the quantizer projection (= upsample, transformer and SEANet input width).
    pub dim: usize,
    /// Upsample factor between the latent rate and the SEANet rate.
    pub stride: usize,
    /// The stages this part runs (indices into the plan).
    pub from: usize,
    pub to: usize,
    /// Values in and out per frame: latents (`latent_dim`) in for the first part, audio out for the last; between
    /// parts the activation at the cut.
    pub in_len: usize,
    pub out_len: usize,
    /// Quantizer projection and the upsample weight transposed to `[2·stride × dim]` (when this part has them).
    input: Option<(Linear, Vec<f32>)>,
    transformer: MimiTransformer,
    seanet: SeanetDecoder,
    /// Values per SEANet input row of this part's input activation.
    in_row: usize,
    /// Index of the first SEANet stage; taps the transformer part records.
    seanet0: usize,
    transformer_taps: usize,
    macs: usize,
    /// `(mean, std)` when inputs are normalised latents.
    latent_stats: Option<(Vec<f32>, Vec<f32>)>,
    /// Tap names and channel counts, one `name channels` line per tap, in tap order.
    pub tap_names: String,
    tap_shapes: Vec<(usize, usize)>,
}

impl MimiDecoder {
    /// Builds the decoder (or the part `stages=FROM,TO` of it: stages `FROM..TO`) from the `mimi.*` tensors in the store, taking only
    /// the tensors of its stages. Parameters (`key=value`, see the TS wrapper): `latent_dim outer_dim stride`, the
    /// transformer's (`d_model num_heads num_layers dim_feedforward context max_period layer_scale`), SEANet's
    /// (`dimension channels n_filters ratios kernel_size residual_kernel_size last_kernel_size n_residual_layers
    /// dilation_base compress`) and optionally `stages`.
    pub fn from_store(s: &mut WeightStore, params: &str) -> Result<Self> {
        let (plan, from, to) = Plan::part(params)?;
        let Plan { latent_dim, dim, stride, .. } = plan;
        let s0 = plan.seanet0();
        let (halves, ops) = plan.split(from, to);
        let out_tap = from < s0 && s0 <= to; // the part holding the transformer's last stage (or input, 0 layers)
        // Check every tensor before taking any, so a checkpoint that does not fit leaves the store untouched.
        let expected = plan.tensors(from, to);
        s.check_shapes(&expected)?;
        let mut names: Vec<String> = Vec::new();
        let mut shapes = Vec::new();
        let input = if from == 0 {
            let q = s.take("mimi.quantizer.output_proj.weight", &[dim, latent_dim, 1])?;
            let quantizer = Linear::new(&q.data, None, dim, latent_dim);
            let k = 2 * stride;
            let up = s.take("mimi.upsample.convtr.convtr.weight", &[dim, 1, k])?;
            let mut upsample_wt = zeros(k * dim)?;
            for c in 0..dim {
                for j in 0..k {
                    upsample_wt[j * dim + c] = up.data[c * k + j];
                }
            }
            names.extend(["quantizer_in".into(), "quantizer_out".into(), "upsample_out".into()]);
            shapes.extend([(1, latent_dim), (1, dim), (stride, dim)]);
            Some((quantizer, upsample_wt))
        } else {
            None
        };
        let transformer = MimiTransformer::from_store_halves(s, TRANSFORMER, plan.tcfg.clone(), halves, out_tap, true)?;
        for n in transformer.tap_names("dec_tr") {
            names.push(n);
            shapes.push((stride, dim));
        }
        let seanet = SeanetDecoder::from_store_ops(s, SEANET, plan.scfg.clone(), ops)?;
        names.extend(seanet.tap_names.iter().cloned());
        shapes.extend(seanet.tap_shapes(stride));
        // "name channels" per line: enough for TS to shape each tap.
        let names: Vec<String> = names.iter().zip(&shapes).map(|(n, &(_, c))| format!("{n} {c}")).collect();
        let in_len = if from == 0 { latent_dim } else { plan.stages[from - 1].out_len };
        Ok(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            latent_dim,
            dim,
            stride,
            from,
            to,
            in_len,
            out_len: plan.stages[to - 1].out_len,
            input,
            transformer_taps: transformer.tap_names("").len(),
            transformer,
            seanet,
            in_row: if from < s0 { dim } else { in_len / stride },
            seanet0: s0,
            macs: plan.stages[from..to].iter().map(|s| s.macs).sum(),
            latent_stats: None,
            tap_names: names.join("\n"),
            tap_shapes: shapes,
        })
    }

    /// Plans the packing of the big weights (the transformer's projections, SEANet's convolutions) of the part
    /// `params` describes, so each is packed as it is added and the store never holds them all in their file form
    /// beside the packed ones ([`WeightStore::plan`]); [`Self::from_store`] then takes them packed.
    pub fn plan(s: &mut WeightStore, params: &str) -> Result<()> {
        let (plan, from, to) = Plan::part(params)?;
        let (halves, ops) = plan.split(from, to);
        MimiTransformer::plan_halves(s, TRANSFORMER, &plan.tcfg, halves, true);
        SeanetDecoder::plan_ops(s, SEANET, &plan.scfg, ops)
    }

    /// Makes [`Self::decode`] take normalised latents, de-normalised as `x·std + mean` (each `[latent_dim]`).
    pub fn set_latent_stats(&mut self, mean: &[f32], std: &[f32]) -> Result<()> {
        if mean.len() != self.latent_dim || std.len() != self.latent_dim {
            return Err(CoreError::new(format!("latent stats must have {} values", self.latent_dim)));
        }
        self.latent_stats = Some((mean.to_vec(), std.to_vec()));
        Ok(())
    }

    /// Values out per frame: audio samples (all channels) for the last part, the activation at the cut otherwise.
    pub fn frame_samples(&self) -> usize {
        self.out_len
    }

    /// Bytes of packed weights.
    pub fn weight_bytes(&self) -> usize {
        let input = self.input.as_ref().map_or(0, |(q, up)| q.weight_bytes() + up.len() * 4);
        input + self.transformer.weight_bytes() + self.seanet.weight_bytes()
    }

    /// Multiply-accumulates per frame in this part's GEMMs and convolutions (for throughput figures; attention
    /// excluded).
    pub fn macs_per_frame(&self) -> usize {
        self.macs
    }

    /// Decodes `n_frames` inputs (`[n_frames × in_len]`: latents for the first part) into `out`
    /// (`[n_frames × out_len]`: audio for the last part).
    pub fn decode(&self, st: &mut MimiState, input: &[f32], n_frames: usize, out: &mut [f32]) -> Result<()> {
        if st.decoder_id != self.id {
            return Err(CoreError::new("this Mimi state belongs to another decoder"));
        }
        let (il, ol) = (self.in_len, self.out_len);
        if input.len() < n_frames * il || out.len() < n_frames * ol {
            return Err(CoreError::new("input or output buffer too small"));
        }
        let mut done = 0;
        while done < n_frames {
            let f = st.max_frames.min(n_frames - done);
            self.decode_chunk(st, &input[done * il..(done + f) * il], f, &mut out[done * ol..(done + f) * ol]);
            done += f;
        }
        Ok(())
    }

    fn decode_chunk(&self, st: &mut MimiState, input: &[f32], f: usize, out: &mut [f32]) {
        let (ld, d, s) = (self.latent_dim, self.dim, self.stride);
        let t = f * s;
        let mut taps = st.taps.as_mut();
        let mut tap = 0;
        if let Some((quantizer, upsample_wt)) = &self.input {
            let z = &mut st.z[..f * ld];
            match &self.latent_stats {
                Some((mean, std)) => {
                    for (i, (zv, &x)) in z.iter_mut().zip(input).enumerate() {
                        *zv = x * std[i % ld] + mean[i % ld];
                    }
                }
                None => z.copy_from_slice(input),
            }
            if let Some(tp) = taps.as_deref_mut() {
                tp.put(0, z);
            }
            quantizer.forward(z, &mut st.q, f);
            if let Some(tp) = taps.as_deref_mut() {
                tp.put(1, &st.q[..f * d]);
            }
            let x = st.seanet.input_mut(t * d);
            upsample_depthwise_2s(&st.q, f, d, upsample_wt, s, &mut st.up_prev, x);
            if let Some(tp) = taps.as_deref_mut() {
                tp.put(2, x);
            }
            tap = 3;
        } else {
            st.seanet.input_mut(f * self.in_len).copy_from_slice(input);
        }
        if self.from < self.seanet0 {
            let x = st.seanet.input_mut(t * d);
            self.transformer.forward(&mut st.transformer, x, t, taps.as_deref_mut(), tap);
            tap += self.transformer_taps;
        }
        if self.seanet.is_empty() {
            out.copy_from_slice(&st.seanet.input_mut(out.len())[..]);
        } else {
            self.seanet.forward(&mut st.seanet, t, out, taps, tap);
        }
        st.position += t;
    }
}

/// One stream's state and scratch for one decoder (or part).
pub struct MimiState {
    decoder_id: u32,
    pub max_frames: usize,
    z: Vec<f32>,
    q: Vec<f32>,
    up_prev: Vec<f32>,
    transformer: TransformerState,
    seanet: SeanetState,
    position: usize,
    taps: Option<Taps>,
}

impl MimiState {
    /// A fresh stream for `dec`, decoding up to `max_frames` frames per internal step (1…256).
    pub fn new(dec: &MimiDecoder, max_frames: usize) -> Result<Self> {
        if max_frames == 0 || max_frames > 256 {
            return Err(CoreError::new(format!("max_frames must be 1…256, got {max_frames}")));
        }
        let t = max_frames * dec.stride;
        let has_input = dec.input.is_some();
        Ok(Self {
            decoder_id: dec.id,
            max_frames,
            z: zeros(if has_input { max_frames * dec.latent_dim } else { 0 })?,
            q: zeros(if has_input { max_frames * dec.dim } else { 0 })?,
            up_prev: zeros(if has_input { dec.dim } else { 0 })?,
            transformer: TransformerState::new(&dec.transformer, t)?,
            seanet: SeanetState::new(&dec.seanet, t, dec.in_row)?,
            position: 0,
            taps: None,
        })
    }

    /// Back to the start of a stream (position 0, zero carried state).
    pub fn reset(&mut self) {
        self.up_prev.fill(0.0);
        self.transformer.reset();
        self.seanet.reset();
        self.position = 0;
    }

    /// Enables (allocating the buffers) or disables recording of intermediate outputs.
    pub fn set_taps(&mut self, dec: &MimiDecoder, on: bool) -> Result<()> {
        switch_taps(&mut self.taps, (dec.id, self.decoder_id), "Mimi decoder", &dec.tap_shapes, self.max_frames, on)
    }

    /// Tap `id` of the last call (time-major), if taps are on.
    pub fn tap(&self, id: usize) -> Option<&[f32]> {
        self.taps.as_ref()?.get(id)
    }

    /// Absolute 200 Hz position of the next step.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Bytes held (state and scratch).
    pub fn bytes(&self) -> usize {
        (self.z.len() + self.q.len() + self.up_prev.len()) * 4 + self.transformer.bytes() + self.seanet.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{max_rel_diff, random_vec};
    use crate::weights::{DType, Tensor};

    const PARAMS: &str = "latent_dim=4 outer_dim=16 stride=4 d_model=16 num_heads=2 num_layers=2 dim_feedforward=24 \
        context=6 max_period=10000 layer_scale=1 dimension=16 channels=1 n_filters=2 ratios=3,2 kernel_size=5 \
        residual_kernel_size=3 last_kernel_size=3 n_residual_layers=1 dilation_base=2 compress=2";

    /// A store with random tensors of every shape the decoder takes (scaled to keep activations O(1)).
    fn random_store(seed: u32) -> WeightStore {
        let mut s = WeightStore::default();
        let mut n = seed;
        let mut add = |s: &mut WeightStore, name: &str, shape: &[usize], scale: f32| {
            n += 1;
            let len = shape.iter().product();
            let data = random_vec(len, n).iter().map(|v| v * scale).collect();
            s.insert(name, Tensor { shape: shape.to_vec(), data });
        };
        add(&mut s, "mimi.quantizer.output_proj.weight", &[16, 4, 1], 0.5);
        add(&mut s, "mimi.upsample.convtr.convtr.weight", &[16, 1, 8], 0.5);
        for l in 0..2 {
            let p = format!("mimi.decoder_transformer.transformer.layers.{l}");
            add(&mut s, &format!("{p}.self_attn.in_proj.weight"), &[48, 16], 0.3);
            add(&mut s, &format!("{p}.self_attn.out_proj.weight"), &[16, 16], 0.3);
            add(&mut s, &format!("{p}.linear1.weight"), &[24, 16], 0.3);
            add(&mut s, &format!("{p}.linear2.weight"), &[16, 24], 0.3);
            for v in ["norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias", "layer_scale_1.scale"] {
                add(&mut s, &format!("{p}.{v}"), &[16], 1.0);
            }
            add(&mut s, &format!("{p}.layer_scale_2.scale"), &[16], 1.0);
        }
        let conv = |s: &mut WeightStore, add: &mut dyn FnMut(&mut WeightStore, &str, &[usize], f32), name: &str,
                    shape: &[usize]| {
            add(s, &format!("{name}.weight"), shape, 0.4);
            let b = if name.contains("convtr") { shape[1] } else { shape[0] };
            add(s, &format!("{name}.bias"), &[b], 0.1);
        };
        conv(&mut s, &mut add, "mimi.decoder.model.0.conv", &[8, 16, 5]);
        conv(&mut s, &mut add, "mimi.decoder.model.2.convtr", &[8, 4, 6]);
        conv(&mut s, &mut add, "mimi.decoder.model.3.block.1.conv", &[2, 4, 3]);
        conv(&mut s, &mut add, "mimi.decoder.model.3.block.3.conv", &[4, 2, 1]);
        conv(&mut s, &mut add, "mimi.decoder.model.5.convtr", &[4, 2, 4]);
        conv(&mut s, &mut add, "mimi.decoder.model.6.block.1.conv", &[1, 2, 3]);
        conv(&mut s, &mut add, "mimi.decoder.model.6.block.3.conv", &[2, 1, 1]);
        conv(&mut s, &mut add, "mimi.decoder.model.8.conv", &[1, 2, 3]);
        s
    }

    #[test]
    fn streaming_equals_all_at_once_and_reset_repeats() {
        let dec = MimiDecoder::from_store(&mut random_store(1), PARAMS).unwrap();
        assert_eq!(dec.frame_samples(), 24);
        let frames = 7; // the window (6 steps) is smaller than one frame (4 steps) after the second frame
        let lat = random_vec(frames * 4, 99);
        let mut one = MimiState::new(&dec, 1).unwrap();
        let mut all = MimiState::new(&dec, frames).unwrap();
        let mut a = vec![0.0; frames * 24];
        let mut b = vec![0.0; frames * 24];
        for f in 0..frames {
            dec.decode(&mut one, &lat[f * 4..], 1, &mut a[f * 24..]).unwrap();
        }
        dec.decode(&mut all, &lat, frames, &mut b).unwrap();
        assert!(a.iter().any(|v| v.abs() > 1e-3));
        assert!(max_rel_diff(&a, &b) < 1e-5, "{}", max_rel_diff(&a, &b));
        assert_eq!(one.position(), frames * 4);
        one.reset();
        let mut c = vec![0.0; frames * 24];
        dec.decode(&mut one, &lat, frames, &mut c).unwrap();
        assert_eq!(a, c);
    }

    /// `decoder`'s output for 7 frames of fixed latents, one frame a call.
    fn decode_frames(decoder: &MimiDecoder) -> Vec<f32> {
        let lat = random_vec(7 * 4, 99);
        let mut out = vec![0.0; 7 * 24];
        let mut st = MimiState::new(decoder, 1).unwrap();
        for f in 0..7 {
            decoder.decode(&mut st, &lat[f * 4..], 1, &mut out[f * 24..]).unwrap();
        }
        out
    }

    #[test]
    fn planned_weights_are_packed_on_arrival_into_the_same_decoder() {
        let want = decode_frames(&MimiDecoder::from_store(&mut random_store(1), PARAMS).unwrap());
        let text = plan_text(PARAMS).unwrap();
        let names: Vec<&str> = text.split_once("\n\n").unwrap().1.lines().collect();
        // Biases before their weights (packed on arrival with them), and after (packed when taken).
        for bias_first in [true, false] {
            let mut source = random_store(1);
            let mut s = WeightStore::default();
            MimiDecoder::plan(&mut s, PARAMS).unwrap();
            let mut order = names.clone();
            order.sort_by_key(|n| n.ends_with(".bias") != bias_first);
            for name in order {
                let shape = source.shape(name).unwrap().to_vec();
                let bytes: Vec<u8> = source.take(name, &shape).unwrap().data.iter().flat_map(|v| v.to_le_bytes()).collect();
                s.add(name, DType::F32, &shape, &bytes).unwrap();
            }
            for w in ["mimi.decoder.model.0.conv.weight", "mimi.decoder_transformer.transformer.layers.1.linear2.weight"] {
                assert_eq!(s.is_packed(w), bias_first || w.contains("linear2"), "{w} packed on arrival");
            }
            let planned = MimiDecoder::from_store(&mut s, PARAMS).unwrap();
            assert_eq!(decode_frames(&planned), want, "bias first: {bias_first}");
            assert!(s.names().is_empty(), "every tensor taken: {:?}", s.names());
        }
    }

    #[test]
    fn split_parts_chained_equal_the_whole_decoder_bit_for_bit() {
        let whole = MimiDecoder::from_store(&mut random_store(1), PARAMS).unwrap();
        let text = plan_text(PARAMS).unwrap();
        let (plan, tensors) = text.split_once("\n\n").unwrap();
        let n = plan.lines().count();
        assert_eq!(tensors.lines().count(), 2 + 2 * 10 + 8 * 2, "{tensors}");
        assert!(tensors.lines().all(|t| random_store(1).contains(t)));
        assert_eq!(n, 1 + 4 + 6, "input, 2 layers × 2 halves, conv0 + 2 × (up + res) + last:\n{plan}");
        assert_eq!(plan.lines().last().unwrap(), "seanet.8.last 144 24 1");
        let total: usize = plan.lines().map(|l| l.split(' ').nth(1).unwrap().parse::<usize>().unwrap()).sum();
        assert_eq!(total, whole.macs_per_frame());
        let frames = 7;
        let lat = random_vec(frames * 4, 99);
        let mut want = vec![0.0; frames * 24];
        let mut st = MimiState::new(&whole, 1).unwrap();
        for f in 0..frames {
            whole.decode(&mut st, &lat[f * 4..], 1, &mut want[f * 24..]).unwrap();
        }
        // Every cut, and a three-way split: each part takes only its own tensors, the rest stay in the store.
        let mut cuts: Vec<Vec<usize>> = (1..n).map(|k| vec![0, k, n]).collect();
        cuts.push(vec![0, 2, 7, n]);
        for cut in cuts {
            let mut store = random_store(1);
            let mut parts = Vec::new();
            for w in cut.windows(2) {
                let params = format!("{PARAMS} stages={},{}", w[0], w[1]);
                let own = plan_text(&params).unwrap().split_once("\n\n").unwrap().1.to_string();
                assert!(own.lines().all(|t| store.contains(t)));
                parts.push(MimiDecoder::from_store(&mut store, &params).unwrap());
                assert!(own.lines().all(|t| !store.contains(t)), "the part takes the tensors it lists");
                // Only the last part takes the output conv.
                assert_eq!(store.contains("mimi.decoder.model.8.conv.weight"), w[1] < n, "cut {cut:?}");
            }
            assert!(!store.contains("mimi.quantizer.output_proj.weight"));
            let bytes: usize = parts.iter().map(MimiDecoder::weight_bytes).sum();
            assert_eq!(bytes, whole.weight_bytes(), "cut {cut:?}");
            let mut states: Vec<MimiState> = parts.iter().map(|p| MimiState::new(p, 1).unwrap()).collect();
            for round in 0..2 {
                let mut got = vec![0.0; frames * 24];
                for f in 0..frames {
                    let mut x = lat[f * 4..(f + 1) * 4].to_vec();
                    for (p, st) in parts.iter().zip(&mut states) {
                        assert_eq!(p.in_len, x.len());
                        let mut y = vec![0.0; p.out_len];
                        p.decode(st, &x, 1, &mut y).unwrap();
                        x = y;
                    }
                    got[f * 24..(f + 1) * 24].copy_from_slice(&x);
                }
                assert_eq!(got, want, "cut {cut:?} round {round}");
                states.iter_mut().for_each(MimiState::reset);
            }
        }
        let mut store = random_store(1);
        for bad in ["stages=3,3", "stages=0,12", "stages=2"] {
            let e = MimiDecoder::from_store(&mut store, &format!("{PARAMS} {bad}")).err().unwrap();
            assert!(e.0.contains("stages must be FROM,TO"), "{bad}: {}", e.0);
        }
    }

    #[test]
    fn errors_not_panics() {
        let e = MimiDecoder::from_store(&mut random_store(1), &PARAMS.replace("outer_dim=16", "outer_dim=8")).err();
        assert!(e.unwrap().0.contains("outer_dim 8"));
        let e = MimiDecoder::from_store(&mut random_store(1), &PARAMS.replace("n_filters=2", "n_filters=4")).err();
        assert!(e.unwrap().0.contains("mimi.decoder.model.0.conv.weight"));
        let e = MimiDecoder::from_store(&mut WeightStore::default(), "latent_dim=4").err();
        assert!(e.unwrap().0.contains("missing parameter"));
        // A checkpoint that does not fit is rejected before anything is taken.
        let mut s = random_store(1);
        s.insert("mimi.decoder.model.8.conv.weight", Tensor { shape: vec![1, 2, 5], data: vec![0.0; 10] });
        let e = MimiDecoder::from_store(&mut s, PARAMS).err().unwrap();
        assert!(e.0.contains("'mimi.decoder.model.8.conv.weight' has shape [1, 2, 5], expected [1, 2, 3]"), "{}", e.0);
        assert!(s.contains("mimi.quantizer.output_proj.weight"));
        let d1 = MimiDecoder::from_store(&mut random_store(1), PARAMS).unwrap();
        let d2 = MimiDecoder::from_store(&mut random_store(2), PARAMS).unwrap();
        let mut st = MimiState::new(&d1, 1).unwrap();
        let mut out = vec![0.0; 24];
        assert!(d2.decode(&mut st, &[0.0; 4], 1, &mut out).is_err());
        assert!(MimiState::new(&d1, 0).is_err());
    }
}
