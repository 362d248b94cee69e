//! Element-wise activations, in place. f32 math throughout, as the reference computes them. The scalar forms are
//! the references; `*_simd` forms (and [`VecExp`]) are the vectorised versions the models run.

use crate::pool;
use crate::simd::F32x4;

/// GELU, tanh approximation: `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` (the form the weights were trained with;
/// the exact erf form differs by ~5e-4 and fails the golden tolerances).
pub fn gelu_tanh(x: &mut [f32]) {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    for v in x {
        let u = *v;
        *v = 0.5 * u * (1.0 + (SQRT_2_OVER_PI * (u + 0.044_715 * u * u * u)).tanh());
    }
}

/// SiLU: `x · sigmoid(x)`.
pub fn silu(x: &mut [f32]) {
    for v in x {
        *v /= 1.0 + (-*v).exp();
    }
}

/// ELU with alpha 1: `x` for x > 0, else `exp(x) − 1`.
pub fn elu(x: &mut [f32]) {
    for v in x {
        if *v <= 0.0 {
            *v = v.exp_m1();
        }
    }
}

// ---- vectorised forms (F32x4), checked against the scalar functions above ----

/// Constants of [`VecExp`], read with volatile loads: a value the compiler cannot fold stays in a register (or a
/// stack slot) across a loop, whereas a folded `v128.const` is re-materialised by the engine at every use (V8
/// spends several instructions on each), which made these kernels 3–4× slower.
static EXP_CONSTS: [f32; 14] = [
    -87.0,
    88.0,
    core::f32::consts::LOG2_E,
    12_582_912.0, // 1.5·2²³: adding it rounds to a whole number
    -0.693_359_4, // −ln2, high part: n times it is exact
    2.121_944_4e-4, // −ln2, low part (negated)
    1.987_569_1e-4, // Cephes expf polynomial, highest degree first
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    0.166_666_65,
    0.5,
    1.0,
    f32::from_bits(F32x4::POW2I_BIAS),
];

/// Reads `EXP_CONSTS[i]` so that the compiler cannot fold it into a constant.
#[inline(always)]
fn opaque(i: usize) -> F32x4 {
    // SAFETY: a read of an element of an immutable static.
    F32x4::splat(unsafe { core::ptr::read_volatile(&EXP_CONSTS[i]) })
}

/// A vector `exp`/`expm1` with its constants held in locals; build one per call, outside the loop.
pub struct VecExp {
    k: [F32x4; 14],
}

impl VecExp {
    #[inline(always)]
    pub fn new() -> Self {
        Self { k: core::array::from_fn(opaque) }
    }

    /// The constant 1.
    #[inline(always)]
    pub fn one(&self) -> F32x4 {
        self.k[12]
    }

    /// Splits `x` (clamped to −87…88) as `x = n·ln2 + r`, `|r| ≤ ln2/2`, and returns `(2ⁿ, eʳ − 1)`, with
    /// `eʳ − 1 = r + r²·P(r)` (Cephes' `expf` polynomial, ~1 ulp).
    #[inline(always)]
    fn parts(&self, x: F32x4) -> (F32x4, F32x4) {
        let k = &self.k;
        let x = x.max(k[0]).min(k[1]);
        let t = x.madd(k[2], k[3]); // n + 1.5·2²³
        let n = t.sub(k[3]);
        let r = n.madd(k[4], x);
        let r = n.madd(k[5], r);
        let mut p = k[6];
        for c in &k[7..12] {
            p = p.madd(r, *c);
        }
        (t.pow2i_from_magic(k[13]), r.mul(r).madd(p, r))
    }

    /// `eˣ` per lane (arguments clamped to −87…88, so the result stays finite and normal).
    #[inline(always)]
    pub fn exp(&self, x: F32x4) -> F32x4 {
        let (s, q) = self.parts(x);
        s.madd(q, s)
    }

    /// `eˣ − 1` per lane, accurate near 0 (`2ⁿ·(eʳ − 1) + (2ⁿ − 1)`); arguments clamped to −87…88.
    #[inline(always)]
    pub fn expm1(&self, x: F32x4) -> F32x4 {
        let (s, q) = self.parts(x);
        s.madd(q, s.sub(self.one()))
    }
}

impl Default for VecExp {
    fn default() -> Self {
        Self::new()
    }
}

/// Applies a lane-wise function to a slice in place (a ragged tail goes through a padded vector).
#[inline(always)]
fn map_x4(x: &mut [f32], f: impl Fn(F32x4) -> F32x4) {
    let n4 = x.len() / 4 * 4;
    let mut i = 0;
    while i < n4 {
        f(F32x4::load(x, i)).store(x, i);
        i += 4;
    }
    if n4 < x.len() {
        let tail = x.len() - n4;
        let mut t = [0.0f32; 4];
        t[..tail].copy_from_slice(&x[n4..]);
        f(F32x4::load(&t, 0)).store(&mut t, 0);
        x[n4..].copy_from_slice(&t[..tail]);
    }
}

/// [`elu`], vectorised: `max(x, 0) + expm1(min(x, 0))`. Positive inputs pass unchanged; negative ones agree with
/// the scalar `exp_m1` to ~2e-7.
pub fn elu_simd(x: &mut [f32]) {
    let e = VecExp::new();
    let zero = F32x4::zero();
    map_x4(x, |v| v.max(zero).add(e.expm1(v.min(zero))));
}

/// [`gelu_tanh`], vectorised, in the equivalent form `x · sigmoid(2u) = x / (1 + e^(−2u))`,
/// `u = √(2/π)·(x + 0.044715·x³)`: no cancellation for negative x, within a few ulp of the tanh form elsewhere.
pub fn gelu_tanh_simd(x: &mut [f32]) {
    static K: [f32; 2] = [0.044_715, -2.0 * 0.797_884_6];
    let e = VecExp::new();
    // SAFETY: reads of an immutable static's elements (volatile, as for `EXP_CONSTS`).
    let [k3, c] = core::array::from_fn(|i| F32x4::splat(unsafe { core::ptr::read_volatile(&K[i]) }));
    map_x4(x, |v| {
        let u = v.mul(v).mul(v).madd(k3, v); // x + 0.044715·x³
        v.div(e.one().add(e.exp(u.mul(c))))
    });
}

/// [`elu_simd`] split between threads where the threads build has helpers (the same values: it is element-wise).
pub fn elu_parallel(x: &mut [f32]) {
    pool::parallel_map(x, 4, &elu_simd);
}

/// [`gelu_tanh_simd`] split between threads where the threads build has helpers (the same values).
pub fn gelu_tanh_parallel(x: &mut [f32]) {
    pool::parallel_map(x, 6, &gelu_tanh_simd);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let mut g = [0.0f32, 1.0, -1.0, 3.0];
        gelu_tanh(&mut g);
        // f64 evaluations of the same formula
        for (a, b) in g.iter().zip([0.0, 0.841_191_990_608_276_8, -0.158_808_009_391_723_24, 2.996_362_607_918_227]) {
            assert!((*a as f64 - b).abs() < 1e-6, "{a} vs {b}");
        }
        let mut s = [0.0f32, 2.0];
        silu(&mut s);
        assert!((s[1] as f64 - 2.0 / (1.0 + (-2.0f64).exp())).abs() < 1e-6);
        let mut e = [1.5f32, -1.0, 0.0];
        elu(&mut e);
        assert_eq!(e[0], 1.5);
        assert!((e[1] as f64 - ((-1.0f64).exp() - 1.0)).abs() < 1e-7);
        assert_eq!(e[2], 0.0);
    }

    #[test]
    fn parallel_forms_equal_the_simd_loops() {
        crate::pool::start_host_helpers(2);
        let x: Vec<f32> = (0..50_001).map(|i| -20.0 + i as f32 * 7.3e-4).collect();
        for (par, simd) in [(elu_parallel as fn(&mut [f32]), elu_simd as fn(&mut [f32])), (gelu_tanh_parallel, gelu_tanh_simd)] {
            let (mut a, mut b) = (x.clone(), x.clone());
            par(&mut a);
            simd(&mut b);
            assert_eq!(a, b);
        }
    }

    #[test]
    fn simd_forms_match_scalar() {
        // A sweep over [−100, 20] plus tiny values (where eˣ − 1 would cancel) and a ragged tail.
        let mut x: Vec<f32> = (0..24_001).map(|i| -100.0 + i as f32 * 0.005).collect();
        x.extend([-1e-8, -3e-5, -1e-3, 0.0, -0.0, 1e-6, f32::MIN_POSITIVE, 7.5]);
        let (mut e_want, mut e_got) = (x.clone(), x.clone());
        elu(&mut e_want);
        elu_simd(&mut e_got);
        for ((&g, &w), &v) in e_got.iter().zip(&e_want).zip(&x) {
            assert!((g - w).abs() <= 2e-7 + 2e-7 * w.abs(), "elu({v}) = {g}, want {w}");
            if v >= 0.0 {
                assert_eq!(g, v);
            }
        }
        let (mut g_want, mut g_got) = (x.clone(), x.clone());
        gelu_tanh(&mut g_want);
        gelu_tanh_simd(&mut g_got);
        for ((&g, &w), &v) in g_got.iter().zip(&g_want).zip(&x) {
            // The scalar tanh form itself loses ~1e-7·|x| to cancellation for negative x.
            assert!((g - w).abs() <= 3e-7 * (1.0 + v.abs()), "gelu({v}) = {g}, want {w}");
        }
        for &v in &[-87.0f32, -20.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 20.0, 88.0] {
            let e = VecExp::new().exp(F32x4::splat(v)).lanes()[0] as f64;
            assert!((e - (v as f64).exp()).abs() <= 2.5e-7 * (v as f64).exp(), "exp({v}) = {e}");
        }
    }
}
