//! The SEANet decoder of Mimi (spec §4.2 steps 4–11): conv k7, then per ratio [ELU, ConvTranspose (k = 2r,
//! stride r, halving the channels), ResBlocks], then ELU and a final conv to audio. Every conv is causal and
//! streaming; all state lives in a [`SeanetState`] per stream.
//!
//! A ResBlock computes `x + Conv_k1(ELU(Conv_k(ELU(x))))` with hidden width `dim / compress` and dilation
//! `dilation_base^j` for the `j`-th block of a stage.

use std::ops::Range;

use crate::conv::{StreamConv1d, StreamConvTr1d};
use crate::error::{CoreError, Result};
use crate::kernels::activation::elu_parallel as elu;
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

    /// Plans [`Self::from_store`]'s two convs to be packed as they are added.
    pub fn plan(s: &mut WeightStore, p: &str, cfg: &SeanetConfig, c: usize, dil: usize) {
        let hidden = c / cfg.compress;
        StreamConv1d::plan(s, &format!("{p}.block.1.conv"), hidden, c, cfg.residual_kernel_size, 1, dil, true);
        StreamConv1d::plan(s, &format!("{p}.block.3.conv"), c, hidden, 1, 1, 1, true);
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

/// What one op of the decoder is, from the config alone (no weights): enough to list its tensors, size its
/// buffers, count its work and name its tap.
#[derive(Clone, Debug)]
pub struct OpShape {
    /// Module index in the checkpoint (`{prefix}.model.{idx}`); the tap is `seanet.model.{idx}`.
    pub idx: usize,
    pub kind: OpKind,
    pub c_in: usize,
    pub c_out: usize,
    /// Rows in and out per SEANet input row (the product of the ratios before and after this op).
    pub rows_in: usize,
    pub rows_out: usize,
}

/// The four kinds of op, in the order they come.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OpKind {
    /// The input conv (`kernel_size`).
    Conv0,
    /// ELU, then a transposed conv upsampling by `ratio` and halving the channels.
    Up { ratio: usize },
    /// A ResBlock with this dilation.
    Res { dilation: usize },
    /// ELU, then the output conv (`last_kernel_size`) to audio.
    Last,
}

impl OpShape {
    /// Multiply-accumulates per SEANet input row.
    pub fn macs(&self, cfg: &SeanetConfig) -> usize {
        let (ci, co) = (self.c_in, self.c_out);
        match self.kind {
            OpKind::Conv0 => ci * cfg.kernel_size * co,
            OpKind::Up { ratio } => self.rows_in * ci * 2 * ratio * co,
            OpKind::Res { .. } => {
                let hidden = co / cfg.compress;
                self.rows_out * (co * cfg.residual_kernel_size * hidden + hidden * co)
            }
            OpKind::Last => self.rows_out * ci * cfg.last_kernel_size * co,
        }
    }

    /// The op's tensors and their shapes.
    fn tensors(&self, prefix: &str, cfg: &SeanetConfig) -> Vec<(String, Vec<usize>)> {
        let mut v = Vec::new();
        let mut conv = |name: String, shape: [usize; 3], bias: usize| {
            v.push((format!("{name}.weight"), shape.to_vec()));
            v.push((format!("{name}.bias"), vec![bias]));
        };
        let (p, ci, co) = (format!("{prefix}.model.{}", self.idx), self.c_in, self.c_out);
        match self.kind {
            OpKind::Conv0 => conv(format!("{p}.conv"), [co, ci, cfg.kernel_size], co),
            OpKind::Up { ratio } => conv(format!("{p}.convtr"), [ci, co, 2 * ratio], co),
            OpKind::Res { .. } => {
                let hidden = co / cfg.compress;
                conv(format!("{p}.block.1.conv"), [hidden, co, cfg.residual_kernel_size], hidden);
                conv(format!("{p}.block.3.conv"), [co, hidden, 1], co);
            }
            OpKind::Last => conv(format!("{p}.conv"), [co, ci, cfg.last_kernel_size], co),
        }
        v
    }
}

/// The decoder's ops in order: conv k7, per ratio [ELU + ConvTranspose, ResBlocks], ELU + the final conv.
pub fn op_shapes(cfg: &SeanetConfig) -> Result<Vec<OpShape>> {
    let mut ops = Vec::new();
    let mut ch = cfg.n_filters << cfg.ratios.len();
    let mut rows = 1;
    let op = |idx, kind, c_in, c_out, rows_in, rows_out| OpShape { idx, kind, c_in, c_out, rows_in, rows_out };
    ops.push(op(0, OpKind::Conv0, cfg.dimension, ch, 1, 1));
    let mut idx = 2; // model.1 is an ELU
    for &r in &cfg.ratios {
        let c_out = ch / 2;
        if c_out == 0 || c_out / cfg.compress == 0 {
            return Err(CoreError::new("seanet: n_filters too small for the ratios and compress"));
        }
        ops.push(op(idx, OpKind::Up { ratio: r }, ch, c_out, rows, rows * r));
        rows *= r;
        idx += 1;
        for j in 0..cfg.n_residual_layers {
            ops.push(op(idx, OpKind::Res { dilation: cfg.dilation_base.pow(j as u32) }, c_out, c_out, rows, rows));
            idx += 1;
        }
        ch = c_out;
        idx += 1; // the ELU before the next stage (or before the last conv)
    }
    ops.push(op(idx, OpKind::Last, ch, cfg.channels, rows, rows));
    Ok(ops)
}

/// Every tensor [`SeanetDecoder::from_store`] takes, with its shape (to check a checkpoint before taking anything).
pub fn expected_tensors(prefix: &str, cfg: &SeanetConfig) -> Vec<(String, Vec<usize>)> {
    let n = op_shapes(cfg).map_or(0, |o| o.len());
    expected_op_tensors(prefix, cfg, 0..n)
}

/// The tensors of the ops `ops` (indices into [`op_shapes`]).
pub fn expected_op_tensors(prefix: &str, cfg: &SeanetConfig, ops: Range<usize>) -> Vec<(String, Vec<usize>)> {
    let shapes = op_shapes(cfg).unwrap_or_default();
    shapes.get(ops).unwrap_or_default().iter().flat_map(|o| o.tensors(prefix, cfg)).collect()
}

enum Op {
    Conv0(StreamConv1d),
    Up(StreamConvTr1d),
    Res(ResBlock),
    Last(StreamConv1d),
}

/// The SEANet decoder's weights: all its ops, or the run of ops one part of a split decoder runs.
pub struct SeanetDecoder {
    pub cfg: SeanetConfig,
    ops: Vec<(OpShape, Op)>,
    /// Names of the taps [`SeanetDecoder::forward`] records, in order (`seanet.model.{i}`).
    pub tap_names: Vec<String>,
}

impl SeanetDecoder {
    /// Takes the `{prefix}.model.*` tensors (e.g. prefix `mimi.decoder`).
    pub fn from_store(s: &mut WeightStore, prefix: &str, cfg: SeanetConfig) -> Result<Self> {
        let n = op_shapes(&cfg)?.len();
        Self::from_store_ops(s, prefix, cfg, 0..n)
    }

    /// Takes only the tensors of the ops `ops` (indices into [`op_shapes`]).
    pub fn from_store_ops(s: &mut WeightStore, prefix: &str, cfg: SeanetConfig, ops: Range<usize>) -> Result<Self> {
        let shapes = op_shapes(&cfg)?;
        let shapes = shapes.get(ops.clone()).ok_or_else(|| CoreError::new(format!("seanet ops {ops:?} out of range")))?;
        let mut out = Vec::new();
        for o in shapes {
            let name = |what: &str| format!("{prefix}.model.{}.{what}", o.idx);
            let (ci, co) = (o.c_in, o.c_out);
            let op = match o.kind {
                OpKind::Conv0 => Op::Conv0(StreamConv1d::from_store(s, &name("conv"), co, ci, cfg.kernel_size, 1, 1, true)?),
                OpKind::Up { ratio } => Op::Up(StreamConvTr1d::from_store(s, &name("convtr"), ci, co, ratio)?),
                OpKind::Res { dilation } => {
                    Op::Res(ResBlock::from_store(s, &format!("{prefix}.model.{}", o.idx), &cfg, co, dilation)?)
                }
                OpKind::Last => Op::Last(StreamConv1d::from_store(s, &name("conv"), co, ci, cfg.last_kernel_size, 1, 1, true)?),
            };
            out.push((o.clone(), op));
        }
        let tap_names = out.iter().map(|(o, _)| format!("seanet.model.{}", o.idx)).collect();
        Ok(Self { cfg, ops: out, tap_names })
    }

    /// Plans the convs of the ops `ops` to be packed as they are added, as [`Self::from_store_ops`] packs them
    /// ([`WeightStore::plan`]).
    pub fn plan_ops(s: &mut WeightStore, prefix: &str, cfg: &SeanetConfig, ops: Range<usize>) -> Result<()> {
        for o in op_shapes(cfg)?.get(ops).unwrap_or_default() {
            let name = |what: &str| format!("{prefix}.model.{}.{what}", o.idx);
            let (ci, co) = (o.c_in, o.c_out);
            match o.kind {
                OpKind::Conv0 => StreamConv1d::plan(s, &name("conv"), co, ci, cfg.kernel_size, 1, 1, true),
                OpKind::Up { ratio } => StreamConvTr1d::plan(s, &name("convtr"), ci, co, ratio),
                OpKind::Res { dilation } => ResBlock::plan(s, &format!("{prefix}.model.{}", o.idx), cfg, co, dilation),
                OpKind::Last => StreamConv1d::plan(s, &name("conv"), co, ci, cfg.last_kernel_size, 1, 1, true),
            }
        }
        Ok(())
    }

    /// Whether this part runs no op at all.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Bytes of packed weights.
    pub fn weight_bytes(&self) -> usize {
        self.ops
            .iter()
            .map(|(_, op)| match op {
                Op::Conv0(c) | Op::Last(c) => c.gemm.weight_bytes(),
                Op::Up(c) => c.gemm.weight_bytes(),
                Op::Res(rb) => rb.weight_bytes(),
            })
            .sum()
    }

    /// Multiply-accumulates of the convolutions for `t0` SEANet input rows.
    pub fn macs(&self, t0: usize) -> usize {
        self.ops.iter().map(|(o, _)| t0 * o.macs(&self.cfg)).sum()
    }

    /// Rows and channels of each tap for `t0` SEANet input rows (same order as `tap_names`).
    pub fn tap_shapes(&self, t0: usize) -> Vec<(usize, usize)> {
        self.ops.iter().map(|(o, _)| (t0 * o.rows_out, o.c_out)).collect()
    }

    /// Runs the ops on the `t0·rows_in` rows of the first op's input, already in `st.input_mut(…)`, and writes
    /// the last op's output (audio after the final conv) to `out`. `t0` counts SEANet input rows.
    pub fn forward(&self, st: &mut SeanetState, t0: usize, out: &mut [f32], mut taps: Option<&mut Taps>, tap0: usize) {
        assert!(t0 <= st.max_in, "seanet: {t0} rows exceed the state's {}", st.max_in);
        let SeanetState { a, b, carried, cols, g, h, tmp, .. } = st;
        // The current activation is in `x`; ops that change its shape write `y` and swap the two.
        let (mut x, mut y) = (a, b);
        for (k, (o, op)) in self.ops.iter().enumerate() {
            let (t, ci, co) = (t0 * o.rows_in, o.c_in, o.c_out);
            let buf = &mut carried[k];
            let n_out = t0 * o.rows_out * co;
            match op {
                Op::Conv0(c) => {
                    let p = c.prev * ci;
                    buf[p..p + t * ci].copy_from_slice(&x[..t * ci]);
                    c.step(buf, t, cols, y);
                    std::mem::swap(&mut x, &mut y);
                }
                Op::Up(c) => {
                    // ELU in place on the previous output (not needed afterwards), then the transposed conv.
                    elu(&mut x[..t * ci]);
                    c.step(x, t, g, buf, y);
                    std::mem::swap(&mut x, &mut y);
                }
                Op::Res(rb) => rb.forward(x, t, buf, cols, h, tmp),
                Op::Last(c) => {
                    let p = c.prev * ci;
                    buf[p..p + t * ci].copy_from_slice(&x[..t * ci]);
                    elu(&mut buf[p..p + t * ci]);
                    c.step(buf, t, cols, y);
                    std::mem::swap(&mut x, &mut y);
                }
            }
            if let Some(tp) = taps.as_deref_mut() {
                tp.put(tap0 + k, &x[..n_out]);
            }
        }
        out.copy_from_slice(&x[..out.len()]);
    }
}

/// Per-stream SEANet state (each op's carried conv rows or transposed-conv partial) plus scratch, sized for up to
/// `max_in` SEANet input rows per call.
pub struct SeanetState {
    max_in: usize,
    /// Two activation buffers, each large enough for any activation of the part.
    a: Vec<f32>,
    b: Vec<f32>,
    /// One buffer per op: conv input rows (carried rows first), a transposed conv's partial, a ResBlock's rows.
    carried: Vec<Vec<f32>>,
    cols: Vec<f32>,
    g: Vec<f32>,
    h: Vec<f32>,
    tmp: Vec<f32>,
}

impl SeanetState {
    /// A fresh state for calls of up to `max_in` SEANet input rows; `input` is the size of the part's input
    /// activation per SEANet input row (it may start in the transformer, before the first op).
    pub fn new(dec: &SeanetDecoder, max_in: usize, input: usize) -> Result<Self> {
        let (mut act, mut cols, mut g, mut h, mut tmp) = (max_in * input, 0usize, 0usize, 0usize, 0usize);
        let mut carried = Vec::new();
        for (o, op) in &dec.ops {
            let (t, t_out) = (max_in * o.rows_in, max_in * o.rows_out);
            act = act.max(t * o.c_in).max(t_out * o.c_out);
            carried.push(zeros(match op {
                Op::Conv0(c) | Op::Last(c) => {
                    cols = cols.max(c.cols_len(t));
                    c.buf_len(t)
                }
                Op::Up(c) => {
                    g = g.max(c.scratch_len(t));
                    c.partial_len()
                }
                Op::Res(rb) => {
                    cols = cols.max(rb.conv1.cols_len(t)).max(rb.conv2.cols_len(t));
                    h = h.max(t * rb.conv1.gemm.c_out);
                    tmp = tmp.max(t * o.c_out);
                    rb.conv1.buf_len(t)
                }
            })?);
        }
        Ok(Self {
            max_in,
            a: zeros(act)?,
            b: zeros(act)?,
            carried,
            cols: zeros(cols)?,
            g: zeros(g)?,
            h: zeros(h)?,
            tmp: zeros(tmp)?,
        })
    }

    /// Where the caller writes the part's input (the first `len` values of the activation buffer).
    pub fn input_mut(&mut self, len: usize) -> &mut [f32] {
        &mut self.a[..len]
    }

    /// Back to the start of a stream: zero carried rows and partials.
    pub fn reset(&mut self) {
        for c in &mut self.carried {
            c.fill(0.0);
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        let mut n = self.a.len() + self.b.len() + self.cols.len() + self.g.len() + self.h.len() + self.tmp.len();
        n += self.carried.iter().map(Vec::len).sum::<usize>();
        n * 4
    }
}
