//! Rotary position embedding on **adjacent pairs** `(x[2i], x[2i+1])` (not the NeoX half split), with the angles
//! computed in float32 exactly as the reference does: `freq_i = exp(f32(i) · f32(−2·ln(max_period)/D))`,
//! `angle = f32(position) · freq_i`. Float64 angles would drift by ~1e-4 at the positions Mimi reaches.

/// The per-pair frequencies for head dimension `head_dim`.
pub fn rope_freqs(head_dim: usize, max_period: f32) -> Vec<f32> {
    let scale = (-(max_period as f64).ln() * 2.0 / head_dim as f64) as f32;
    (0..head_dim / 2).map(|i| (i as f32 * scale).exp()).collect()
}

/// Rotates `x` laid out `[t, heads, head_dim]` in place; row `r` sits at absolute position `pos0 + r`.
pub fn apply_rope(x: &mut [f32], t: usize, heads: usize, head_dim: usize, pos0: usize, freqs: &[f32]) {
    assert_eq!(x.len(), t * heads * head_dim, "rope sizes");
    assert_eq!(freqs.len() * 2, head_dim, "rope freqs");
    for r in 0..t {
        let pos = (pos0 + r) as f32;
        for (i, &f) in freqs.iter().enumerate() {
            let angle = pos * f;
            let (sin, cos) = ((angle as f64).sin() as f32, (angle as f64).cos() as f32);
            for h in 0..heads {
                let j = (r * heads + h) * head_dim + 2 * i;
                let (re, im) = (x[j], x[j + 1]);
                x[j] = re * cos - im * sin;
                x[j + 1] = re * sin + im * cos;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_pairs_by_position_times_frequency() {
        let freqs = rope_freqs(4, 10_000.0);
        assert_eq!(freqs[0], 1.0);
        assert!((freqs[1] as f64 - 0.01).abs() < 1e-9);
        // two rows (positions 3, 4), one head
        let mut x = vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0];
        apply_rope(&mut x, 2, 1, 4, 3, &freqs);
        let a = 3.0f64;
        assert!((x[0] as f64 - a.cos()).abs() < 1e-6 && (x[1] as f64 - a.sin()).abs() < 1e-6);
        let b = 3.0 * 0.01f64;
        assert!((x[2] as f64 + b.sin()).abs() < 1e-6 && (x[3] as f64 - b.cos()).abs() < 1e-6);
        assert!((x[4] as f64 - 4.0f64.cos()).abs() < 1e-6);
    }
}
