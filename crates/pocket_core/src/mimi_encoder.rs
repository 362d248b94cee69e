//! The Mimi encoder (spec §4.5), for voice cloning: 24 kHz audio → raw latents at 12.5 Hz.
//!
//! Per block of frames (1920 samples each): SEANet encoder (200 Hz) → encoder transformer (window `context`,
//! positions from 0) → downsample conv (k = 2·stride, stride 16, no bias, **replicate** left padding: before the
//! first block its carried rows are copies of the first input row) → `[frames × inner_dim]`.
//!
//! The reference encodes the whole prompt in one non-streaming call; every module is causal and the input is a
//! whole number of frames, so encoding block by block gives the same result while memory stays bounded by the
//! block size, whatever the prompt's length. The caller right-pads the prompt with zeros to whole frames.
//!
//! [`MimiEncoder`] holds the packed weights; [`MimiEncoderState`] one stream's carried state and scratch, sized at
//! creation for up to `max_frames` frames per call.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::conv::StreamConv1d;
use crate::error::{CoreError, Result};
use crate::memory::zeros;
use crate::mimi_transformer::{MimiTransformer, TransformerConfig, TransformerState};
use crate::params::Params;
use crate::seanet::SeanetConfig;
use crate::seanet_encoder::{SeanetEncoder, SeanetEncoderState};
use crate::taps::{Taps, switch_taps};
use crate::weights::WeightStore;

static NEXT_ID: AtomicU32 = AtomicU32::new(1);

const TRANSFORMER: &str = "mimi.encoder_transformer.transformer";
const SEANET: &str = "mimi.encoder";
const DOWNSAMPLE: &str = "mimi.downsample.conv.conv";

/// The whole encoder's weights and dimensions.
pub struct MimiEncoder {
    id: u32,
    /// Values per latent frame (the config's `inner_dim`).
    pub inner_dim: usize,
    /// SEANet output width (= transformer width).
    pub dim: usize,
    /// Downsample factor between the SEANet rate and the latent rate.
    pub stride: usize,
    seanet: SeanetEncoder,
    transformer: MimiTransformer,
    downsample: StreamConv1d,
    /// Tap names and channel counts, one `name channels` line per tap, in tap order.
    pub tap_names: String,
    tap_shapes: Vec<(usize, usize)>,
}

impl MimiEncoder {
    /// Builds the encoder from the `mimi.encoder.*`, `mimi.encoder_transformer.*` and `mimi.downsample.*` tensors.
    /// Parameters (`key=value`): `inner_dim stride`, the transformer's and SEANet's, as for the decoder.
    pub fn from_store(s: &mut WeightStore, params: &str) -> Result<Self> {
        let p = Params::parse(params)?;
        let inner_dim = p.usize("inner_dim")?;
        let stride = p.usize("stride")?;
        let tcfg = TransformerConfig::from_params(&p)?;
        let scfg = SeanetConfig::from_params(&p)?;
        let dim = scfg.dimension;
        if inner_dim == 0 || inner_dim > 1 << 14 || stride == 0 || stride > 1 << 10 {
            return Err(CoreError::new("inner_dim and stride must be positive and reasonably small"));
        }
        if dim != tcfg.d_model {
            return Err(CoreError::new(format!(
                "unsupported Mimi widths: transformer d_model {} must equal seanet dimension {dim} (no projections)",
                tcfg.d_model
            )));
        }
        let mut expected = vec![(format!("{DOWNSAMPLE}.weight"), vec![inner_dim, dim, 2 * stride])];
        expected.extend(crate::mimi_transformer::expected_tensors(TRANSFORMER, &tcfg));
        expected.extend(crate::seanet_encoder::expected_tensors(SEANET, &scfg));
        s.check_shapes(&expected)?;
        let seanet = SeanetEncoder::from_store(s, SEANET, scfg)?;
        // BF16 panels (lossless for BF16 checkpoints): 25 → 13 MB at full size; the convs keep f32 panels.
        let transformer = MimiTransformer::from_store_packed(s, TRANSFORMER, tcfg, true)?;
        let downsample = StreamConv1d::from_store(s, DOWNSAMPLE, inner_dim, dim, 2 * stride, stride, 1, false)?;
        let frame = stride * seanet.cfg.hop();
        let mut names = seanet.tap_names.clone();
        let mut shapes = seanet.tap_shapes(frame);
        for n in transformer.tap_names("enc.transformer") {
            names.push(n);
            shapes.push((stride, dim));
        }
        let names: Vec<String> = names.iter().zip(&shapes).map(|(n, &(_, c))| format!("{n} {c}")).collect();
        Ok(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            inner_dim,
            dim,
            stride,
            seanet,
            transformer,
            downsample,
            tap_names: names.join("\n"),
            tap_shapes: shapes,
        })
    }

    /// Audio samples per latent frame (mono).
    pub fn frame_samples(&self) -> usize {
        self.stride * self.seanet.cfg.hop() * self.seanet.cfg.channels
    }

    /// Bytes of packed weights.
    pub fn weight_bytes(&self) -> usize {
        self.seanet.weight_bytes() + self.transformer.weight_bytes() + self.downsample.gemm.weight_bytes()
    }

    /// Multiply-accumulates per frame in the GEMMs and convolutions (attention excluded).
    pub fn macs_per_frame(&self) -> usize {
        let t = &self.transformer.cfg;
        let rows = self.stride;
        let mut n = self.seanet.macs(self.stride * self.seanet.cfg.hop());
        n += rows * t.num_layers * (4 * t.d_model * t.d_model + 2 * t.d_model * t.dim_feedforward);
        n + self.inner_dim * self.dim * 2 * self.stride
    }

    /// Encodes `n_frames` frames of audio (`[n_frames × frame_samples]`) into `out` (`[n_frames × inner_dim]`),
    /// continuing the stream.
    pub fn encode(&self, st: &mut MimiEncoderState, audio: &[f32], n_frames: usize, out: &mut [f32]) -> Result<()> {
        if st.encoder_id != self.id {
            return Err(CoreError::new("this Mimi encoder state belongs to another encoder"));
        }
        let fs = self.frame_samples();
        if audio.len() < n_frames * fs || out.len() < n_frames * self.inner_dim {
            return Err(CoreError::new("audio or latent buffer too small"));
        }
        let mut done = 0;
        while done < n_frames {
            let f = st.max_frames.min(n_frames - done);
            let o = &mut out[done * self.inner_dim..(done + f) * self.inner_dim];
            self.encode_chunk(st, &audio[done * fs..(done + f) * fs], f, o);
            done += f;
        }
        Ok(())
    }

    fn encode_chunk(&self, st: &mut MimiEncoderState, audio: &[f32], f: usize, out: &mut [f32]) {
        let (d, s) = (self.dim, self.stride);
        let t = f * s;
        let channels = self.seanet.cfg.channels;
        st.seanet.input_mut(audio.len() / channels, channels).copy_from_slice(audio);
        // The SEANet output lands right after the downsample conv's carried rows: the transformer works on it in
        // place and the conv reads it there, without copies.
        let p = self.downsample.prev * d;
        let MimiEncoderState { seanet, transformer, ds_buf, cols, taps, started, .. } = st;
        let mut taps = taps.as_mut();
        let x = &mut ds_buf[p..p + t * d];
        self.seanet.forward(seanet, audio.len() / channels, x, taps.as_deref_mut());
        let tap0 = self.seanet.tap_names.len();
        self.transformer.forward(transformer, x, t, taps, tap0);
        if !*started {
            // Replicate padding: the carried rows start as copies of the very first row.
            let (head, rest) = ds_buf.split_at_mut(p);
            for row in head.chunks_exact_mut(d) {
                row.copy_from_slice(&rest[..d]);
            }
            *started = true;
        }
        self.downsample.step(ds_buf, t, cols, out);
    }
}

/// One stream's encoder state and scratch.
pub struct MimiEncoderState {
    encoder_id: u32,
    pub max_frames: usize,
    seanet: SeanetEncoderState,
    transformer: TransformerState,
    ds_buf: Vec<f32>,
    cols: Vec<f32>,
    started: bool,
    taps: Option<Taps>,
}

impl MimiEncoderState {
    /// A fresh stream for `enc`, encoding up to `max_frames` frames per internal step (1…256).
    pub fn new(enc: &MimiEncoder, max_frames: usize) -> Result<Self> {
        if max_frames == 0 || max_frames > 256 {
            return Err(CoreError::new(format!("max_frames must be 1…256, got {max_frames}")));
        }
        let t = max_frames * enc.stride;
        Ok(Self {
            encoder_id: enc.id,
            max_frames,
            seanet: SeanetEncoderState::new(&enc.seanet, max_frames * enc.stride * enc.seanet.cfg.hop())?,
            transformer: TransformerState::new(&enc.transformer, t)?,
            ds_buf: zeros(enc.downsample.buf_len(t))?,
            cols: zeros(enc.downsample.cols_len(t))?,
            started: false,
            taps: None,
        })
    }

    /// Back to the start of a stream.
    pub fn reset(&mut self) {
        self.seanet.reset();
        self.transformer.reset();
        self.ds_buf.fill(0.0);
        self.started = false;
    }

    /// Enables (allocating the buffers) or disables recording of intermediate outputs.
    pub fn set_taps(&mut self, enc: &MimiEncoder, on: bool) -> Result<()> {
        switch_taps(&mut self.taps, (enc.id, self.encoder_id), "Mimi encoder", &enc.tap_shapes, self.max_frames, on)
    }

    /// Tap `id` of the last internal step (time-major), if taps are on.
    pub fn tap(&self, id: usize) -> Option<&[f32]> {
        self.taps.as_ref()?.get(id)
    }

    /// Absolute 200 Hz position of the next step.
    pub fn position(&self) -> usize {
        self.transformer.offset()
    }

    /// Bytes held (state and scratch).
    pub fn bytes(&self) -> usize {
        self.seanet.bytes() + self.transformer.bytes() + (self.ds_buf.len() + self.cols.len()) * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::conv::conv1d_ref;
    use crate::testing::{max_rel_diff, random_vec};
    use crate::weights::Tensor;

    const PARAMS: &str = "inner_dim=4 stride=4 d_model=16 num_heads=2 num_layers=2 dim_feedforward=24 \
        context=6 max_period=10000 layer_scale=1 dimension=16 channels=1 n_filters=2 ratios=3,2 kernel_size=5 \
        residual_kernel_size=3 last_kernel_size=3 n_residual_layers=1 dilation_base=2 compress=2";

    /// A store with random tensors of every shape the encoder takes (scaled to keep activations O(1)).
    fn random_store(seed: u32) -> WeightStore {
        store_of(seed, |v| v)
    }

    /// As [`random_store`], every value rounded toward zero to BF16, as a BF16 checkpoint widens to f32.
    fn bf16_store(seed: u32) -> WeightStore {
        store_of(seed, |v| f32::from_bits(v.to_bits() & 0xffff_0000))
    }

    fn store_of(seed: u32, round: impl Fn(f32) -> f32) -> WeightStore {
        let mut s = WeightStore::default();
        let cfg = SeanetConfig::from_params(&Params::parse(PARAMS).unwrap()).unwrap();
        let tcfg = TransformerConfig::from_params(&Params::parse(PARAMS).unwrap()).unwrap();
        let mut all = crate::seanet_encoder::expected_tensors(SEANET, &cfg);
        all.extend(crate::mimi_transformer::expected_tensors(TRANSFORMER, &tcfg));
        all.push((format!("{DOWNSAMPLE}.weight"), vec![4, 16, 8]));
        for (i, (name, shape)) in all.into_iter().enumerate() {
            let scale = if shape.len() == 1 && !name.ends_with("bias") { 1.0 } else { 0.4 };
            let data = random_vec(shape.iter().product(), seed + i as u32).iter().map(|v| round(v * scale)).collect();
            s.insert(&name, Tensor { shape, data });
        }
        s
    }

    #[test]
    fn block_sizes_agree_and_reset_repeats() {
        let enc = MimiEncoder::from_store(&mut random_store(1), PARAMS).unwrap();
        let fs = enc.frame_samples();
        assert_eq!(fs, 24);
        let frames = 7;
        let audio = random_vec(frames * fs, 99);
        let mut one = MimiEncoderState::new(&enc, 1).unwrap();
        let mut all = MimiEncoderState::new(&enc, frames).unwrap();
        let (mut a, mut b) = (vec![0.0; frames * 4], vec![0.0; frames * 4]);
        for f in 0..frames {
            enc.encode(&mut one, &audio[f * fs..], 1, &mut a[f * 4..]).unwrap();
        }
        enc.encode(&mut all, &audio, frames, &mut b).unwrap();
        assert!(a.iter().any(|v| v.abs() > 1e-3));
        assert!(max_rel_diff(&a, &b) < 1e-5, "{}", max_rel_diff(&a, &b));
        assert_eq!(one.position(), frames * 4);
        one.reset();
        let mut c = vec![0.0; frames * 4];
        enc.encode(&mut one, &audio, frames, &mut c).unwrap();
        assert_eq!(a, c);
    }

    #[test]
    fn downsample_pads_by_replicating_the_first_row() {
        // The outputs equal the scalar conv over [k − stride copies of the transformer's first row, its rows].
        let mut s = random_store(3);
        let wt = random_vec(4 * 16 * 8, 7);
        s.insert(&format!("{DOWNSAMPLE}.weight"), Tensor { shape: vec![4, 16, 8], data: wt.clone() });
        let enc = MimiEncoder::from_store(&mut s, PARAMS).unwrap();
        let mut st = MimiEncoderState::new(&enc, 2).unwrap();
        st.set_taps(&enc, true).unwrap();
        let audio = random_vec(2 * 24, 5);
        let mut out = vec![0.0; 8];
        enc.encode(&mut st, &audio, 2, &mut out).unwrap();
        let tr_out = st.tap(enc.seanet.tap_names.len() + 2).unwrap().to_vec(); // transformer output [8 × 16]
        let mut padded: Vec<f32> = (0..4).flat_map(|_| tr_out[..16].to_vec()).collect();
        padded.extend_from_slice(&tr_out);
        let mut want = vec![0.0; 8];
        conv1d_ref(&padded, 12, 16, &wt, 4, 8, 4, 1, None, &mut want);
        assert!(max_rel_diff(&out, &want) < 1e-5, "{}", max_rel_diff(&out, &want));
    }

    #[test]
    fn bf16_transformer_panels_are_lossless_for_bf16_weights() {
        // The encoder packs its transformer with BF16 panels: for a BF16 checkpoint, bit-identical to f32 panels.
        let tcfg = TransformerConfig::from_params(&Params::parse(PARAMS).unwrap()).unwrap();
        let wide = MimiTransformer::from_store_packed(&mut bf16_store(1), TRANSFORMER, tcfg.clone(), false).unwrap();
        let narrow = MimiTransformer::from_store_packed(&mut bf16_store(1), TRANSFORMER, tcfg.clone(), true).unwrap();
        let vectors = tcfg.num_layers * 6 * tcfg.d_model * 4; // norms and layer scales stay f32
        assert_eq!((narrow.weight_bytes() - vectors) * 2, wide.weight_bytes() - vectors);
        let (t, x0) = (12, random_vec(12 * 16, 8));
        let (mut a, mut b) = (x0.clone(), x0);
        let mut sa = TransformerState::new(&wide, t).unwrap();
        let mut sb = TransformerState::new(&narrow, t).unwrap();
        for _ in 0..3 {
            wide.forward(&mut sa, &mut a, t, None, 0);
            narrow.forward(&mut sb, &mut b, t, None, 0);
        }
        assert!(a.iter().all(|v| v.is_finite() && v.abs() < 1e6));
        assert_eq!(a, b);
        // Weights that are not BF16 values keep f32 panels.
        let f32_weights = MimiTransformer::from_store_packed(&mut random_store(1), TRANSFORMER, tcfg, true).unwrap();
        assert_eq!(f32_weights.weight_bytes(), wide.weight_bytes());
    }

    #[test]
    fn errors_not_panics() {
        let e = MimiEncoder::from_store(&mut random_store(1), &PARAMS.replace("d_model=16", "d_model=8")).err();
        assert!(e.unwrap().0.contains("d_model 8"));
        let mut s = random_store(1);
        s.insert("mimi.encoder.model.3.conv.weight", Tensor { shape: vec![4, 2, 5], data: vec![0.0; 40] });
        let e = MimiEncoder::from_store(&mut s, PARAMS).err().unwrap();
        assert!(e.0.contains("'mimi.encoder.model.3.conv.weight' has shape [4, 2, 5], expected [4, 2, 4]"), "{}", e.0);
        assert!(s.contains("mimi.encoder.model.0.conv.weight"), "nothing taken from a checkpoint that does not fit");
        let e1 = MimiEncoder::from_store(&mut random_store(1), PARAMS).unwrap();
        let e2 = MimiEncoder::from_store(&mut random_store(2), PARAMS).unwrap();
        let mut st = MimiEncoderState::new(&e1, 1).unwrap();
        assert!(e2.encode(&mut st, &[0.0; 24], 1, &mut [0.0; 4]).is_err());
        assert!(MimiEncoderState::new(&e1, 0).is_err());
    }
}
