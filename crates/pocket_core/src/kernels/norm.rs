//! Layer normalisation over the last dimension: `(x − mean) / sqrt(var + eps) · weight + bias`, biased variance.
//! Used with eps 1e-5 in the transformers and `out_norm`, and with eps 1e-6 (and no affine in the final layer) in
//! the flow head. Moments are accumulated in f64: the rows are short, and it keeps the port's error well below
//! the reference's own float32 rounding.

/// Normalises each row of `dim` values of `x` into `out` (`x.len()` must be a multiple of `dim`).
pub fn layer_norm(x: &[f32], out: &mut [f32], dim: usize, weight: Option<&[f32]>, bias: Option<&[f32]>, eps: f32) {
    assert!(dim > 0 && x.len() % dim == 0 && out.len() >= x.len(), "layer_norm sizes");
    for (row, o) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / dim as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / dim as f64;
        let inv = 1.0 / (var + eps as f64).sqrt();
        for (i, (o, &v)) in o.iter_mut().zip(row).enumerate() {
            let mut y = ((v as f64 - mean) * inv) as f32;
            if let Some(w) = weight {
                y *= w[i];
            }
            if let Some(b) = bias {
                y += b[i];
            }
            *o = y;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_rows_with_affine() {
        let x = [1.0f32, 2.0, 3.0, 4.0];
        let mut y = [0.0f32; 4];
        layer_norm(&x, &mut y, 4, Some(&[1.0, 1.0, 2.0, 1.0]), Some(&[0.0, 0.0, 0.0, 0.5]), 0.0);
        let s = 1.25f32.sqrt(); // biased variance of 1..4
        let want = [-1.5 / s, -0.5 / s, 2.0 * 0.5 / s, 1.5 / s + 0.5];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn constant_row_is_zero_with_eps() {
        let mut y = [1.0f32; 3];
        layer_norm(&[-2.0; 3], &mut y, 3, None, None, 1e-5);
        assert_eq!(y, [0.0; 3]);
    }
}
