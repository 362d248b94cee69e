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
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

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
        match madd_mode() {
            MaddMode::Fused => self.items::<true>(rows, m, &out),
            MaddMode::Separate => self.items::<false>(rows, m, &out),
        }
    }

    /// The work items of [`Self::forward_strided`], with the tile's multiply-add form `FUSED` (see [`MaddMode`]).
    fn items<const FUSED: bool>(&self, rows: Rows, m: usize, out: &SharedOut<f32>) {
        let (n, k) = (self.n_out, self.n_in);
        let blocks = m.div_ceil(ROW_BLOCK);
        pool::parallel_ranges(n.div_ceil(PANEL) * blocks, m * n * k, &|items| {
            for item in items {
                let (p, b) = (item / blocks, item % blocks);
                let (c0, range) = (p * PANEL, p * k * PANEL..(p + 1) * k * PANEL);
                let block = b * ROW_BLOCK..(b * ROW_BLOCK + ROW_BLOCK).min(m);
                match &self.panels {
                    Panels::F32(w) => self.panel_rows::<_, FUSED>(&w[range], rows, block, out, c0),
                    Panels::Bf16(w) => self.panel_rows::<_, FUSED>(&w[range], rows, block, out, c0),
                }
            }
        });
    }

    /// Rows `block` of `x` against one panel (two input rows per pass, then one). Each row's sums are its own, so
    /// how rows are grouped never changes a result.
    #[inline(always)]
    fn panel_rows<P: PanelRows, const FUSED: bool>(
        &self,
        panel: P,
        x: Rows,
        block: Range<usize>,
        y: &SharedOut<f32>,
        c0: usize,
    ) {
        let mut r = block.start;
        while r + 2 <= block.end {
            self.tile_rows::<2, P, FUSED>(panel, x, y, r, c0);
            r += 2;
        }
        if r < block.end {
            self.tile_rows::<1, P, FUSED>(panel, x, y, r, c0);
        }
    }

    /// Rows `r..r + R` against one panel, written to columns `c0..c0 + 16` (clipped to `n_out`) with the bias.
    /// Not inlined: V8 allocates registers per function, and the tile loop keeps its accumulators and weights in
    /// the 15 vector registers only inside a small one.
    #[inline(never)]
    fn tile_rows<const R: usize, P: PanelRows, const FUSED: bool>(
        &self,
        panel: P,
        x: Rows,
        y: &SharedOut<f32>,
        r: usize,
        c0: usize,
    ) {
        let (n, k) = (self.n_out, self.n_in);
        let acc = tile::<R, P, FUSED>(panel, &x.x[r * x.stride..(r + R - 1) * x.stride + k], x.stride, k);
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
/// the panel; each loaded weight vector is used `R` times. `FUSED`: [`F32x4::madd`], else a multiply then an add.
#[inline(always)]
fn tile<const R: usize, P: PanelRows, const FUSED: bool>(
    panel: P,
    x: &[f32],
    stride: usize,
    k: usize,
) -> [[F32x4; 4]; R] {
    assert!(x.len() >= (R - 1) * stride + k && panel.rows() >= k);
    let mut acc = [[F32x4::zero(); 4]; R];
    for i in 0..k {
        let w = panel.row(i);
        for (r, a) in acc.iter_mut().enumerate() {
            // SAFETY: r < R and i < k, so r·stride + i < (R − 1)·stride + k <= x.len() (asserted above).
            let s = F32x4::splat(unsafe { *x.get_unchecked(r * stride + i) });
            for (v, w) in a.iter_mut().zip(&w) {
                *v = if FUSED { s.madd(*w, *v) } else { v.add(s.mul(*w)) };
            }
        }
    }
    acc
}

/// How the GEMM tile multiplies and adds. Relaxed SIMD lets an engine evaluate `f32x4.relaxed_madd` fused or as a
/// rounded product then a sum: V8 fuses it; JSC (Bun, Safari) computes it in two steps in this tile, and runs that
/// slower than a plain `mul` and `add` (Bun: BF16 AR step −12 %, Mimi frame −4 %). Where the tile's `madd` is found
/// not fused, the tile uses the plain form, which gives the same bits; elsewhere nothing changes. The baseline build's
/// `madd` is a plain multiply and add, so there it is always `Separate` (same code either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaddMode {
    Fused,
    Separate,
}

/// 0 = not probed yet, else `1 + MaddMode as u8` (set once per memory; threads share it, and racing probes agree).
static MADD_MODE: AtomicU8 = AtomicU8::new(0);

/// The tile's multiply-add form on this engine: probed on first use ([`probe_madd`]) unless set.
pub fn madd_mode() -> MaddMode {
    match MADD_MODE.load(Relaxed) {
        0 => {
            let mode = probe_madd();
            set_madd_mode(mode);
            mode
        }
        1 => MaddMode::Fused,
        _ => MaddMode::Separate,
    }
}

/// Overrides the probed form (tests compare both forms on one engine).
pub fn set_madd_mode(mode: MaddMode) {
    MADD_MODE.store(if mode == MaddMode::Fused { 1 } else { 2 }, Relaxed);
}

/// Probe operands: `−1 + X·W` where the product (`W` exact in BF16, so both panel kinds take it) is not an f32, so a
/// fused multiply-add and a rounded product then a sum give different results.
const PROBE_X: f32 = 1.0 + 1.0 / 4096.0 + 1.0 / 1_048_576.0;
const PROBE_W: f32 = 1.0 - 1.0 / 256.0;

/// `−1 + PROBE_X·PROBE_W` rounded once (fused) and twice (separate).
fn probe_refs() -> (f32, f32) {
    let fused = ((PROBE_X as f64) * (PROBE_W as f64) - 1.0) as f32; // the f64 product and sum are exact
    (fused, PROBE_X * PROBE_W - 1.0)
}

/// Runs the tile itself, fused form, with f32 and BF16 panels and with two- and one-row tiles (each its own compiled
/// function, so each is asked), on operands whose two roundings differ: `Separate` only when every one of them
/// rounded twice; anything else keeps the fused form (the status quo).
fn probe_madd() -> MaddMode {
    let (fused, separate) = probe_refs();
    let w: Vec<f32> = (0..PANEL).flat_map(|_| [1.0, PROBE_W]).collect();
    let x = [-1.0, PROBE_X].repeat(3); // three rows: a two-row tile, then a one-row tile
    let mut separate_everywhere = true;
    for l in [Linear::new(&w, None, PANEL, 2), Linear::new(&w, None, PANEL, 2).compact()] {
        let mut y = [0.0f32; 3 * PANEL];
        // 96 multiply-adds: below a chunk's worth, so this runs on the calling thread (also inside a job).
        l.items::<true>(Rows { x: &x, stride: 2 }, 3, &SharedOut::new(&mut y));
        separate_everywhere &= y.iter().all(|&v| v.to_bits() == separate.to_bits());
        if !y.iter().all(|&v| v.to_bits() == fused.to_bits() || v.to_bits() == separate.to_bits()) {
            return MaddMode::Fused;
        }
    }
    if separate_everywhere { MaddMode::Separate } else { MaddMode::Fused }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{gemm_case, max_rel_diff, random_vec};

    #[test]
    fn madd_probe_operands_tell_the_two_forms_apart() {
        let (fused, separate) = probe_refs();
        assert_ne!(fused, separate);
        assert_eq!(PROBE_W.to_bits() & 0xffff, 0, "W is exact in BF16");
        // The host's F32x4::madd is a product then a sum: the probe must find that.
        assert_eq!(probe_madd(), MaddMode::Separate);
    }

    #[test]
    fn both_madd_forms_give_the_host_the_same_bits() {
        let c = gemm_case(5, 40, 33, true);
        let l = Linear::new(&c.w, c.bias.as_deref(), 40, 33);
        let mut a = vec![0.0; 5 * 40];
        let mut b = vec![0.0; 5 * 40];
        l.items::<true>(Rows { x: &c.x, stride: 33 }, 5, &SharedOut::new(&mut a));
        l.items::<false>(Rows { x: &c.x, stride: 33 }, 5, &SharedOut::new(&mut b));
        assert_eq!(a, b);
    }

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
