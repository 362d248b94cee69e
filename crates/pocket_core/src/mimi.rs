//! The Mimi decoder (spec §4.2): latent frames (12.5 Hz) → audio, streaming.
//!
//! Per frame: optional de-normalisation `z = x·emb_std + emb_mean` → `quantizer.output_proj` (1×1 conv,
//! latent → outer) → depthwise ×`stride` ConvTranspose upsample (closed form) → decoder transformer (200 Hz) →
//! SEANet decoder → `stride · hop` samples.
//!
//! [`MimiDecoder`] holds the packed weights (taken once from the store); [`MimiState`] holds one stream's carried
//! state and every scratch buffer, sized at creation for up to `max_frames` frames per call, so decoding never
//! allocates. Calls with more frames are split into chunks of `max_frames`.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{CoreError, Result};
use crate::kernels::conv::upsample_depthwise_2s;
use crate::kernels::linear::Linear;
use crate::memory::zeros;
use crate::mimi_transformer::{MimiTransformer, TransformerConfig, TransformerState};
use crate::params::Params;
use crate::seanet::{SeanetConfig, SeanetDecoder, SeanetState};
use crate::taps::{Taps, switch_taps};
use crate::weights::WeightStore;

static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// Tensor name prefixes of the decoder transformer and the SEANet decoder.
const TRANSFORMER: &str = "mimi.decoder_transformer.transformer";
const SEANET: &str = "mimi.decoder";

/// The whole decoder's weights and dimensions.
pub struct MimiDecoder {
    id: u32,
    pub latent_dim: usize,
    /// Channels after the quantizer projection (= upsample, transformer and SEANet input width).
    pub dim: usize,
    /// Upsample factor between the latent rate and the SEANet rate.
    pub stride: usize,
    quantizer: Linear,
    /// Upsample weight transposed to `[2·stride × dim]`.
    upsample_wt: Vec<f32>,
    transformer: MimiTransformer,
    seanet: SeanetDecoder,
    /// `(mean, std)` when inputs are normalised latents.
    latent_stats: Option<(Vec<f32>, Vec<f32>)>,
    /// Tap names and channel counts, one `name channels` line per tap, in tap order.
    pub tap_names: String,
    tap_shapes: Vec<(usize, usize)>,
}

impl MimiDecoder {
    /// Builds the decoder from the `mimi.*` tensors in the store. Parameters (`key=value`, see the TS wrapper):
    /// `latent_dim outer_dim stride`, the transformer's (`d_model num_heads num_layers dim_feedforward context
    /// max_period layer_scale`) and SEANet's (`dimension channels n_filters ratios kernel_size residual_kernel_size
    /// last_kernel_size n_residual_layers dilation_base compress`).
    pub fn from_store(s: &mut WeightStore, params: &str) -> Result<Self> {
        let p = Params::parse(params)?;
        let latent_dim = p.usize("latent_dim")?;
        let dim = p.usize("outer_dim")?;
        let stride = p.usize("stride")?;
        let tcfg = TransformerConfig::from_params(&p)?;
        let scfg = SeanetConfig::from_params(&p)?;
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
        // Check every tensor before taking any, so a checkpoint that does not fit leaves the store untouched.
        let mut expected = vec![
            ("mimi.quantizer.output_proj.weight".to_string(), vec![dim, latent_dim, 1]),
            ("mimi.upsample.convtr.convtr.weight".to_string(), vec![dim, 1, 2 * stride]),
        ];
        expected.extend(crate::mimi_transformer::expected_tensors(TRANSFORMER, &tcfg));
        expected.extend(crate::seanet::expected_tensors(SEANET, &scfg));
        s.check_shapes(&expected)?;
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
        let transformer = MimiTransformer::from_store(s, TRANSFORMER, tcfg)?;
        let seanet = SeanetDecoder::from_store(s, SEANET, scfg)?;
        let mut names: Vec<String> = vec!["quantizer_in".into(), "quantizer_out".into(), "upsample_out".into()];
        let mut shapes = vec![(1, latent_dim), (1, dim), (stride, dim)];
        for n in transformer.tap_names("dec_tr") {
            names.push(n);
            shapes.push((stride, dim));
        }
        names.extend(seanet.tap_names.iter().cloned());
        shapes.extend(seanet.tap_shapes(stride));
        // "name channels" per line: enough for TS to shape each tap.
        let names: Vec<String> = names.iter().zip(&shapes).map(|(n, &(_, c))| format!("{n} {c}")).collect();
        Ok(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            latent_dim,
            dim,
            stride,
            quantizer,
            upsample_wt,
            transformer,
            seanet,
            latent_stats: None,
            tap_names: names.join("\n"),
            tap_shapes: shapes,
        })
    }

    /// Makes [`Self::decode`] take normalised latents, de-normalised as `x·std + mean` (each `[latent_dim]`).
    pub fn set_latent_stats(&mut self, mean: &[f32], std: &[f32]) -> Result<()> {
        if mean.len() != self.latent_dim || std.len() != self.latent_dim {
            return Err(CoreError::new(format!("latent stats must have {} values", self.latent_dim)));
        }
        self.latent_stats = Some((mean.to_vec(), std.to_vec()));
        Ok(())
    }

    /// Audio samples per latent frame (all channels).
    pub fn frame_samples(&self) -> usize {
        self.stride * self.seanet.cfg.hop() * self.seanet.cfg.channels
    }

    /// Bytes of packed weights.
    pub fn weight_bytes(&self) -> usize {
        self.quantizer.weight_bytes() + self.upsample_wt.len() * 4 + self.transformer.weight_bytes()
            + self.seanet.weight_bytes()
    }

    /// Multiply-accumulates per frame in the GEMMs and convolutions (for throughput figures; attention excluded).
    pub fn macs_per_frame(&self) -> usize {
        let t = &self.transformer.cfg;
        let rows = self.stride;
        let mut n = self.latent_dim * self.dim + 2 * self.stride * self.dim;
        n += rows * t.num_layers * (4 * t.d_model * t.d_model + 2 * t.d_model * t.dim_feedforward);
        n + self.seanet.macs(rows)
    }

    /// Decodes `n_frames` latents (`[n_frames × latent_dim]`) into `out` (`[n_frames × frame_samples]`).
    pub fn decode(&self, st: &mut MimiState, latents: &[f32], n_frames: usize, out: &mut [f32]) -> Result<()> {
        if st.decoder_id != self.id {
            return Err(CoreError::new("this Mimi state belongs to another decoder"));
        }
        let fs = self.frame_samples();
        if latents.len() < n_frames * self.latent_dim || out.len() < n_frames * fs {
            return Err(CoreError::new("latent or audio buffer too small"));
        }
        let mut done = 0;
        while done < n_frames {
            let f = st.max_frames.min(n_frames - done);
            let lat = &latents[done * self.latent_dim..(done + f) * self.latent_dim];
            self.decode_chunk(st, lat, f, &mut out[done * fs..(done + f) * fs]);
            done += f;
        }
        Ok(())
    }

    fn decode_chunk(&self, st: &mut MimiState, latents: &[f32], f: usize, out: &mut [f32]) {
        let (ld, d, s) = (self.latent_dim, self.dim, self.stride);
        let t = f * s;
        let z = &mut st.z[..f * ld];
        match &self.latent_stats {
            Some((mean, std)) => {
                for (i, (zv, &x)) in z.iter_mut().zip(latents).enumerate() {
                    *zv = x * std[i % ld] + mean[i % ld];
                }
            }
            None => z.copy_from_slice(latents),
        }
        let mut taps = st.taps.as_mut();
        if let Some(tp) = taps.as_deref_mut() {
            tp.put(0, z);
        }
        self.quantizer.forward(z, &mut st.q, f);
        if let Some(tp) = taps.as_deref_mut() {
            tp.put(1, &st.q[..f * d]);
        }
        let x = st.seanet.input_mut(t, d);
        upsample_depthwise_2s(&st.q, f, d, &self.upsample_wt, s, &mut st.up_prev, x);
        if let Some(tp) = taps.as_deref_mut() {
            tp.put(2, x);
        }
        self.transformer.forward(&mut st.transformer, x, t, taps.as_deref_mut(), 3);
        let tap0 = 4 + self.transformer.cfg.num_layers;
        self.seanet.forward(&mut st.seanet, t, out, taps, tap0);
    }
}

/// One stream's decoder state and scratch.
pub struct MimiState {
    decoder_id: u32,
    pub max_frames: usize,
    z: Vec<f32>,
    q: Vec<f32>,
    up_prev: Vec<f32>,
    transformer: TransformerState,
    seanet: SeanetState,
    taps: Option<Taps>,
}

impl MimiState {
    /// A fresh stream for `dec`, decoding up to `max_frames` frames per internal step (1…256).
    pub fn new(dec: &MimiDecoder, max_frames: usize) -> Result<Self> {
        if max_frames == 0 || max_frames > 256 {
            return Err(CoreError::new(format!("max_frames must be 1…256, got {max_frames}")));
        }
        let t = max_frames * dec.stride;
        Ok(Self {
            decoder_id: dec.id,
            max_frames,
            z: zeros(max_frames * dec.latent_dim)?,
            q: zeros(max_frames * dec.dim)?,
            up_prev: zeros(dec.dim)?,
            transformer: TransformerState::new(&dec.transformer, t)?,
            seanet: SeanetState::new(&dec.seanet, t)?,
            taps: None,
        })
    }

    /// Back to the start of a stream (position 0, zero carried state).
    pub fn reset(&mut self) {
        self.up_prev.fill(0.0);
        self.transformer.reset();
        self.seanet.reset();
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
        self.transformer.offset()
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
    use crate::weights::Tensor;

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
