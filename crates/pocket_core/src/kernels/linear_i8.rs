//! Int8 linear layers for the opt-in quantised FlowLM (`quantize: true`), in the manner of the reference's
//! `torch` dynamic quantisation: weights quantised once at load, activations quantised on the fly before each
//! GEMV/GEMM, integer dot products, one float rescale per output.
//!
//! - Weights: symmetric int8 with one scale per output row, `s_w[c] = max|W[c]| / 127`, `q = round(W / s_w)`.
//! - Activations: symmetric int8 with one scale per input row, `s_x[r] = max|x[r]| / 127`, `q = round(x · 127 /
//!   max|x[r]|)` (ties to even), widened to i16 so pairs of them form the lanes `i32x4.dot_i16x8_s` expects.
//! - `y[r][c] = (Σₖ q_x[r][k] · q_w[c][k]) as f32 · (s_x[r] · s_w[c]) (+ b[c])`.
//!
//! The integer sums are exact (|q| ≤ 127 and k ≤ 2¹⁷ keep them inside i32), so the SIMD kernel and the scalar
//! reference give bit-identical results on every engine: the mode is deterministic across runtimes.
//!
//! Packing: panels of [`PANEL`] output columns as in [`super::linear`], but over *pairs* of inputs: for input pair
//! `j`, the panel stores 32 bytes `[W[c][2j], W[c][2j+1]]` for `c = 0..16`. One 16-byte load holds 8 columns × 2
//! inputs; sign-extending its halves gives two `i16x8` vectors that `dot_i16x8_s` multiplies by the splatted
//! activation pair, producing 4 column sums each. An odd `n_in` is padded with a zero input.

use super::linear::PANEL;

/// Per-row int8 activations (widened to i16) and their scales: scratch owned by the caller, grown only when a call
/// has more rows or wider rows than any before.
#[derive(Default)]
pub struct QuantActs {
    q: Vec<i16>,
    scale: Vec<f32>,
}

impl QuantActs {
    /// Quantises `m` rows of width `k` from `x` into rows of `k_pad` (even, ≥ k) values, zero-padded.
    pub fn quantize(&mut self, x: &[f32], m: usize, k: usize, k_pad: usize) {
        if self.q.len() < m * k_pad {
            self.q.resize(m * k_pad, 0);
        }
        if self.scale.len() < m {
            self.scale.resize(m, 0.0);
        }
        for r in 0..m {
            let (row, q) = (&x[r * k..(r + 1) * k], &mut self.q[r * k_pad..(r + 1) * k_pad]);
            self.scale[r] = quantize_row(row, &mut q[..k]);
            q[k..].fill(0);
        }
    }
}

/// Symmetric int8 quantisation of one row into `q`; returns the scale (0 for an all-zero row).
pub fn quantize_row(x: &[f32], q: &mut [i16]) -> f32 {
    let amax = x.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    if amax == 0.0 || !amax.is_finite() {
        q.fill(0);
        return if amax == 0.0 { 0.0 } else { f32::NAN };
    }
    let inv = 127.0 / amax;
    for (o, &v) in q.iter_mut().zip(x) {
        *o = (v * inv).round_ties_even().clamp(-127.0, 127.0) as i16;
    }
    amax / 127.0
}

/// An int8 weight matrix packed for [`LinearI8::forward`].
pub struct LinearI8 {
    pub n_out: usize,
    pub n_in: usize,
    /// `n_in` rounded up to even.
    k_pad: usize,
    panels: Vec<i8>,
    scales: Vec<f32>,
    bias: Option<Vec<f32>>,
}

impl LinearI8 {
    /// Quantises and packs a row-major `[n_out, n_in]` weight.
    pub fn new(w: &[f32], bias: Option<&[f32]>, n_out: usize, n_in: usize) -> Self {
        assert_eq!(w.len(), n_out * n_in, "linear weight size");
        let k_pad = n_in + n_in % 2;
        let n_panels = n_out.div_ceil(PANEL);
        let mut panels = vec![0i8; n_panels * k_pad * PANEL];
        let mut scales = vec![0.0f32; n_out];
        let mut q = vec![0i16; n_in];
        for c in 0..n_out {
            scales[c] = quantize_row(&w[c * n_in..(c + 1) * n_in], &mut q);
            let (p, lane) = (c / PANEL, c % PANEL);
            let base = p * k_pad * PANEL + lane * 2;
            for (i, &v) in q.iter().enumerate() {
                panels[base + (i / 2) * 2 * PANEL + i % 2] = v as i8;
            }
        }
        Self { n_out, n_in, k_pad, panels, scales, bias: bias.map(|b| b.to_vec()) }
    }

    /// Bytes of packed weights and scales.
    pub fn weight_bytes(&self) -> usize {
        self.panels.len() + self.scales.len() * 4
    }

    /// The dequantised weight `W[c][i]` (what the integer kernel multiplies by, for accuracy checks).
    pub fn weight(&self, c: usize, i: usize) -> f32 {
        let (p, lane) = (c / PANEL, c % PANEL);
        self.panels[p * self.k_pad * PANEL + (i / 2) * 2 * PANEL + lane * 2 + i % 2] as f32 * self.scales[c]
    }

    /// `y[m×n_out] = x[m×n_in] · Wᵀ + b` with dynamically quantised activations (`acts` is scratch).
    pub fn forward(&self, x: &[f32], y: &mut [f32], m: usize, acts: &mut QuantActs) {
        self.run(x, y, m, acts, panel_dot);
    }

    /// Scalar reference of [`LinearI8::forward`] (same packing and quantisation, plain integer loops).
    pub fn forward_ref(&self, x: &[f32], y: &mut [f32], m: usize, acts: &mut QuantActs) {
        self.run(x, y, m, acts, panel_dot_ref);
    }

    fn run(&self, x: &[f32], y: &mut [f32], m: usize, acts: &mut QuantActs, dot: PanelDot) {
        let (n, k, kp) = (self.n_out, self.n_in, self.k_pad);
        assert!(x.len() >= m * k && y.len() >= m * n, "linear buffer sizes");
        acts.quantize(x, m, k, kp);
        let mut acc = [[0i32; PANEL]; 2];
        for p in 0..n.div_ceil(PANEL) {
            let panel = &self.panels[p * kp * PANEL..(p + 1) * kp * PANEL];
            let (c0, width) = (p * PANEL, PANEL.min(n - p * PANEL));
            let mut r = 0;
            while r < m {
                // two rows per pass share each widened weight vector; a last odd row goes alone
                let rows = (m - r).min(2);
                dot(panel, &acts.q[r * kp..(r + rows) * kp], rows, &mut acc);
                for (i, a) in acc[..rows].iter().enumerate() {
                    let sx = acts.scale[r + i];
                    let out = &mut y[(r + i) * n + c0..(r + i) * n + c0 + width];
                    for (j, o) in out.iter_mut().enumerate() {
                        *o = a[j] as f32 * (sx * self.scales[c0 + j]);
                        if let Some(b) = &self.bias {
                            *o += b[c0 + j];
                        }
                    }
                }
                r += rows;
            }
        }
    }
}

/// `rows` (1 or 2) activation rows (i16, even length each, consecutive in `x`) against one panel: 16 exact integer
/// column sums per row.
type PanelDot = fn(&[i8], &[i16], usize, &mut [[i32; PANEL]; 2]);

/// Scalar reference of the panel dot product.
fn panel_dot_ref(panel: &[i8], x: &[i16], rows: usize, acc: &mut [[i32; PANEL]; 2]) {
    let kp = x.len() / rows;
    for (r, a) in acc[..rows].iter_mut().enumerate() {
        *a = [0; PANEL];
        for (j, pair) in x[r * kp..(r + 1) * kp].chunks_exact(2).enumerate() {
            let w = &panel[j * 2 * PANEL..(j + 1) * 2 * PANEL];
            for (c, a) in a.iter_mut().enumerate() {
                *a += w[2 * c] as i32 * pair[0] as i32 + w[2 * c + 1] as i32 * pair[1] as i32;
            }
        }
    }
}

/// `i32x4.dot_i16x8_s` over sign-extended weight halves: four accumulators of four columns per row. Two rows keep
/// 8 accumulators, 4 widened weights and 2 activation pairs live (14 vectors: no spills in V8's 16 registers).
#[cfg(target_arch = "wasm32")]
fn panel_dot(panel: &[i8], x: &[i16], rows: usize, acc: &mut [[i32; PANEL]; 2]) {
    use core::arch::wasm32::*;
    #[inline(always)]
    fn pair(p: &[i16]) -> v128 {
        i32x4_splat((p[0] as u16 as u32 | (p[1] as u16 as u32) << 16) as i32)
    }
    #[inline(always)]
    fn widen(w: &[i8]) -> [v128; 4] {
        // SAFETY: `w` holds 32 bytes; wasm loads may be unaligned.
        let (w0, w1) = unsafe { (v128_load(w.as_ptr() as *const v128), v128_load(w.as_ptr().add(16) as *const v128)) };
        [i16x8_extend_low_i8x16(w0), i16x8_extend_high_i8x16(w0), i16x8_extend_low_i8x16(w1), i16x8_extend_high_i8x16(w1)]
    }
    let kp = x.len() / rows;
    let mut a = [i32x4_splat(0); 4];
    let mut b = [i32x4_splat(0); 4];
    if rows == 2 {
        let (x0, x1) = x.split_at(kp);
        for ((w, p), q) in panel.chunks_exact(2 * PANEL).zip(x0.chunks_exact(2)).zip(x1.chunks_exact(2)) {
            let (w, u, v) = (widen(w), pair(p), pair(q));
            for j in 0..4 {
                a[j] = i32x4_add(a[j], i32x4_dot_i16x8(w[j], u));
                b[j] = i32x4_add(b[j], i32x4_dot_i16x8(w[j], v));
            }
        }
    } else {
        for (w, p) in panel.chunks_exact(2 * PANEL).zip(x.chunks_exact(2)) {
            let (w, u) = (widen(w), pair(p));
            for j in 0..4 {
                a[j] = i32x4_add(a[j], i32x4_dot_i16x8(w[j], u));
            }
        }
    }
    for (out, v) in acc.iter_mut().zip([a, b]).take(rows) {
        for (j, v) in v.iter().enumerate() {
            // SAFETY: a row of acc holds 16 i32 = four v128.
            unsafe { v128_store(out.as_mut_ptr().add(4 * j) as *mut v128, *v) };
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
use panel_dot_ref as panel_dot;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::linear::matmul_ref;
    use crate::testing::random_vec;

    /// `y` against the f32 product of the *dequantised* weights and activations (exact up to f32 rounding).
    fn check(m: usize, n: usize, k: usize, with_bias: bool) {
        let w = random_vec(n * k, 1);
        let x = random_vec(m * k, 2);
        let b = random_vec(n, 3);
        let bias = with_bias.then_some(&b[..]);
        let l = LinearI8::new(&w, bias, n, k);
        let (mut got, mut refr) = (vec![0.0; m * n], vec![0.0; m * n]);
        let mut acts = QuantActs::default();
        l.forward(&x, &mut got, m, &mut acts);
        l.forward_ref(&x, &mut refr, m, &mut acts);
        assert_eq!(got, refr, "SIMD and scalar reference agree bit for bit");
        // dequantised operands in f64
        let wd: Vec<f32> = (0..n * k).map(|j| l.weight(j / k, j % k)).collect();
        let mut xd = vec![0.0f32; m * k];
        for r in 0..m {
            let mut q = vec![0i16; k];
            let s = quantize_row(&x[r * k..(r + 1) * k], &mut q);
            for i in 0..k {
                xd[r * k + i] = q[i] as f32 * s;
            }
        }
        let mut want = vec![0.0; m * n];
        matmul_ref(&xd, &wd, bias, &mut want, m, n, k);
        let scale = want.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        for (g, e) in got.iter().zip(&want) {
            assert!((g - e).abs() <= 1e-5 * scale, "m={m} n={n} k={k}: {g} vs {e}");
        }
        // and against the unquantised product, loosely (int8 error)
        matmul_ref(&x, &w, bias, &mut want, m, n, k);
        let err = got.iter().zip(&want).fold(0.0f32, |a, (g, e)| a.max((g - e).abs()));
        assert!(err <= 0.02 * scale, "quantisation error {err} vs scale {scale}");
    }

    #[test]
    fn shapes() {
        check(1, 3072, 1024, false);
        check(1, 33, 7, true);
        check(5, 40, 17, true);
        check(16, 2048, 512, false);
    }

    #[test]
    fn quantize_row_rounds_ties_to_even_and_handles_zero() {
        let mut q = [0i16; 4];
        assert_eq!(quantize_row(&[127.0, 0.5, -1.5, 2.5], &mut q), 1.0);
        assert_eq!(q, [127, 0, -2, 2]);
        assert_eq!(quantize_row(&[0.0; 4], &mut q), 0.0);
        assert_eq!(q, [0; 4]);
    }
}
