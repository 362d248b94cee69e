//! The SEANet decoder of Mimi (spec §4.2 steps 4–11): conv k7, then per ratio [ELU, ConvTranspose (k = 2r,
//! stride r, halving the channels), ResBlocks], then ELU and a final conv to audio. Every conv is causal and
//! streaming; all state lives in a [`SeanetState`] per stream.
//!
//! A ResBlock computes `x + Conv_k1(ELU(Conv_k(ELU(x))))` with hidden width `dim / compress` and dilation
//! `dilation_base^j` for the `j`-th block of a stage.

use crate::conv::{StreamConv1d, StreamConvTr1d};
use crate::error::{CoreError, Result};
use crate::kernels::activation::elu_simd as elu;
use crate::memory::zeros;
use crate::params::Params;
use crate::taps::Taps;
use crate::weights::WeightStore;

/// SEANet hyper-parameters (the config's `mimi.seanet`).
#[derive(Clone, Debug)]
pub struct SeanetConfig {
    pub dimension: usize,
    pub channels: usize,
    pub n_filters: usize,
    pub ratios: Vec<usize>,
    pub kernel_size: usize,
    pub residual_kernel_size: usize,
    pub last_kernel_size: usize,
    pub n_residual_layers: usize,
    pub dilation_base: usize,
    pub compress: usize,
}

impl SeanetConfig {
    /// Reads the `dimension channels n_filters ratios kernel_size residual_kernel_size last_kernel_size
    /// n_residual_layers dilation_base compress` parameters.
    pub fn from_params(p: &Params) -> Result<Self> {
        let c = Self {
            dimension: p.usize("dimension")?,
            channels: p.usize("channels")?,
            n_filters: p.usize("n_filters")?,
            ratios: p.usize_list("ratios")?,
            kernel_size: p.usize("kernel_size")?,
            residual_kernel_size: p.usize("residual_kernel_size")?,
            last_kernel_size: p.usize("last_kernel_size")?,
            n_residual_layers: p.usize("n_residual_layers")?,
            dilation_base: p.usize("dilation_base")?,
            compress: p.usize("compress")?,
        };
        let positive = [
            ("dimension", c.dimension),
            ("channels", c.channels),
            ("n_filters", c.n_filters),
            ("kernel_size", c.kernel_size),
            ("residual_kernel_size", c.residual_kernel_size),
            ("last_kernel_size", c.last_kernel_size),
            ("dilation_base", c.dilation_base),
            ("compress", c.compress),
        ];
        for (k, v) in positive {
            if v == 0 {
                return Err(CoreError::new(format!("seanet parameter '{k}' must be positive")));
            }
        }
        if c.ratios.is_empty() || c.ratios.contains(&0) || c.ratios.len() > 8 {
            return Err(CoreError::new(format!("seanet ratios {:?} must be 1 to 8 positive integers", c.ratios)));
        }
        if c.n_filters.checked_shl(c.ratios.len() as u32).is_none_or(|w| w > 1 << 16) || c.dimension > 1 << 16 {
            return Err(CoreError::new("seanet widths are too large"));
        }
        if c.n_residual_layers > 8 {
            return Err(CoreError::new("seanet n_residual_layers must be at most 8"));
        }
        Ok(c)
    }

    /// Audio samples per input step (the product of the ratios).
    pub fn hop(&self) -> usize {
        self.ratios.iter().product()
    }
}

/// `x + Conv_k1(ELU(Conv_k(ELU(x))))`, shared by the decoder and the encoder.
pub(crate) struct ResBlock {
    pub conv1: StreamConv1d,
    pub conv2: StreamConv1d,
}

impl ResBlock {
    /// Takes `{p}.block.1.conv` and `{p}.block.3.conv` for width `c` and dilation `dil`.
    pub fn from_store(s: &mut WeightStore, p: &str, cfg: &SeanetConfig, c: usize, dil: usize) -> Result<Self> {
        let hidden = c / cfg.compress;
        let k = cfg.residual_kernel_size;
        let conv1 = StreamConv1d::from_store(s, &format!("{p}.block.1.conv"), hidden, c, k, 1, dil, true)?;
        let conv2 = StreamConv1d::from_store(s, &format!("{p}.block.3.conv"), c, hidden, 1, 1, 1, true)?;
        Ok(Self { conv1, conv2 })
    }

    /// `y` `[t × c]` in place; `buf` carries `conv1`'s rows; `cols`, `h`, `tmp` are scratch.
    pub fn forward(&self, y: &mut [f32], t: usize, buf: &mut [f32], cols: &mut [f32], h: &mut [f32], tmp: &mut [f32]) {
        let c = self.conv2.gemm.c_out;
        let p = self.conv1.prev * c;
        buf[p..p + t * c].copy_from_slice(&y[..t * c]);
        elu(&mut buf[p..p + t * c]);
        self.conv1.step(buf, t, cols, h);
        elu(&mut h[..t * self.conv1.gemm.c_out]);
        self.conv2.step(h, t, cols, tmp);
        crate::kernels::conv::add_assign(y, tmp, t * c);
    }

    /// Multiply-accumulates for `t` rows.
    pub fn macs(&self, t: usize) -> usize {
        conv_macs(&self.conv1, t) + conv_macs(&self.conv2, t)
    }

    /// Bytes of packed weights.
    pub fn weight_bytes(&self) -> usize {
        self.conv1.gemm.weight_bytes() + self.conv2.gemm.weight_bytes()
    }
}

/// Multiply-accumulates of a conv for `t` output rows.
pub(crate) fn conv_macs(c: &StreamConv1d, t: usize) -> usize {
    t * c.gemm.c_out * c.gemm.c_in * c.gemm.k
}

struct Stage {
    ratio: usize,
    c_out: usize,
    convtr: StreamConvTr1d,
    res: Vec<ResBlock>,
}

/// Every tensor [`SeanetDecoder::from_store`] takes, with its shape (to check a checkpoint before taking anything).
pub fn expected_tensors(prefix: &str, cfg: &SeanetConfig) -> Vec<(String, Vec<usize>)> {
    let mut v = Vec::new();
    let mut conv = |name: String, shape: [usize; 3], bias: usize| {
        v.push((format!("{name}.weight"), shape.to_vec()));
        v.push((format!("{name}.bias"), vec![bias]));
    };
    let mut idx = 0;
    let mut ch = cfg.n_filters << cfg.ratios.len();
    conv(format!("{prefix}.model.{idx}.conv"), [ch, cfg.dimension, cfg.kernel_size], ch);
    idx += 1;
    for &r in &cfg.ratios {
        idx += 1;
        let c_out = ch / 2;
        conv(format!("{prefix}.model.{idx}.convtr"), [ch, c_out, 2 * r], c_out);
        idx += 1;
        let hidden = c_out / cfg.compress;
        for _ in 0..cfg.n_residual_layers {
            conv(format!("{prefix}.model.{idx}.block.1.conv"), [hidden, c_out, cfg.residual_kernel_size], hidden);
            conv(format!("{prefix}.model.{idx}.block.3.conv"), [c_out, hidden, 1], c_out);
            idx += 1;
        }
        ch = c_out;
    }
    idx += 1;
    conv(format!("{prefix}.model.{idx}.conv"), [cfg.channels, ch, cfg.last_kernel_size], cfg.channels);
    v
}

/// The SEANet decoder's weights.
pub struct SeanetDecoder {
    pub cfg: SeanetConfig,
    conv0: StreamConv1d,
    stages: Vec<Stage>,
    last: StreamConv1d,
    /// Names of the taps [`SeanetDecoder::forward`] records, in order (`seanet.model.{i}`).
    pub tap_names: Vec<String>,
}

impl SeanetDecoder {
    /// Takes the `{prefix}.model.*` tensors (e.g. prefix `mimi.decoder`).
    pub fn from_store(s: &mut WeightStore, prefix: &str, cfg: SeanetConfig) -> Result<Self> {
        let mut idx = 0;
        let mut tap_names = Vec::new();
        let mut ch = cfg.n_filters << cfg.ratios.len();
        let name = |i: usize, what: &str| format!("{prefix}.model.{i}.{what}");
        let conv0 = StreamConv1d::from_store(s, &name(idx, "conv"), ch, cfg.dimension, cfg.kernel_size, 1, 1, true)?;
        tap_names.push(format!("seanet.model.{idx}"));
        idx += 1;
        let mut stages = Vec::new();
        for &r in &cfg.ratios {
            idx += 1; // ELU
            let c_out = ch / 2;
            let convtr = StreamConvTr1d::from_store(s, &name(idx, "convtr"), ch, c_out, r)?;
            tap_names.push(format!("seanet.model.{idx}"));
            idx += 1;
            let hidden = c_out / cfg.compress;
            if c_out == 0 || hidden == 0 {
                return Err(CoreError::new("seanet: n_filters too small for the ratios and compress"));
            }
            let mut res = Vec::new();
            for j in 0..cfg.n_residual_layers {
                let dil = cfg.dilation_base.pow(j as u32);
                res.push(ResBlock::from_store(s, &format!("{prefix}.model.{idx}"), &cfg, c_out, dil)?);
                tap_names.push(format!("seanet.model.{idx}"));
                idx += 1;
            }
            stages.push(Stage { ratio: r, c_out, convtr, res });
            ch = c_out;
        }
        idx += 1; // ELU
        let last = StreamConv1d::from_store(s, &name(idx, "conv"), cfg.channels, ch, cfg.last_kernel_size, 1, 1, true)?;
        tap_names.push(format!("seanet.model.{idx}"));
        Ok(Self { cfg, conv0, stages, last, tap_names })
    }

    /// Width of the input (the transformer's `d_model`).
    pub fn in_channels(&self) -> usize {
        self.cfg.dimension
    }

    /// Bytes of packed weights.
    pub fn weight_bytes(&self) -> usize {
        let mut n = self.conv0.gemm.weight_bytes() + self.last.gemm.weight_bytes();
        for st in &self.stages {
            n += st.convtr.gemm.weight_bytes();
            n += st.res.iter().map(ResBlock::weight_bytes).sum::<usize>();
        }
        n
    }

    /// Multiply-accumulates of the convolutions for `t0` input rows.
    pub fn macs(&self, t0: usize) -> usize {
        let mut n = conv_macs(&self.conv0, t0);
        let mut t = t0;
        for st in &self.stages {
            n += t * st.convtr.gemm.c_in * 2 * st.ratio * st.c_out;
            t *= st.ratio;
            n += st.res.iter().map(|rb| rb.macs(t)).sum::<usize>();
        }
        n + conv_macs(&self.last, t)
    }

    /// Rows and channels of each tap for `t0` input rows (same order as `tap_names`).
    pub fn tap_shapes(&self, t0: usize) -> Vec<(usize, usize)> {
        let mut v = vec![(t0, self.conv0.gemm.c_out)];
        let mut t = t0;
        for st in &self.stages {
            t *= st.ratio;
            v.push((t, st.c_out));
            for _ in &st.res {
                v.push((t, st.c_out));
            }
        }
        v.push((t, self.cfg.channels));
        v
    }

    /// `x` `[t0 × dimension]` (already in `st.input_mut(t0)`) → `audio` `[t0·hop × channels]`.
    pub fn forward(&self, st: &mut SeanetState, t0: usize, audio: &mut [f32], mut taps: Option<&mut Taps>, tap0: usize) {
        assert!(t0 <= st.max_in, "seanet: {t0} rows exceed the state's {}", st.max_in);
        let mut tap = tap0;
        let SeanetState { conv0_buf, conv0_out, partials, stage_out, res_bufs, last_buf, cols, g, h, tmp, .. } = st;
        self.conv0.step(conv0_buf, t0, cols, conv0_out);
        let c0 = self.conv0.gemm.c_out;
        if let Some(tp) = taps.as_deref_mut() {
            tp.put(tap, &conv0_out[..t0 * c0]);
        }
        tap += 1;
        let mut t = t0;
        let mut c = c0;
        for (i, stage) in self.stages.iter().enumerate() {
            // ELU in place on the previous output (not needed afterwards), then the transposed conv.
            let (before, after) = stage_out.split_at_mut(i);
            let x: &mut [f32] = if i == 0 { &mut conv0_out[..] } else { &mut before[i - 1][..] };
            elu(&mut x[..t * c]);
            let y = &mut after[0];
            stage.convtr.step(x, t, g, &mut partials[i], y);
            t *= stage.ratio;
            c = stage.c_out;
            if let Some(tp) = taps.as_deref_mut() {
                tp.put(tap, &y[..t * c]);
            }
            tap += 1;
            for (j, rb) in stage.res.iter().enumerate() {
                rb.forward(y, t, &mut res_bufs[i][j], cols, h, tmp);
                if let Some(tp) = taps.as_deref_mut() {
                    tp.put(tap, &y[..t * c]);
                }
                tap += 1;
            }
        }
        let x = if self.stages.is_empty() { &conv0_out[..] } else { &stage_out[self.stages.len() - 1][..] };
        let p = self.last.prev * c;
        last_buf[p..p + t * c].copy_from_slice(&x[..t * c]);
        elu(&mut last_buf[p..p + t * c]);
        self.last.step(last_buf, t, cols, audio);
        if let Some(tp) = taps {
            tp.put(tap, &audio[..t * self.cfg.channels]);
        }
    }
}

/// Per-stream SEANet state (carried conv rows and transposed-conv partials) plus scratch, sized for up to `max_in`
/// input rows per call.
pub struct SeanetState {
    max_in: usize,
    conv0_buf: Vec<f32>,
    conv0_prev: usize,
    conv0_out: Vec<f32>,
    partials: Vec<Vec<f32>>,
    stage_out: Vec<Vec<f32>>,
    res_bufs: Vec<Vec<Vec<f32>>>,
    last_buf: Vec<f32>,
    cols: Vec<f32>,
    g: Vec<f32>,
    h: Vec<f32>,
    tmp: Vec<f32>,
}

impl SeanetState {
    /// A fresh state for calls of up to `max_in` input rows.
    pub fn new(dec: &SeanetDecoder, max_in: usize) -> Result<Self> {
        let c0 = dec.conv0.gemm.c_out;
        let mut cols = dec.conv0.cols_len(max_in);
        let (mut g, mut h, mut tmp) = (0usize, 0usize, 0usize);
        let mut partials = Vec::new();
        let mut stage_out = Vec::new();
        let mut res_bufs = Vec::new();
        let mut t = max_in;
        for st in &dec.stages {
            g = g.max(st.convtr.scratch_len(t));
            partials.push(zeros(st.convtr.partial_len())?);
            t *= st.ratio;
            stage_out.push(zeros(t * st.c_out)?);
            let mut bufs = Vec::new();
            for rb in &st.res {
                bufs.push(zeros(rb.conv1.buf_len(t))?);
                cols = cols.max(rb.conv1.cols_len(t)).max(rb.conv2.cols_len(t));
                h = h.max(t * rb.conv1.gemm.c_out);
                tmp = tmp.max(t * st.c_out);
            }
            res_bufs.push(bufs);
        }
        cols = cols.max(dec.last.cols_len(t));
        Ok(Self {
            max_in,
            conv0_buf: zeros(dec.conv0.buf_len(max_in))?,
            conv0_prev: dec.conv0.prev * dec.cfg.dimension,
            conv0_out: zeros(max_in * c0)?,
            partials,
            stage_out,
            res_bufs,
            last_buf: zeros(dec.last.buf_len(t))?,
            cols: zeros(cols)?,
            g: zeros(g)?,
            h: zeros(h)?,
            tmp: zeros(tmp)?,
        })
    }

    /// Where the caller writes the next `t` input rows (`[t × dimension]`).
    pub fn input_mut(&mut self, t: usize, dimension: usize) -> &mut [f32] {
        &mut self.conv0_buf[self.conv0_prev..self.conv0_prev + t * dimension]
    }

    /// Back to the start of a stream: zero carried rows and partials.
    pub fn reset(&mut self) {
        self.conv0_buf.fill(0.0);
        for p in &mut self.partials {
            p.fill(0.0);
        }
        for bufs in &mut self.res_bufs {
            for b in bufs {
                b.fill(0.0);
            }
        }
        self.last_buf.fill(0.0);
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        let mut n = self.conv0_buf.len() + self.conv0_out.len() + self.last_buf.len();
        n += self.cols.len() + self.g.len() + self.h.len() + self.tmp.len();
        n += self.partials.iter().map(Vec::len).sum::<usize>() + self.stage_out.iter().map(Vec::len).sum::<usize>();
        n += self.res_bufs.iter().flatten().map(Vec::len).sum::<usize>();
        n * 4
    }
}
