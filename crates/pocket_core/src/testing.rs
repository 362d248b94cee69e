//! Helpers for host unit tests.

/// Deterministic values in [-1, 1) (xorshift32), so tests need no RNG crate.
pub fn random_vec(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / 8_388_608.0 - 1.0
        })
        .collect()
}

/// `max|a − b| / max|b|`: the golden-data tolerance measure.
pub fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
    a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// A random linear-layer case: weights `[n × k]` (seed 1), inputs `[m × k]` (seed 2), a bias `[n]` (seed 3) when
/// `with_bias`, and `want`, their product by the scalar reference.
pub struct GemmCase {
    pub w: Vec<f32>,
    pub x: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub want: Vec<f32>,
}

/// Builds a [`GemmCase`] of `m` rows, `n` outputs and `k` inputs.
pub fn gemm_case(m: usize, n: usize, k: usize, with_bias: bool) -> GemmCase {
    let (w, x) = (random_vec(n * k, 1), random_vec(m * k, 2));
    let bias = with_bias.then(|| random_vec(n, 3));
    let mut want = vec![0.0; m * n];
    crate::kernels::linear::matmul_ref(&x, &w, bias.as_deref(), &mut want, m, n, k);
    GemmCase { w, x, bias, want }
}
