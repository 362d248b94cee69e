//! Element-wise activations, in place. f32 math throughout, as the reference computes them.

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
}
