//! The SEANet encoder of Mimi (spec §4.5 step 2): the decoder's mirror. Conv k7 (audio → `n_filters`), then per
//! ratio **reversed** [ResBlocks, ELU, Conv (k = 2r, stride r, doubling the channels)], then ELU and a final conv
//! to `dimension`. Every conv is causal with zero (`constant`) left padding and streaming, built from the same
//! [`StreamConv1d`] and [`ResBlock`] as the decoder; all state lives in a [`SeanetEncoderState`] per stream.
//!
//! Module indices (tap names `enc.seanet.model.{i}`) count the parameter-free ELUs, as the reference's
//! `nn.Sequential` does: for ratios [6, 5, 4] and one ResBlock per stage, convs at 0, 3, 6, 9, 11, ResBlocks at 1,
//! 4, 7, ELUs at 2, 5, 8, 10.

use crate::conv::StreamConv1d;
use crate::error::{CoreError, Result};
use crate::kernels::activation::elu_parallel as elu;
use crate::memory::zeros;
use crate::seanet::{ResBlock, SeanetConfig, conv_macs};
use crate::taps::Taps;
use crate::weights::WeightStore;

/// Every tensor [`SeanetEncoder::from_store`] takes, with its shape (to check a checkpoint before taking anything).
pub fn expected_tensors(prefix: &str, cfg: &SeanetConfig) -> Vec<(String, Vec<usize>)> {
    let mut v = Vec::new();
    let mut conv = |name: String, shape: [usize; 3]| {
        v.push((format!("{name}.weight"), shape.to_vec()));
        v.push((format!("{name}.bias"), vec![shape[0]]));
    };
    let mut idx = 0;
    let mut ch = cfg.n_filters;
    conv(format!("{prefix}.model.{idx}.conv"), [ch, cfg.channels, cfg.kernel_size]);
    idx += 1;
    for &r in cfg.ratios.iter().rev() {
        let hidden = ch / cfg.compress;
        for _ in 0..cfg.n_residual_layers {
            conv(format!("{prefix}.model.{idx}.block.1.conv"), [hidden, ch, cfg.residual_kernel_size]);
            conv(format!("{prefix}.model.{idx}.block.3.conv"), [ch, hidden, 1]);
            idx += 1;
        }
        idx += 1; // ELU
        conv(format!("{prefix}.model.{idx}.conv"), [2 * ch, ch, 2 * r]);
        idx += 1;
        ch *= 2;
    }
    idx += 1; // ELU
    conv(format!("{prefix}.model.{idx}.conv"), [cfg.dimension, ch, cfg.last_kernel_size]);
    v
}

/// One stage: ResBlocks at the stage's rate, then ELU and the strided conv to the next rate.
struct Stage {
    ratio: usize,
    c: usize,
    res: Vec<ResBlock>,
    down: StreamConv1d,
}

/// The SEANet encoder's weights.
pub struct SeanetEncoder {
    pub cfg: SeanetConfig,
    conv0: StreamConv1d,
    stages: Vec<Stage>,
    last: StreamConv1d,
    /// Names of the taps [`SeanetEncoder::forward`] records, in order (`enc.seanet.model.{i}`).
    pub tap_names: Vec<String>,
}

impl SeanetEncoder {
    /// Takes the `{prefix}.model.*` tensors (e.g. prefix `mimi.encoder`).
    pub fn from_store(s: &mut WeightStore, prefix: &str, cfg: SeanetConfig) -> Result<Self> {
        let name = |i: usize| format!("{prefix}.model.{i}.conv");
        let mut tap_names = Vec::new();
        let mut idx = 0;
        let mut ch = cfg.n_filters;
        let conv0 = StreamConv1d::from_store(s, &name(idx), ch, cfg.channels, cfg.kernel_size, 1, 1, true)?;
        tap_names.push(format!("enc.seanet.model.{idx}"));
        idx += 1;
        let mut stages = Vec::new();
        for &r in cfg.ratios.iter().rev() {
            if ch / cfg.compress == 0 {
                return Err(CoreError::new("seanet: n_filters too small for compress"));
            }
            let mut res = Vec::new();
            for j in 0..cfg.n_residual_layers {
                let dil = cfg.dilation_base.pow(j as u32);
                res.push(ResBlock::from_store(s, &format!("{prefix}.model.{idx}"), &cfg, ch, dil)?);
                tap_names.push(format!("enc.seanet.model.{idx}"));
                idx += 1;
            }
            idx += 1; // ELU
            let down = StreamConv1d::from_store(s, &name(idx), 2 * ch, ch, 2 * r, r, 1, true)?;
            tap_names.push(format!("enc.seanet.model.{idx}"));
            idx += 1;
            stages.push(Stage { ratio: r, c: ch, res, down });
            ch *= 2;
        }
        idx += 1; // ELU
        let last = StreamConv1d::from_store(s, &name(idx), cfg.dimension, ch, cfg.last_kernel_size, 1, 1, true)?;
        tap_names.push(format!("enc.seanet.model.{idx}"));
        Ok(Self { cfg, conv0, stages, last, tap_names })
    }

    /// Bytes of packed weights.
    pub fn weight_bytes(&self) -> usize {
        let mut n = self.conv0.gemm.weight_bytes() + self.last.gemm.weight_bytes();
        for st in &self.stages {
            n += st.down.gemm.weight_bytes() + st.res.iter().map(ResBlock::weight_bytes).sum::<usize>();
        }
        n
    }

    /// Multiply-accumulates of the convolutions for `t0` audio samples.
    pub fn macs(&self, t0: usize) -> usize {
        let mut n = conv_macs(&self.conv0, t0);
        let mut t = t0;
        for st in &self.stages {
            n += st.res.iter().map(|rb| rb.macs(t)).sum::<usize>();
            t /= st.ratio;
            n += conv_macs(&st.down, t);
        }
        n + conv_macs(&self.last, t)
    }

    /// Rows and channels of each tap for `t0` samples (same order as `tap_names`).
    pub fn tap_shapes(&self, t0: usize) -> Vec<(usize, usize)> {
        let mut v = vec![(t0, self.cfg.n_filters)];
        let mut t = t0;
        for st in &self.stages {
            v.extend(st.res.iter().map(|_| (t, st.c)));
            t /= st.ratio;
            v.push((t, 2 * st.c));
        }
        v.push((t, self.cfg.dimension));
        v
    }

    /// Audio `[t0 × channels]` (already in `st.input_mut(t0)`, `t0` a multiple of the hop) → `out`
    /// `[t0/hop × dimension]`.
    pub fn forward(&self, st: &mut SeanetEncoderState, t0: usize, out: &mut [f32], mut taps: Option<&mut Taps>) {
        assert!(t0 <= st.max_in && t0.is_multiple_of(self.cfg.hop()), "seanet encoder: bad block of {t0} samples");
        let SeanetEncoderState { conv0_buf, acts, res_bufs, down_bufs, last_buf, cols, h, tmp, .. } = st;
        let mut put = |data: &[f32], id: &mut usize| {
            if let Some(tp) = taps.as_deref_mut() {
                tp.put(*id, data);
            }
            *id += 1;
        };
        let mut tap = 0;
        self.conv0.step(conv0_buf, t0, cols, &mut acts[0]);
        put(&acts[0][..t0 * self.cfg.n_filters], &mut tap);
        let mut t = t0;
        for (i, stage) in self.stages.iter().enumerate() {
            let c = stage.c;
            let (cur, next) = acts.split_at_mut(i + 1);
            let x = &mut cur[i];
            for (j, rb) in stage.res.iter().enumerate() {
                rb.forward(x, t, &mut res_bufs[i][j], cols, h, tmp);
                put(&x[..t * c], &mut tap);
            }
            let buf = &mut down_bufs[i];
            let p = stage.down.prev * c;
            buf[p..p + t * c].copy_from_slice(&x[..t * c]);
            elu(&mut buf[p..p + t * c]);
            stage.down.step(buf, t, cols, &mut next[0]);
            t /= stage.ratio;
            put(&next[0][..t * 2 * c], &mut tap);
        }
        let c = self.last.gemm.c_in;
        let p = self.last.prev * c;
        last_buf[p..p + t * c].copy_from_slice(&acts[self.stages.len()][..t * c]);
        elu(&mut last_buf[p..p + t * c]);
        self.last.step(last_buf, t, cols, out);
        put(&out[..t * self.cfg.dimension], &mut tap);
    }
}

/// Per-stream SEANet encoder state (carried conv rows) plus scratch, sized for up to `max_in` samples per call.
pub struct SeanetEncoderState {
    max_in: usize,
    conv0_buf: Vec<f32>,
    conv0_prev: usize,
    /// The activation at each rate: `acts[i]` is stage `i`'s input (and its ResBlocks' output), the last one the
    /// final conv's input.
    acts: Vec<Vec<f32>>,
    res_bufs: Vec<Vec<Vec<f32>>>,
    down_bufs: Vec<Vec<f32>>,
    last_buf: Vec<f32>,
    cols: Vec<f32>,
    h: Vec<f32>,
    tmp: Vec<f32>,
}

impl SeanetEncoderState {
    /// A fresh state for calls of up to `max_in` samples.
    pub fn new(enc: &SeanetEncoder, max_in: usize) -> Result<Self> {
        let mut cols = enc.conv0.cols_len(max_in);
        let (mut h, mut tmp) = (0usize, 0usize);
        let mut acts = vec![zeros(max_in * enc.cfg.n_filters)?];
        let mut res_bufs = Vec::new();
        let mut down_bufs = Vec::new();
        let mut t = max_in;
        for st in &enc.stages {
            let mut bufs = Vec::new();
            for rb in &st.res {
                bufs.push(zeros(rb.conv1.buf_len(t))?);
                cols = cols.max(rb.conv1.cols_len(t)).max(rb.conv2.cols_len(t));
                h = h.max(t * rb.conv1.gemm.c_out);
                tmp = tmp.max(t * st.c);
            }
            res_bufs.push(bufs);
            down_bufs.push(zeros(st.down.buf_len(t))?);
            cols = cols.max(st.down.cols_len(t));
            t /= st.ratio;
            acts.push(zeros(t * 2 * st.c)?);
        }
        cols = cols.max(enc.last.cols_len(t));
        Ok(Self {
            max_in,
            conv0_buf: zeros(enc.conv0.buf_len(max_in))?,
            conv0_prev: enc.conv0.prev * enc.cfg.channels,
            acts,
            res_bufs,
            down_bufs,
            last_buf: zeros(enc.last.buf_len(t))?,
            cols: zeros(cols)?,
            h: zeros(h)?,
            tmp: zeros(tmp)?,
        })
    }

    /// Where the caller writes the next `t` samples (`[t × channels]`).
    pub fn input_mut(&mut self, t: usize, channels: usize) -> &mut [f32] {
        &mut self.conv0_buf[self.conv0_prev..self.conv0_prev + t * channels]
    }

    /// Back to the start of a stream: zero carried rows.
    pub fn reset(&mut self) {
        self.conv0_buf.fill(0.0);
        self.res_bufs.iter_mut().flatten().for_each(|b| b.fill(0.0));
        self.down_bufs.iter_mut().for_each(|b| b.fill(0.0));
        self.last_buf.fill(0.0);
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        let mut n = self.conv0_buf.len() + self.last_buf.len() + self.cols.len() + self.h.len() + self.tmp.len();
        n += self.acts.iter().map(Vec::len).sum::<usize>() + self.down_bufs.iter().map(Vec::len).sum::<usize>();
        n += self.res_bufs.iter().flatten().map(Vec::len).sum::<usize>();
        n * 4
    }
}
