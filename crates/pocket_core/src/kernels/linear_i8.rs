//! Int8 linear layers for the opt-in quantised FlowLM (`quantize: true`), in the manner of the reference's
//! `torch` dynamic quantisation: weights quantised once at load, activations quantised on the fly before each
//! GEMV/GEMM, integer dot products, one float rescale per output.
//!
//! - Weights: symmetric int8 with one scale per output row, `s_w[c] = max|W[c]| / 127`, `q = round(W / s_w)`.
//! - Activations: symmetric with one scale per input row, `s_x[r] = max|x[r]| / A`, `q = round(x · A / max|x[r]|)`
//!   (ties to even), where `A` = [`ACT_MAX`].
//! - `y[r][c] = (Σₖ q_x[r][k] · q_w[c][k]) as f32 · (s_x[r] · s_w[c]) (+ b[c])`.
//!
//! The integer sums are exact, so the SIMD kernel and the scalar reference give bit-identical results on every
//! engine: the mode is deterministic across runtimes, for each build variant.
//!
//! The two builds use different integer dot products:
//! - **baseline** (`i32x4.dot_i16x8_s`): inputs in pairs (`GROUP` = 2); activations use the full 8 bits (`A` = 127);
//!   each 16-byte weight load is sign-extended to two `i16x8` vectors that multiply the splatted activation pair.
//! - **relaxed** (`i32x4.relaxed_dot_i8x16_i7x16_add_s`): inputs in fours (`GROUP` = 4). Its second operand must be
//!   non-negative 7-bit for the result to be the same on every engine, so activations use 7 bits (`A` = 63, as
//!   fbgemm's `reduce_range` in the reference) and are stored offset by +64 (1…127); the offset's contribution,
//!   `64 · Σₖ q_w[c][k]`, is precomputed per column and subtracted.
//!
//! Packing: panels of [`PANEL`] output columns as in [`super::linear`], over *groups* of `GROUP` inputs: for group
//! `j` the panel stores `GROUP · 16` bytes, `W[c][GROUP·j .. GROUP·j + GROUP]` for `c = 0..16`. `n_in` is padded
//! with zero weights to a multiple of `GROUP`.

use super::linear::PANEL;
use crate::pool::{self, SharedOut};

/// Inputs per integer dot-product group.
#[cfg(not(target_feature = "relaxed-simd"))]
const GROUP: usize = 2;
#[cfg(target_feature = "relaxed-simd")]
const GROUP: usize = 4;

/// Largest quantised activation magnitude.
#[cfg(not(target_feature = "relaxed-simd"))]
pub const ACT_MAX: f32 = 127.0;
#[cfg(target_feature = "relaxed-simd")]
pub const ACT_MAX: f32 = 63.0;

/// What is added to each stored activation (the relaxed dot needs non-negative values).
#[cfg(not(target_feature = "relaxed-simd"))]
const ACT_OFFSET: i32 = 0;
#[cfg(target_feature = "relaxed-simd")]
const ACT_OFFSET: i32 = 64;

/// Per-row quantised activations (offset by `ACT_OFFSET`) and their scales: scratch owned by the caller, grown only
/// when a call has more rows or wider rows than any before.
#[derive(Default)]
pub struct QuantActs {
    q: Vec<i8>,
    scale: Vec<f32>,
    tmp: Vec<i16>,
}

impl QuantActs {
    /// Quantises `m` rows of width `k` from `x` into rows of `k_pad` (a multiple of `GROUP`) values; the padding
    /// meets zero weights.
    pub fn quantize(&mut self, x: &[f32], m: usize, k: usize, k_pad: usize) {
        if self.q.len() < m * k_pad {
            self.q.resize(m * k_pad, 0);
        }
        if self.scale.len() < m {
            self.scale.resize(m, 0.0);
        }
        if self.tmp.len() < k {
            self.tmp.resize(k, 0);
        }
        for r in 0..m {
            self.scale[r] = quantize_row(&x[r * k..(r + 1) * k], &mut self.tmp[..k], ACT_MAX);
            let q = &mut self.q[r * k_pad..(r + 1) * k_pad];
            for (o, &v) in q.iter_mut().zip(&self.tmp[..k]) {
                *o = (v as i32 + ACT_OFFSET) as i8;
            }
            q[k..].fill(ACT_OFFSET as i8);
        }
    }
}

/// Symmetric quantisation of one row into `q` (|q| ≤ `qmax`); returns the scale (0 for an all-zero row).
pub fn quantize_row(x: &[f32], q: &mut [i16], qmax: f32) -> f32 {
    let amax = x.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    if amax == 0.0 || !amax.is_finite() {
        q.fill(0);
        return if amax == 0.0 { 0.0 } else { f32::NAN };
    }
    let inv = qmax / amax;
    for (o, &v) in q.iter_mut().zip(x) {
        *o = (v * inv).round_ties_even().clamp(-qmax, qmax) as i16;
    }
    amax / qmax
}

/// An int8 weight matrix packed for [`LinearI8::forward`].
pub struct LinearI8 {
    pub n_out: usize,
    pub n_in: usize,
    /// `n_in` rounded up to a multiple of `GROUP`.
    k_pad: usize,
    panels: Vec<i8>,
    scales: Vec<f32>,
    /// `ACT_OFFSET · Σₖ q_w[c][k]` per column (zero in the baseline build).
    offsets: Vec<i32>,
    bias: Option<Vec<f32>>,
}

impl LinearI8 {
    /// Quantises and packs a row-major `[n_out, n_in]` weight.
    pub fn new(w: &[f32], bias: Option<&[f32]>, n_out: usize, n_in: usize) -> Self {
        assert_eq!(w.len(), n_out * n_in, "linear weight size");
        let k_pad = n_in.div_ceil(GROUP) * GROUP;
        let n_panels = n_out.div_ceil(PANEL);
        let mut panels = vec![0i8; n_panels * k_pad * PANEL];
        let mut scales = vec![0.0f32; n_out];
        let mut offsets = vec![0i32; n_out];
        let mut q = vec![0i16; n_in];
        for c in 0..n_out {
            scales[c] = quantize_row(&w[c * n_in..(c + 1) * n_in], &mut q, 127.0);
            offsets[c] = ACT_OFFSET * q.iter().map(|&v| v as i32).sum::<i32>();
            let (p, lane) = (c / PANEL, c % PANEL);
            let base = p * k_pad * PANEL + lane * GROUP;
            for (i, &v) in q.iter().enumerate() {
                panels[base + (i / GROUP) * GROUP * PANEL + i % GROUP] = v as i8;
            }
        }
        Self { n_out, n_in, k_pad, panels, scales, offsets, bias: bias.map(|b| b.to_vec()) }
    }

    /// Bytes of packed weights and scales.
    pub fn weight_bytes(&self) -> usize {
        self.panels.len() + self.scales.len() * 4
    }

    /// The dequantised weight `W[c][i]` (what the integer kernel multiplies by, for accuracy checks).
    pub fn weight(&self, c: usize, i: usize) -> f32 {
        let (p, lane) = (c / PANEL, c % PANEL);
        let at = p * self.k_pad * PANEL + (i / GROUP) * GROUP * PANEL + lane * GROUP + i % GROUP;
        self.panels[at] as f32 * self.scales[c]
    }

    /// `y[m×n_out] = x[m×n_in] · Wᵀ + b` with dynamically quantised activations (`acts` is scratch).
    pub fn forward(&self, x: &[f32], y: &mut [f32], m: usize, acts: &mut QuantActs) {
        self.run(x, y, m, acts, if simd_dot_is_exact() { panel_dot } else { panel_dot_ref });
    }

    /// Scalar reference of [`LinearI8::forward`] (same packing and quantisation, plain integer loops).
    pub fn forward_ref(&self, x: &[f32], y: &mut [f32], m: usize, acts: &mut QuantActs) {
        self.run(x, y, m, acts, panel_dot_ref);
    }

    fn run(&self, x: &[f32], y: &mut [f32], m: usize, acts: &mut QuantActs, dot: PanelDot) {
        let (n, k, kp) = (self.n_out, self.n_in, self.k_pad);
        assert!(x.len() >= m * k && y.len() >= m * n, "linear buffer sizes");
        acts.quantize(x, m, k, kp);
        let (acts, out) = (&*acts, SharedOut::new(&mut y[..m * n]));
        // Panels are independent: the threads build splits them between threads (each writes only its columns).
        pool::parallel_ranges(n.div_ceil(PANEL), m * n * kp, &|panels| {
            let mut acc = [[0i32; PANEL]; 2];
            for p in panels {
                let panel = &self.panels[p * kp * PANEL..(p + 1) * kp * PANEL];
                let (c0, width) = (p * PANEL, PANEL.min(n - p * PANEL));
                let mut r = 0;
                while r < m {
                    // two rows per pass share each loaded weight vector; a last odd row goes alone
                    let rows = (m - r).min(2);
                    dot(panel, &acts.q[r * kp..(r + rows) * kp], rows, &mut acc);
                    for (i, a) in acc[..rows].iter().enumerate() {
                        let sx = acts.scale[r + i];
                        // SAFETY: this panel's columns of row r + i belong to this chunk alone.
                        let row = unsafe { out.part((r + i) * n + c0, width) };
                        for (j, o) in row.iter_mut().enumerate() {
                            *o = (a[j] - self.offsets[c0 + j]) as f32 * (sx * self.scales[c0 + j]);
                            if let Some(b) = &self.bias {
                                *o += b[c0 + j];
                            }
                        }
                    }
                    r += rows;
                }
            }
        });
    }
}

/// `rows` (1 or 2) stored activation rows (consecutive in `x`, `k_pad` each) against one panel: 16 exact integer
/// column sums per row (before the offset correction).
type PanelDot = fn(&[i8], &[i8], usize, &mut [[i32; PANEL]; 2]);

/// Scalar reference of the panel dot product.
fn panel_dot_ref(panel: &[i8], x: &[i8], rows: usize, acc: &mut [[i32; PANEL]; 2]) {
    let kp = x.len() / rows;
    for (r, a) in acc[..rows].iter_mut().enumerate() {
        *a = [0; PANEL];
        for (j, g) in x[r * kp..(r + 1) * kp].chunks_exact(GROUP).enumerate() {
            let w = &panel[j * GROUP * PANEL..(j + 1) * GROUP * PANEL];
            for (c, a) in a.iter_mut().enumerate() {
                *a += (0..GROUP).map(|t| w[GROUP * c + t] as i32 * g[t] as i32).sum::<i32>();
            }
        }
    }
}

/// The SIMD panel dot product: four accumulators of four columns per row; two rows share each weight vector.
#[cfg(target_arch = "wasm32")]
fn panel_dot(panel: &[i8], x: &[i8], rows: usize, acc: &mut [[i32; PANEL]; 2]) {
    use core::arch::wasm32::*;
    /// The group's activations, splatted: an i16 pair (baseline) or four bytes (relaxed) in every i32 lane.
    #[inline(always)]
    fn group(g: &[i8]) -> v128 {
        #[cfg(not(target_feature = "relaxed-simd"))]
        let v = g[0] as i16 as u16 as u32 | (g[1] as i16 as u16 as u32) << 16;
        #[cfg(target_feature = "relaxed-simd")]
        let v = u32::from_le_bytes([g[0] as u8, g[1] as u8, g[2] as u8, g[3] as u8]);
        u32x4_splat(v)
    }
    /// The 32 (baseline) or 64 (relaxed) weight bytes of one group, as four vectors of four columns.
    #[inline(always)]
    fn weights(w: &[i8]) -> [v128; 4] {
        // SAFETY: `w` holds GROUP · 16 bytes; wasm loads may be unaligned.
        unsafe {
            let p = w.as_ptr() as *const v128;
            #[cfg(not(target_feature = "relaxed-simd"))]
            {
                let (w0, w1) = (v128_load(p), v128_load(p.add(1)));
                [i16x8_extend_low_i8x16(w0), i16x8_extend_high_i8x16(w0), i16x8_extend_low_i8x16(w1), i16x8_extend_high_i8x16(w1)]
            }
            #[cfg(target_feature = "relaxed-simd")]
            [v128_load(p), v128_load(p.add(1)), v128_load(p.add(2)), v128_load(p.add(3))]
        }
    }
    #[inline(always)]
    fn madd(acc: v128, w: v128, x: v128) -> v128 {
        #[cfg(not(target_feature = "relaxed-simd"))]
        return i32x4_add(acc, i32x4_dot_i16x8(w, x));
        #[cfg(target_feature = "relaxed-simd")]
        return i32x4_relaxed_dot_i8x16_i7x16_add(w, x, acc);
    }
    let kp = x.len() / rows;
    let mut a = [i32x4_splat(0); 4];
    let mut b = [i32x4_splat(0); 4];
    if rows == 2 {
        let (x0, x1) = x.split_at(kp);
        for ((w, p), q) in panel.chunks_exact(GROUP * PANEL).zip(x0.chunks_exact(GROUP)).zip(x1.chunks_exact(GROUP)) {
            let (w, u, v) = (weights(w), group(p), group(q));
            for j in 0..4 {
                a[j] = madd(a[j], w[j], u);
                b[j] = madd(b[j], w[j], v);
            }
        }
    } else {
        for (w, p) in panel.chunks_exact(GROUP * PANEL).zip(x.chunks_exact(GROUP)) {
            let (w, u) = (weights(w), group(p));
            for j in 0..4 {
                a[j] = madd(a[j], w[j], u);
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

/// Whether the engine's integer dot product computes what the spec says. Always for `dot_i16x8_s`; the relaxed dot
/// is probed once with signed weights and 7-bit activations: Node 20's experimental relaxed SIMD (V8 11.3, behind
/// a flag) returns other sums, and there the exact scalar loop runs instead (same results, slower).
fn simd_dot_is_exact() -> bool {
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        use core::arch::wasm32::*;
        use core::sync::atomic::{AtomicU8, Ordering};
        static PROBE: AtomicU8 = AtomicU8::new(0); // 0 = not probed, 1 = exact, 2 = not
        if PROBE.load(Ordering::Relaxed) == 0 {
            let (w, u) = (core::hint::black_box(-100i8), core::hint::black_box(3u8 as i8));
            let w = i8x16(w, 1, 2, 3, -128, 127, -1, 0, 5, 6, 7, 8, 9, 10, 11, 12);
            let u = i8x16(u, 127, 64, 1, 127, 127, 2, 3, 1, 2, 3, 4, 5, 6, 7, 8);
            let r = i32x4_relaxed_dot_i8x16_i7x16_add(w, u, i32x4(1, 2, 3, 4));
            let want = i32x4(-300 + 127 + 128 + 3 + 1, -16256 + 16129 - 2 + 2, 5 + 12 + 21 + 32 + 3, 45 + 60 + 77 + 96 + 4);
            PROBE.store(if u32x4_all_true(i32x4_eq(r, want)) { 1 } else { 2 }, Ordering::Relaxed);
        }
        PROBE.load(Ordering::Relaxed) == 1
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::linear::matmul_ref;
    use crate::testing::gemm_case;

    /// `y` against the f32 product of the *dequantised* weights and activations (exact up to f32 rounding).
    fn check(m: usize, n: usize, k: usize, with_bias: bool) {
        let c = gemm_case(m, n, k, with_bias);
        let (x, bias) = (&c.x, c.bias.as_deref());
        let l = LinearI8::new(&c.w, bias, n, k);
        let (mut got, mut refr) = (vec![0.0; m * n], vec![0.0; m * n]);
        let mut acts = QuantActs::default();
        l.forward(x, &mut got, m, &mut acts);
        crate::pool::start_host_helpers(2);
        crate::pool::run_inline(|| l.forward_ref(x, &mut refr, m, &mut acts));
        assert_eq!(got, refr, "SIMD and scalar reference agree bit for bit");
        let mut threaded = vec![0.0; m * n];
        l.forward_ref(x, &mut threaded, m, &mut acts);
        assert_eq!(threaded, refr, "split between threads = one thread, bit for bit");
        // dequantised operands in f64
        let wd: Vec<f32> = (0..n * k).map(|j| l.weight(j / k, j % k)).collect();
        let mut xd = vec![0.0f32; m * k];
        for r in 0..m {
            let mut q = vec![0i16; k];
            let s = quantize_row(&x[r * k..(r + 1) * k], &mut q, ACT_MAX);
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
        let err = got.iter().zip(&c.want).fold(0.0f32, |a, (g, e)| a.max((g - e).abs()));
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
        assert_eq!(quantize_row(&[127.0, 0.5, -1.5, 2.5], &mut q, 127.0), 1.0);
        assert_eq!(q, [127, 0, -2, 2]);
        assert_eq!(quantize_row(&[0.0; 4], &mut q, 63.0), 0.0);
        assert_eq!(q, [0; 4]);
    }
}
