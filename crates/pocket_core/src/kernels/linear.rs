//! Linear layers `y = x · Wᵀ (+ b)`: the GEMV (one row) and small-batch GEMM every model part is built from.
//! Convolutions reach it through im2col, transposed convolutions through a GEMM followed by overlap-add.
//!
//! Weights arrive as PyTorch's row-major `[n_out, n_in]`. At load time they are packed into **panels** of
//! [`PANEL`] output columns: panel `p` stores, for each input index `k`, the 16 weights `W[p·16 .. p·16+16][k]`
//! contiguously. The whole matrix is then one sequential stream (what batch-1 decoding, which is memory-bound,
//! needs), and a GEMM tile reuses each loaded panel row for several input rows. The last panel is zero-padded.
//!
//! [`Linear::compact`] stores the panels as BF16 when that loses nothing (the released checkpoints are BF16, so
//! every weight widened from them is exactly representable): half the bytes to stream in memory-bound steps, and
//! bit-identical results, since the kernel widens each weight back to the same f32 before the same arithmetic.

use crate::simd::F32x4;

/// Output columns per packed panel (four f32x4 accumulators per input row).
pub const PANEL: usize = 16;

/// Scalar reference: `y[m×n] = x[m×k] · w[n×k]ᵀ + bias`, with `w` row-major and unpacked.
pub fn matmul_ref(x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32], m: usize, n: usize, k: usize) {
    for r in 0..m {
        for c in 0..n {
            let mut acc = 0.0f32;
            for i in 0..k {
                acc += x[r * k + i] * w[c * k + i];
            }
            y[r * n + c] = acc + bias.map_or(0.0, |b| b[c]);
        }
    }
}

/// Packed panel storage.
enum Panels {
    F32(Vec<f32>),
    /// The upper 16 bits of each f32 (used only when the lower 16 are zero everywhere).
    Bf16(Vec<u16>),
}

/// A weight matrix packed for [`Linear::forward`].
pub struct Linear {
    pub n_out: usize,
    pub n_in: usize,
    panels: Panels,
    bias: Option<Vec<f32>>,
}

impl Linear {
    /// Packs a row-major `[n_out, n_in]` weight.
    pub fn new(w: &[f32], bias: Option<&[f32]>, n_out: usize, n_in: usize) -> Self {
        assert_eq!(w.len(), n_out * n_in, "linear weight size");
        if let Some(b) = bias {
            assert_eq!(b.len(), n_out, "linear bias size");
        }
        Self::from_fn(n_out, n_in, bias.map(|b| b.to_vec()), |c, i| w[c * n_in + i])
    }

    /// Builds from a function giving `W[c][i]`: for weights that are not stored row-major (e.g. a transposed
    /// convolution's `[in, out, k]`), without materialising the row-major copy.
    pub fn from_fn(n_out: usize, n_in: usize, bias: Option<Vec<f32>>, w: impl Fn(usize, usize) -> f32) -> Self {
        let n_panels = n_out.div_ceil(PANEL);
        let mut panels = vec![0.0f32; n_panels * n_in * PANEL];
        for c in 0..n_out {
            let (p, lane) = (c / PANEL, c % PANEL);
            let base = p * n_in * PANEL + lane;
            for i in 0..n_in {
                panels[base + i * PANEL] = w(c, i);
            }
        }
        Self { n_out, n_in, panels: Panels::F32(panels), bias }
    }

    /// Switches to BF16 panels when every weight is exactly a BF16 value (results stay bit-identical); otherwise
    /// keeps f32. Returns `self` for chaining.
    pub fn compact(mut self) -> Self {
        if let Panels::F32(p) = &self.panels {
            if p.iter().all(|v| v.to_bits() & 0xffff == 0) {
                self.panels = Panels::Bf16(p.iter().map(|v| (v.to_bits() >> 16) as u16).collect());
            }
        }
        self
    }

    /// Bytes of packed weights (for memory accounting and bandwidth figures).
    pub fn weight_bytes(&self) -> usize {
        match &self.panels {
            Panels::F32(p) => p.len() * 4,
            Panels::Bf16(p) => p.len() * 2,
        }
    }

    /// `y[m×n_out] = x[m×n_in] · Wᵀ + b`. Rows of `x` and `y` are contiguous.
    pub fn forward(&self, x: &[f32], y: &mut [f32], m: usize) {
        let (n, k) = (self.n_out, self.n_in);
        assert!(x.len() >= m * k && y.len() >= m * n, "linear buffer sizes");
        for p in 0..n.div_ceil(PANEL) {
            let (c0, range) = (p * PANEL, p * k * PANEL..(p + 1) * k * PANEL);
            let width = PANEL.min(n - c0);
            match &self.panels {
                Panels::F32(w) => self.panel_rows(&x[..m * k], y, m, c0, width, || f32_rows(&w[range.clone()])),
                Panels::Bf16(w) => self.panel_rows(&x[..m * k], y, m, c0, width, || bf16_rows(&w[range.clone()])),
            }
        }
    }

    /// All rows of `x` against one panel, whose rows `rows()` yields (two input rows per pass, then one).
    #[inline(always)]
    fn panel_rows<I: Iterator<Item = [F32x4; 4]>>(
        &self,
        x: &[f32],
        y: &mut [f32],
        m: usize,
        c0: usize,
        width: usize,
        rows: impl Fn() -> I,
    ) {
        let (n, k) = (self.n_out, self.n_in);
        let mut r = 0;
        while r + 2 <= m {
            let acc = tile2(rows(), &x[r * k..(r + 2) * k], k);
            self.write_row(&acc[0], &mut y[r * n..], c0, width);
            self.write_row(&acc[1], &mut y[(r + 1) * n..], c0, width);
            r += 2;
        }
        if r < m {
            let acc = tile1(rows(), &x[r * k..(r + 1) * k]);
            self.write_row(&acc, &mut y[r * n..], c0, width);
        }
    }

    #[inline(always)]
    fn write_row(&self, acc: &[F32x4; 4], y_row: &mut [f32], c0: usize, width: usize) {
        let mut out = [0.0f32; PANEL];
        for (j, a) in acc.iter().enumerate() {
            a.store(&mut out, j * 4);
        }
        if let Some(b) = &self.bias {
            for j in 0..width {
                out[j] += b[c0 + j];
            }
        }
        y_row[c0..c0 + width].copy_from_slice(&out[..width]);
    }
}

// The tiles iterate over panel rows (`chunks_exact`) rather than indexing: the loops compile without bounds checks
// and with fewer induction variables, which V8 turns into ~11% faster code on the Mimi GEMM shapes (relaxed build;
// the results are bit-identical). Bigger tiles (3–6 rows) and unrolling were tried and were slower: LLVM hoists
// the loads, and with more than ~15 live vectors V8 spills.

/// The rows of an f32 panel, four vectors each.
#[inline(always)]
fn f32_rows(panel: &[f32]) -> impl Iterator<Item = [F32x4; 4]> + '_ {
    panel.chunks_exact(PANEL).map(|w| [F32x4::load(w, 0), F32x4::load(w, 4), F32x4::load(w, 8), F32x4::load(w, 12)])
}

/// The rows of a BF16 panel, widened to four f32 vectors each.
#[inline(always)]
fn bf16_rows(panel: &[u16]) -> impl Iterator<Item = [F32x4; 4]> + '_ {
    panel.chunks_exact(PANEL).map(|w| {
        let (a, b) = F32x4::load_bf16x8(w, 0);
        let (c, d) = F32x4::load_bf16x8(w, 8);
        [a, b, c, d]
    })
}

/// One input row against one panel: 4 accumulators, one pass over the panel.
#[inline(always)]
fn tile1(rows: impl Iterator<Item = [F32x4; 4]>, x: &[f32]) -> [F32x4; 4] {
    let mut a = [F32x4::zero(); 4];
    for (w, &xv) in rows.zip(x) {
        let s = F32x4::splat(xv);
        a[0] = s.madd(w[0], a[0]);
        a[1] = s.madd(w[1], a[1]);
        a[2] = s.madd(w[2], a[2]);
        a[3] = s.madd(w[3], a[3]);
    }
    a
}

/// Two input rows against one panel: 8 accumulators; each loaded weight vector is used twice.
#[inline(always)]
fn tile2(rows: impl Iterator<Item = [F32x4; 4]>, x: &[f32], k: usize) -> [[F32x4; 4]; 2] {
    let mut a = [F32x4::zero(); 4];
    let mut b = [F32x4::zero(); 4];
    let (x0, x1) = x[..2 * k].split_at(k);
    for ((w, &u), &v) in rows.zip(x0).zip(x1) {
        let u = F32x4::splat(u);
        a[0] = u.madd(w[0], a[0]);
        a[1] = u.madd(w[1], a[1]);
        a[2] = u.madd(w[2], a[2]);
        a[3] = u.madd(w[3], a[3]);
        let v = F32x4::splat(v);
        b[0] = v.madd(w[0], b[0]);
        b[1] = v.madd(w[1], b[1]);
        b[2] = v.madd(w[2], b[2]);
        b[3] = v.madd(w[3], b[3]);
    }
    [a, b]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{max_rel_diff, random_vec};

    fn check(m: usize, n: usize, k: usize, with_bias: bool) {
        let w = random_vec(n * k, 1);
        let x = random_vec(m * k, 2);
        let b = random_vec(n, 3);
        let bias = with_bias.then_some(&b[..]);
        let mut want = vec![0.0; m * n];
        let mut got = vec![0.0; m * n];
        matmul_ref(&x, &w, bias, &mut want, m, n, k);
        Linear::new(&w, bias, n, k).forward(&x, &mut got, m);
        let rel = max_rel_diff(&got, &want);
        assert!(rel < 1e-5, "m={m} n={n} k={k}: rel {rel}");
    }

    #[test]
    fn gemv_shapes() {
        check(1, 3072, 1024, false);
        check(1, 1, 1024, true); // EOS head: a single output column
        check(1, 33, 7, true);
    }

    #[test]
    fn gemm_shapes() {
        check(16, 2048, 512, false);
        check(3, 40, 17, true);
        check(5, 16, 1, false);
    }

    #[test]
    fn bf16_panels_are_bit_identical_and_only_when_lossless() {
        let (m, n, k) = (5, 40, 33);
        // values with zero low halves (BF16-exact), as widened from a BF16 checkpoint
        let w: Vec<f32> = random_vec(n * k, 6).iter().map(|v| f32::from_bits(v.to_bits() & 0xffff_0000)).collect();
        let x = random_vec(m * k, 7);
        let (mut a, mut b) = (vec![0.0; m * n], vec![0.0; m * n]);
        let plain = Linear::new(&w, None, n, k);
        let compact = Linear::new(&w, None, n, k).compact();
        assert_eq!(compact.weight_bytes() * 2, plain.weight_bytes());
        plain.forward(&x, &mut a, m);
        compact.forward(&x, &mut b, m);
        assert_eq!(a, b);
        let exact = Linear::new(&random_vec(n * k, 8), None, n, k).compact();
        assert_eq!(exact.weight_bytes(), plain.weight_bytes(), "f32 weights stay f32");
    }

    #[test]
    fn from_fn_equals_row_major() {
        let (n, k) = (20, 9);
        let w = random_vec(n * k, 4);
        let x = random_vec(3 * k, 5);
        let (mut a, mut b) = (vec![0.0; 3 * n], vec![0.0; 3 * n]);
        Linear::new(&w, None, n, k).forward(&x, &mut a, 3);
        Linear::from_fn(n, k, None, |c, i| w[c * k + i]).forward(&x, &mut b, 3);
        assert_eq!(a, b);
    }
}
