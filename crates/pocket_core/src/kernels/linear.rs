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
//! Within each 8 columns the BF16 values are stored as pairs, in the order [`F32x4::load_bf16x8_pairs`] widens.

use std::ops::Range;

use crate::pool::{self, SharedOut};
use crate::simd::F32x4;

/// Output columns per packed panel (four f32x4 accumulators per input row).
pub const PANEL: usize = 16;

/// Input rows per work item when a product is split between threads (even, so tiles keep their row pairs).
const ROW_BLOCK: usize = 16;

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
                // Within each 8 columns, stored as pairs (column 4 + l, column l): see `F32x4::load_bf16x8_pairs`.
                let pair = |j: usize| j / 8 * 8 + if j % 2 == 0 { 4 + j % 8 / 2 } else { j % 8 / 2 };
                self.panels = Panels::Bf16((0..p.len()).map(|j| (p[pair(j)].to_bits() >> 16) as u16).collect());
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
        self.forward_strided(x, self.n_in, y, m);
    }

    /// [`Self::forward`] with row `r` of `x` starting at `r·stride` (rows may overlap: a convolution's sliding
    /// window in a time-major buffer, read in place instead of copied out by im2col).
    pub fn forward_strided(&self, x: &[f32], stride: usize, y: &mut [f32], m: usize) {
        let (n, k) = (self.n_out, self.n_in);
        let x_len = if m == 0 { 0 } else { (m - 1) * stride + k };
        assert!(x.len() >= x_len && y.len() >= m * n, "linear buffer sizes");
        let rows = Rows { x: &x[..x_len], stride };
        let out = SharedOut::new(&mut y[..m * n]);
        // Outputs are independent per (panel, block of rows): the threads build splits them between threads. Items
        // are panel-major, so one thread's loop is the plain one (each panel stays in cache for all its rows); row
        // blocks give convolutions over many time steps but few channels (Mimi's SEANet) enough items to share.
        let blocks = m.div_ceil(ROW_BLOCK);
        pool::parallel_ranges(n.div_ceil(PANEL) * blocks, m * n * k, &|items| {
            for item in items {
                let (p, b) = (item / blocks, item % blocks);
                let (c0, range) = (p * PANEL, p * k * PANEL..(p + 1) * k * PANEL);
                let block = b * ROW_BLOCK..(b * ROW_BLOCK + ROW_BLOCK).min(m);
                match &self.panels {
                    Panels::F32(w) => self.panel_rows(&w[range], rows, block, &out, c0),
                    Panels::Bf16(w) => self.panel_rows(&w[range], rows, block, &out, c0),
                }
            }
        });
    }

    /// Rows `block` of `x` against one panel (two input rows per pass, then one). Each row's sums are its own, so
    /// how rows are grouped never changes a result.
    #[inline(always)]
    fn panel_rows<P: PanelRows>(&self, panel: P, x: Rows, block: Range<usize>, y: &SharedOut<f32>, c0: usize) {
        let mut r = block.start;
        while r + 2 <= block.end {
            self.tile_rows::<2, P>(panel, x, y, r, c0);
            r += 2;
        }
        if r < block.end {
            self.tile_rows::<1, P>(panel, x, y, r, c0);
        }
    }

    /// Rows `r..r + R` against one panel, written to columns `c0..c0 + 16` (clipped to `n_out`) with the bias.
    /// Not inlined: V8 allocates registers per function, and the tile loop keeps its accumulators and weights in
    /// the 15 vector registers only inside a small one.
    #[inline(never)]
    fn tile_rows<const R: usize, P: PanelRows>(&self, panel: P, x: Rows, y: &SharedOut<f32>, r: usize, c0: usize) {
        let (n, k) = (self.n_out, self.n_in);
        let acc = tile::<R, P>(panel, &x.x[r * x.stride..(r + R - 1) * x.stride + k], x.stride, k);
        let width = PANEL.min(n - c0);
        for (i, a) in acc.iter().enumerate() {
            // SAFETY: this panel's columns of row r + i belong to one work item, run by one thread.
            let y_row = unsafe { y.part((r + i) * n + c0, width) };
            if width == PANEL {
                for (j, v) in a.iter().enumerate() {
                    let v = match &self.bias {
                        Some(b) => v.add(F32x4::load(b, c0 + 4 * j)),
                        None => *v,
                    };
                    v.store(y_row, 4 * j);
                }
            } else {
                // the zero-padded last panel
                let mut out = [0.0f32; PANEL];
                for (j, v) in a.iter().enumerate() {
                    v.store(&mut out, 4 * j);
                }
                for (j, o) in out[..width].iter().enumerate() {
                    y_row[j] = o + self.bias.as_ref().map_or(0.0, |b| b[c0 + j]);
                }
            }
        }
    }
}

/// The input rows of a GEMM: rows of `n_in` values, row `r` at `x[r·stride..]`.
#[derive(Clone, Copy)]
struct Rows<'a> {
    x: &'a [f32],
    stride: usize,
}

/// A packed panel: `rows()` rows of [`PANEL`] weights, each widened to four f32 vectors.
trait PanelRows: Copy {
    fn rows(self) -> usize;
    /// Row `i`; the caller guarantees `i < rows()`.
    fn row(self, i: usize) -> [F32x4; 4];
}

impl PanelRows for &[f32] {
    #[inline(always)]
    fn rows(self) -> usize {
        self.len() / PANEL
    }
    #[inline(always)]
    fn row(self, i: usize) -> [F32x4; 4] {
        let o = i * PANEL;
        [F32x4::load(self, o), F32x4::load(self, o + 4), F32x4::load(self, o + 8), F32x4::load(self, o + 12)]
    }
}

impl PanelRows for &[u16] {
    #[inline(always)]
    fn rows(self) -> usize {
        self.len() / PANEL
    }
    #[inline(always)]
    fn row(self, i: usize) -> [F32x4; 4] {
        let (a, b) = F32x4::load_bf16x8_pairs(self, i * PANEL);
        let (c, d) = F32x4::load_bf16x8_pairs(self, i * PANEL + 8);
        [a, b, c, d]
    }
}

// The micro-kernel is bound by the multiply-add latency: its 4·R accumulators are 4·R independent chains, and the
// 8 of the two-row tile reach ~24 of the ~28 GMAC/s one core gives (V8, relaxed build; measured with a plain loop
// of N chains: 8 → 24, 12 → 27). More rows or columns would hide the latency, but they need 12+ accumulators,
// which leave V8 (15 allocatable vector registers on x64) no room for LLVM's operation order: the loop spills and
// runs at half speed (3×16, 4×8 with broadcast lanes, 5×8 and 6×8 tiles were measured). Each row's splat is read
// without a bounds check (the range is asserted once per tile), which the loop needs to stay in registers.

/// `R` input rows of `k` values (row `r` at `x[r·stride..]`) against one panel: `4·R` accumulators, one pass over
/// the panel; each loaded weight vector is used `R` times.
#[inline(always)]
fn tile<const R: usize, P: PanelRows>(panel: P, x: &[f32], stride: usize, k: usize) -> [[F32x4; 4]; R] {
    assert!(x.len() >= (R - 1) * stride + k && panel.rows() >= k);
    let mut acc = [[F32x4::zero(); 4]; R];
    for i in 0..k {
        let w = panel.row(i);
        for (r, a) in acc.iter_mut().enumerate() {
            // SAFETY: r < R and i < k, so r·stride + i < (R − 1)·stride + k <= x.len() (asserted above).
            let s = F32x4::splat(unsafe { *x.get_unchecked(r * stride + i) });
            for (v, w) in a.iter_mut().zip(&w) {
                *v = s.madd(*w, *v);
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{gemm_case, max_rel_diff, random_vec};

    fn check(m: usize, n: usize, k: usize, with_bias: bool) {
        crate::pool::start_host_helpers(2);
        let c = gemm_case(m, n, k, with_bias);
        let (mut got, mut one) = (vec![0.0; m * n], vec![0.0; m * n]);
        let l = Linear::new(&c.w, c.bias.as_deref(), n, k);
        l.forward(&c.x, &mut got, m);
        let rel = max_rel_diff(&got, &c.want);
        assert!(rel < 1e-5, "m={m} n={n} k={k}: rel {rel}");
        crate::pool::run_inline(|| l.forward(&c.x, &mut one, m));
        assert_eq!(got, one, "split between threads = one thread, bit for bit");
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
        check(1000, 24, 70, true); // many rows, few columns: split by row blocks (a SEANet convolution)
        check(3, 40, 17, true); // a zero-padded last panel
        check(5, 16, 1, false);
        check(7, 48, 9, true); // whole panels with a bias
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
