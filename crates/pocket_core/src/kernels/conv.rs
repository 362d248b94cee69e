//! One-dimensional convolutions for the Mimi codec, laid out as GEMMs on [`Linear`].
//!
//! Activations are **time-major**: `[T × C]`, one contiguous row of `C` channels per time step (the transpose of
//! PyTorch's `[C, T]`). Weights arrive in PyTorch's layouts (`Conv1d`: `[c_out, c_in, k]`, `ConvTranspose1d`:
//! `[c_in, c_out, k]`) and are packed once.
//!
//! - **Conv1d** (no padding: the streaming wrapper prepends the carried `previous` rows) is im2col + one GEMM: the
//!   im2col row of output step `t` is the concatenation of the `k` input rows `t·stride + j·dilation`, so the packed
//!   weight has `W'[c][j·c_in + i] = W[c][i][j]`. With `dilation = 1` the window is already contiguous in a
//!   time-major buffer: [`Conv1dGemm::forward`] hands the GEMM overlapping rows (`Linear::forward_strided`) and
//!   copies nothing.
//! - **ConvTranspose1d** is one GEMM `[T × c_in]·[c_in × (k·c_out)]` giving, for each input step, the `k` output
//!   rows it contributes to, followed by an overlap-add at stride `s`. Mimi only has `k = 2s`, where each output row
//!   receives exactly two contributions ([`overlap_add_2s`]).
//! - The depthwise ×`s` upsample (`groups = channels`, `k = 2s`) has the closed form
//!   `u[j] = e ⊙ w[j] + e_prev ⊙ w[s + j]` ([`upsample_depthwise_2s`]).
//!
//! Each fast kernel has a plain scalar reference (`*_ref`) in PyTorch's semantics; host tests compare them.

use crate::kernels::linear::Linear;
use crate::pool::{self, SharedOut};
use crate::simd::F32x4;

/// Output steps of a convolution without padding, or `None` when the input is shorter than the receptive field.
pub fn conv_out_len(t_in: usize, k: usize, stride: usize, dilation: usize) -> Option<usize> {
    let span = (k - 1) * dilation + 1;
    (t_in >= span && stride > 0).then(|| (t_in - span) / stride + 1)
}

/// Scalar reference Conv1d without padding. `x`: `[t_in × c_in]`, `w`: PyTorch `[c_out, c_in, k]`,
/// `y`: `[t_out × c_out]` with `t_out = conv_out_len(t_in, k, stride, dilation)`.
#[allow(clippy::too_many_arguments)]
pub fn conv1d_ref(
    x: &[f32],
    t_in: usize,
    c_in: usize,
    w: &[f32],
    c_out: usize,
    k: usize,
    stride: usize,
    dilation: usize,
    bias: Option<&[f32]>,
    y: &mut [f32],
) {
    let t_out = conv_out_len(t_in, k, stride, dilation).expect("input shorter than the kernel");
    for t in 0..t_out {
        for c in 0..c_out {
            let mut acc = 0.0f32;
            for i in 0..c_in {
                for j in 0..k {
                    acc += w[(c * c_in + i) * k + j] * x[(t * stride + j * dilation) * c_in + i];
                }
            }
            y[t * c_out + c] = acc + bias.map_or(0.0, |b| b[c]);
        }
    }
}

/// Scalar reference ConvTranspose1d, full output of `(t − 1)·stride + k` rows, bias included (PyTorch's
/// `conv_transpose1d` with no padding). `x`: `[t × c_in]`, `w`: PyTorch `[c_in, c_out, k]`, `y`: `[· × c_out]`.
#[allow(clippy::too_many_arguments)]
pub fn conv_tr1d_ref(
    x: &[f32],
    t: usize,
    c_in: usize,
    w: &[f32],
    c_out: usize,
    k: usize,
    stride: usize,
    bias: Option<&[f32]>,
    y: &mut [f32],
) {
    let t_out = (t - 1) * stride + k;
    for r in 0..t_out {
        for c in 0..c_out {
            y[r * c_out + c] = bias.map_or(0.0, |b| b[c]);
        }
    }
    for s in 0..t {
        for i in 0..c_in {
            let xv = x[s * c_in + i];
            for c in 0..c_out {
                for j in 0..k {
                    y[(s * stride + j) * c_out + c] += xv * w[(i * c_out + c) * k + j];
                }
            }
        }
    }
}

/// Scalar reference depthwise ConvTranspose1d (`groups = c`, one output channel per group, no bias), full output
/// of `(t − 1)·stride + k` rows. `x`: `[t × c]`, `w`: PyTorch `[c, 1, k]`.
pub fn conv_tr1d_depthwise_ref(x: &[f32], t: usize, c: usize, w: &[f32], k: usize, stride: usize, y: &mut [f32]) {
    let t_out = (t - 1) * stride + k;
    y[..t_out * c].fill(0.0);
    for s in 0..t {
        for ch in 0..c {
            for j in 0..k {
                y[(s * stride + j) * c + ch] += x[s * c + ch] * w[ch * k + j];
            }
        }
    }
}

/// Copies `n` floats.
#[inline]
fn copy(src: &[f32], dst: &mut [f32], n: usize) {
    dst[..n].copy_from_slice(&src[..n]);
}

/// `dst[i] += src[i]` for `n` values.
#[inline]
pub fn add_assign(dst: &mut [f32], src: &[f32], n: usize) {
    let (dst, src) = (&mut dst[..n], &src[..n]);
    let mut i = 0;
    while i + 4 <= n {
        F32x4::load(dst, i).add(F32x4::load(src, i)).store(dst, i);
        i += 4;
    }
    while i < n {
        dst[i] += src[i];
        i += 1;
    }
}

/// im2col for a Conv1d without padding: row `t` of `cols` (`k·c_in` values) is the concatenation of input rows
/// `t·stride + j·dilation`, `j = 0…k−1`.
pub fn im2col(x: &[f32], c_in: usize, k: usize, stride: usize, dilation: usize, t_out: usize, cols: &mut [f32]) {
    let row = k * c_in;
    if dilation == 1 {
        // The k rows are adjacent: one copy per output step.
        for t in 0..t_out {
            let src = t * stride * c_in;
            copy(&x[src..], &mut cols[t * row..], row);
        }
    } else {
        for t in 0..t_out {
            for j in 0..k {
                let src = (t * stride + j * dilation) * c_in;
                copy(&x[src..], &mut cols[t * row + j * c_in..], c_in);
            }
        }
    }
}

/// Dot product of two equally long slices (4 independent accumulators, fixed summation order).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let mut acc = [F32x4::zero(); 4];
    let mut i = 0;
    while i + 16 <= n {
        acc[0] = F32x4::load(a, i).madd(F32x4::load(b, i), acc[0]);
        acc[1] = F32x4::load(a, i + 4).madd(F32x4::load(b, i + 4), acc[1]);
        acc[2] = F32x4::load(a, i + 8).madd(F32x4::load(b, i + 8), acc[2]);
        acc[3] = F32x4::load(a, i + 12).madd(F32x4::load(b, i + 12), acc[3]);
        i += 16;
    }
    while i + 4 <= n {
        acc[0] = F32x4::load(a, i).madd(F32x4::load(b, i), acc[0]);
        i += 4;
    }
    let mut s = acc[0].add(acc[1]).add(acc[2].add(acc[3])).sum();
    while i < n {
        s += a[i] * b[i];
        i += 1;
    }
    s
}

/// A Conv1d packed for im2col + GEMM.
pub struct Conv1dGemm {
    pub c_in: usize,
    pub c_out: usize,
    pub k: usize,
    pub stride: usize,
    pub dilation: usize,
    /// The GEMM weight (`c_out ≥ 2`).
    lin: Option<Linear>,
    /// For `c_out = 1`: the im2col-ordered weight row and the bias (a GEMM would waste 15 of 16 panel lanes).
    row: Vec<f32>,
    bias0: f32,
}

impl Conv1dGemm {
    /// Packs a PyTorch `[c_out, c_in, k]` weight.
    pub fn new(
        w: &[f32],
        bias: Option<&[f32]>,
        c_out: usize,
        c_in: usize,
        k: usize,
        stride: usize,
        dilation: usize,
    ) -> Self {
        assert_eq!(w.len(), c_out * c_in * k, "conv weight size");
        Self::from_fn(&|i| w[i], bias.map(|b| b.to_vec()), c_out, c_in, k, stride, dilation)
    }

    /// [`Self::new`] from a function giving element `i` of the `[c_out, c_in, k]` weight (e.g. read from its
    /// BF16 form), without materialising an f32 copy of it.
    pub fn from_fn(
        w: &dyn Fn(usize) -> f32,
        bias: Option<Vec<f32>>,
        c_out: usize,
        c_in: usize,
        k: usize,
        stride: usize,
        dilation: usize,
    ) -> Self {
        let at = |c: usize, col: usize| w((c * c_in + col % c_in) * k + col / c_in);
        if c_out == 1 {
            let row = (0..k * c_in).map(|col| at(0, col)).collect();
            return Self {
                c_in,
                c_out,
                k,
                stride,
                dilation,
                lin: None,
                row,
                bias0: bias.map_or(0.0, |b| b[0]),
            };
        }
        let lin = Linear::from_fn(c_out, k * c_in, bias, at);
        Self { c_in, c_out, k, stride, dilation, lin: Some(lin), row: Vec::new(), bias0: 0.0 }
    }

    /// Scratch floats [`Self::forward`] needs in `cols` for `t_out` output steps (none without dilation: the
    /// GEMM reads the windows in place).
    pub fn cols_len(&self, t_out: usize) -> usize {
        if self.dilation == 1 { 0 } else { t_out * self.k * self.c_in }
    }

    /// `y[t_out × c_out] = conv(x)` without padding; `x` holds at least `(t_out − 1)·stride + (k − 1)·dilation + 1`
    /// rows. `cols` is scratch of [`Self::cols_len`] floats.
    pub fn forward(&self, x: &[f32], t_out: usize, cols: &mut [f32], y: &mut [f32]) {
        let row = self.k * self.c_in;
        match &self.lin {
            None if self.dilation == 1 => {
                // Output steps are independent: the threads build splits them between threads.
                let out = SharedOut::new(&mut y[..t_out]);
                pool::parallel_ranges(t_out, t_out * row, &|steps| {
                    // SAFETY: these steps' outputs belong to this chunk alone.
                    let y = unsafe { out.part(steps.start, steps.len()) };
                    for (yt, t) in y.iter_mut().zip(steps) {
                        let s = t * self.stride * self.c_in;
                        *yt = dot(&x[s..s + row], &self.row) + self.bias0;
                    }
                });
            }
            None => {
                im2col(x, self.c_in, self.k, self.stride, self.dilation, t_out, cols);
                for (yt, c) in y[..t_out].iter_mut().zip(cols.chunks_exact(row)) {
                    *yt = dot(c, &self.row) + self.bias0;
                }
            }
            // Without dilation, the im2col row of step t is x[t·stride·c_in ..][..k·c_in]: read in place.
            Some(lin) if self.dilation == 1 => lin.forward_strided(x, self.stride * self.c_in, y, t_out),
            Some(lin) => {
                im2col(x, self.c_in, self.k, self.stride, self.dilation, t_out, cols);
                lin.forward(cols, y, t_out);
            }
        }
    }

    /// Bytes of packed weights.
    pub fn weight_bytes(&self) -> usize {
        self.lin.as_ref().map_or(self.row.len() * 4, |l| l.weight_bytes())
    }
}

/// Overlap-add of a `k = 2s` transposed convolution's GEMM output, streaming form.
///
/// `g` is `[t × 2s × c]`: for input step `τ`, the `2s` output rows it contributes to (without bias). Output row
/// `τ·s + r` (`r < s`) is `g[τ][r] + g[τ−1][s + r] + bias`, where `g[−1][s + r]` is the carried `partial[r]`;
/// afterwards `partial[r] = g[t−1][s + r]` (the part that belongs to the next call, bias excluded). `y`: `[t·s × c]`.
pub fn overlap_add_2s(g: &[f32], t: usize, s: usize, c: usize, bias: &[f32], partial: &mut [f32], y: &mut [f32]) {
    let blk = 2 * s * c;
    for tau in 0..t {
        for r in 0..s {
            let cur = &g[tau * blk + r * c..tau * blk + (r + 1) * c];
            let prev = if tau == 0 { &partial[r * c..(r + 1) * c] } else { &g[(tau - 1) * blk + (s + r) * c..] };
            let out = &mut y[(tau * s + r) * c..(tau * s + r + 1) * c];
            let mut i = 0;
            while i + 4 <= c {
                // (g + prev) + bias, the order of the reference (GEMM output, partial, then bias).
                let v = F32x4::load(cur, i).add(F32x4::load(prev, i)).add(F32x4::load(bias, i));
                v.store(out, i);
                i += 4;
            }
            while i < c {
                out[i] = cur[i] + prev[i] + bias[i];
                i += 1;
            }
        }
    }
    let last = (t - 1) * blk + s * c;
    partial[..s * c].copy_from_slice(&g[last..last + s * c]);
}

/// Scalar reference of the streaming transposed convolution step (spec §4.3), for any `k ≥ stride`: computes the
/// full output (bias included), adds `partial` to its first `k − stride` rows, stores the last `k − stride` rows
/// minus bias as the new `partial`, and writes the first `t·stride` rows to `y`.
#[allow(clippy::too_many_arguments)]
pub fn conv_tr1d_streaming_ref(
    x: &[f32],
    t: usize,
    c_in: usize,
    w: &[f32],
    c_out: usize,
    k: usize,
    stride: usize,
    bias: Option<&[f32]>,
    partial: &mut [f32],
    y: &mut [f32],
) {
    let full = (t - 1) * stride + k;
    let mut tmp = vec![0.0f32; full * c_out];
    conv_tr1d_ref(x, t, c_in, w, c_out, k, stride, bias, &mut tmp);
    let p = k - stride;
    for i in 0..p * c_out {
        tmp[i] += partial[i];
    }
    for r in 0..p {
        for c in 0..c_out {
            partial[r * c_out + c] = tmp[(t * stride + r) * c_out + c] - bias.map_or(0.0, |b| b[c]);
        }
    }
    y[..t * stride * c_out].copy_from_slice(&tmp[..t * stride * c_out]);
}

/// A `k = 2s` ConvTranspose1d packed as one GEMM plus [`overlap_add_2s`].
pub struct ConvTr1dGemm {
    pub c_in: usize,
    pub c_out: usize,
    pub stride: usize,
    lin: Linear,
    bias: Vec<f32>,
}

impl ConvTr1dGemm {
    /// Packs a PyTorch `[c_in, c_out, 2·stride]` weight.
    pub fn new(w: &[f32], bias: Option<&[f32]>, c_in: usize, c_out: usize, stride: usize) -> Self {
        assert_eq!(w.len(), c_in * c_out * 2 * stride, "conv transpose weight size");
        Self::from_fn(&|i| w[i], bias.map(|b| b.to_vec()), c_in, c_out, stride)
    }

    /// [`Self::new`] from a function giving element `i` of the `[c_in, c_out, 2·stride]` weight.
    pub fn from_fn(w: &dyn Fn(usize) -> f32, bias: Option<Vec<f32>>, c_in: usize, c_out: usize, stride: usize) -> Self {
        let k = 2 * stride;
        // GEMM column j·c_out + c (output row j of the step, channel c) ← W[i][c][j].
        let lin = Linear::from_fn(k * c_out, c_in, None, |col, i| w((i * c_out + col % c_out) * k + col / c_out));
        let bias = bias.unwrap_or_else(|| vec![0.0; c_out]);
        Self { c_in, c_out, stride, lin, bias }
    }

    /// Scratch floats needed in `g` for `t` input steps.
    pub fn scratch_len(&self, t: usize) -> usize {
        t * 2 * self.stride * self.c_out
    }

    /// One streaming step: `x` `[t × c_in]` → `y` `[t·stride × c_out]`, updating `partial` (`[stride × c_out]`).
    pub fn forward(&self, x: &[f32], t: usize, g: &mut [f32], partial: &mut [f32], y: &mut [f32]) {
        self.lin.forward(x, g, t);
        overlap_add_2s(g, t, self.stride, self.c_out, &self.bias, partial, y);
    }

    /// Bytes of packed weights.
    pub fn weight_bytes(&self) -> usize {
        self.lin.weight_bytes()
    }
}

/// The depthwise `k = 2s` upsample in closed form, streaming: for each input step `e` (with `e_prev` the step before,
/// `prev` carried across calls), output rows `u[j] = e ⊙ w[j] + e_prev ⊙ w[s + j]`, `j < s`. `x`: `[t × c]`,
/// `wt`: the weight transposed to `[2s × c]`, `prev`: `[c]`, `u`: `[t·s × c]`.
pub fn upsample_depthwise_2s(x: &[f32], t: usize, c: usize, wt: &[f32], s: usize, prev: &mut [f32], u: &mut [f32]) {
    for tau in 0..t {
        let e = &x[tau * c..(tau + 1) * c];
        let ep = if tau == 0 { &prev[..c] } else { &x[(tau - 1) * c..tau * c] };
        for j in 0..s {
            let (w0, w1) = (&wt[j * c..(j + 1) * c], &wt[(s + j) * c..(s + j + 1) * c]);
            let out = &mut u[(tau * s + j) * c..(tau * s + j + 1) * c];
            let mut i = 0;
            while i + 4 <= c {
                let a = F32x4::load(e, i).mul(F32x4::load(w0, i));
                a.add(F32x4::load(ep, i).mul(F32x4::load(w1, i))).store(out, i);
                i += 4;
            }
            while i < c {
                out[i] = e[i] * w0[i] + ep[i] * w1[i];
                i += 1;
            }
        }
    }
    prev[..c].copy_from_slice(&x[(t - 1) * c..t * c]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{max_rel_diff, random_vec};

    fn conv_case(c_in: usize, c_out: usize, k: usize, stride: usize, dilation: usize, t_out: usize) {
        crate::pool::start_host_helpers(2);
        let t_in = (t_out - 1) * stride + (k - 1) * dilation + 1;
        let x = random_vec(t_in * c_in, 11);
        let w = random_vec(c_out * c_in * k, 12);
        let b = random_vec(c_out, 13);
        let mut want = vec![0.0; t_out * c_out];
        conv1d_ref(&x, t_in, c_in, &w, c_out, k, stride, dilation, Some(&b), &mut want);
        let conv = Conv1dGemm::new(&w, Some(&b), c_out, c_in, k, stride, dilation);
        let mut cols = vec![0.0; conv.cols_len(t_out)];
        let mut got = vec![0.0; t_out * c_out];
        conv.forward(&x, t_out, &mut cols, &mut got);
        let rel = max_rel_diff(&got, &want);
        assert!(rel < 1e-5, "conv c_in={c_in} c_out={c_out} k={k} s={stride} d={dilation}: rel {rel}");
        let mut one = vec![0.0; t_out * c_out];
        crate::pool::run_inline(|| conv.forward(&x, t_out, &mut cols, &mut one));
        assert_eq!(got, one, "split between threads = one thread, bit for bit");
    }

    #[test]
    fn conv1d_gemm_matches_reference() {
        conv_case(64, 64, 7, 1, 1, 16); // SEANet first conv (tiny widths)
        conv_case(32, 16, 3, 1, 1, 96); // ResBlock k3
        conv_case(16, 32, 1, 1, 1, 50); // ResBlock k1: no im2col
        conv_case(64, 1, 3, 1, 1, 200); // output conv: single channel (dot path)
        conv_case(64, 1, 7, 1, 1, 1920); // Mimi's output conv for one frame: dot path split between threads
        conv_case(24, 5, 3, 2, 3, 9); // stride and dilation (im2col)
        conv_case(12, 20, 4, 2, 1, 7); // stride without dilation: overlapping GEMM rows read in place
        conv_case(7, 1, 4, 3, 2, 11); // single channel with dilation (im2col + dot)
        conv_case(13, 19, 5, 1, 1, 3); // ragged widths
    }

    #[test]
    fn conv1d_ref_matches_direct_formula() {
        // An independent check of the reference on a hand-sized case: y[t][c] = Σ_j Σ_i w[c][i][j]·x[t+2j][i] + b[c].
        let (c_in, c_out, k) = (2, 1, 2);
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]; // 4 steps × 2 channels
        let w = [0.5, -1.0, 2.0, 0.25]; // w[0][0] = [0.5, -1], w[0][1] = [2, 0.25]
        let mut y = [0.0; 2];
        conv1d_ref(&x, 4, c_in, &w, c_out, k, 1, 2, Some(&[0.125]), &mut y);
        // t=0: x[0]=(1,2), x[2]=(5,6): 0.5·1 + (−1)·5 + 2·2 + 0.25·6 = 1.0, + 0.125
        // t=1: x[1]=(3,4), x[3]=(7,8): 0.5·3 + (−1)·7 + 2·4 + 0.25·8 = 4.5, + 0.125
        assert_eq!(y, [1.125, 4.625]);
    }

    fn convtr_case(c_in: usize, c_out: usize, s: usize, t: usize, calls: usize) {
        let k = 2 * s;
        let w = random_vec(c_in * c_out * k, 21);
        let b = random_vec(c_out, 22);
        let tr = ConvTr1dGemm::new(&w, Some(&b), c_in, c_out, s);
        let (mut p_ref, mut p_fast) = (vec![0.0; s * c_out], vec![0.0; s * c_out]);
        let mut g = vec![0.0; tr.scratch_len(t)];
        for call in 0..calls {
            let x = random_vec(t * c_in, 30 + call as u32);
            let (mut want, mut got) = (vec![0.0; t * s * c_out], vec![0.0; t * s * c_out]);
            conv_tr1d_streaming_ref(&x, t, c_in, &w, c_out, k, s, Some(&b), &mut p_ref, &mut want);
            tr.forward(&x, t, &mut g, &mut p_fast, &mut got);
            let rel = max_rel_diff(&got, &want);
            assert!(rel < 1e-5, "convtr c_in={c_in} c_out={c_out} s={s} t={t} call {call}: rel {rel}");
            assert!(max_rel_diff(&p_fast, &p_ref) < 1e-5, "partial after call {call}");
        }
    }

    #[test]
    fn conv_tr_gemm_matches_streaming_reference() {
        convtr_case(64, 32, 6, 16, 3);
        convtr_case(32, 16, 5, 96, 2);
        convtr_case(16, 8, 4, 480, 2);
        convtr_case(9, 7, 3, 5, 3); // ragged channels
    }

    #[test]
    fn streaming_conv_tr_equals_one_shot() {
        // The streaming rule reproduces the one-shot full output, chunk by chunk (with the bias added once).
        let (c_in, c_out, s, t) = (5, 3, 4, 6);
        let k = 2 * s;
        let w = random_vec(c_in * c_out * k, 41);
        let b = random_vec(c_out, 42);
        let x = random_vec(2 * t * c_in, 43);
        let mut full = vec![0.0; ((2 * t - 1) * s + k) * c_out];
        conv_tr1d_ref(&x, 2 * t, c_in, &w, c_out, k, s, Some(&b), &mut full);
        let mut partial = vec![0.0; s * c_out];
        let mut y = vec![0.0; 2 * t * s * c_out];
        let (y0, y1) = y.split_at_mut(t * s * c_out);
        conv_tr1d_streaming_ref(&x[..t * c_in], t, c_in, &w, c_out, k, s, Some(&b), &mut partial, y0);
        conv_tr1d_streaming_ref(&x[t * c_in..], t, c_in, &w, c_out, k, s, Some(&b), &mut partial, y1);
        assert!(max_rel_diff(&y, &full[..2 * t * s * c_out]) < 1e-6);
    }

    #[test]
    fn upsample_closed_form_matches_depthwise_reference() {
        let (c, s, t) = (20, 16, 3);
        let k = 2 * s;
        let w = random_vec(c * k, 51); // [c, 1, k]
        let x = random_vec(t * c, 52);
        let mut wt = vec![0.0; k * c];
        for ch in 0..c {
            for j in 0..k {
                wt[j * c + ch] = w[ch * k + j];
            }
        }
        let mut full = vec![0.0; ((t - 1) * s + k) * c];
        conv_tr1d_depthwise_ref(&x, t, c, &w, k, s, &mut full);
        // Two calls (1 step, then 2 steps) carry the previous step.
        let mut prev = vec![0.0; c];
        let mut u = vec![0.0; t * s * c];
        let (u0, u1) = u.split_at_mut(s * c);
        upsample_depthwise_2s(&x[..c], 1, c, &wt, s, &mut prev, u0);
        upsample_depthwise_2s(&x[c..], t - 1, c, &wt, s, &mut prev, u1);
        assert!(max_rel_diff(&u, &full[..t * s * c]) < 1e-6);
    }
}
