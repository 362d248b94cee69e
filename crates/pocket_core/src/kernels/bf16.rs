//! BF16 → F32 widening. A BF16 value is the upper half of an f32's bits, so widening is a 16-bit left shift.

/// Scalar reference.
pub fn bf16_to_f32_ref(src: &[u16], dst: &mut [f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f32::from_bits((s as u32) << 16);
    }
}

/// SIMD version: eight values per step (`u32x4.extend_{low,high}_u16x8` then a shift).
pub fn bf16_to_f32(src: &[u16], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len());
    #[cfg(target_arch = "wasm32")]
    {
        use core::arch::wasm32::*;
        let n8 = src.len() / 8 * 8;
        let mut i = 0;
        while i < n8 {
            // SAFETY: i + 8 <= len for both slices; wasm loads/stores may be unaligned.
            unsafe {
                let v = v128_load(src.as_ptr().add(i) as *const v128);
                let lo = i32x4_shl(u32x4_extend_low_u16x8(v), 16);
                let hi = i32x4_shl(u32x4_extend_high_u16x8(v), 16);
                v128_store(dst.as_mut_ptr().add(i) as *mut v128, lo);
                v128_store(dst.as_mut_ptr().add(i + 4) as *mut v128, hi);
            }
            i += 8;
        }
        bf16_to_f32_ref(&src[n8..], &mut dst[n8..]);
    }
    #[cfg(not(target_arch = "wasm32"))]
    bf16_to_f32_ref(src, dst);
}

/// F16 (IEEE half) → F32, scalar: weights in F16 are rare, so this path is not vectorised.
pub fn f16_to_f32(src: &[u16], dst: &mut [f32]) {
    for (d, &h) in dst.iter_mut().zip(src) {
        let sign = ((h as u32) & 0x8000) << 16;
        let exp = ((h >> 10) & 0x1f) as u32;
        let man = (h & 0x3ff) as u32;
        *d = if exp == 0 {
            // zero or subnormal: man · 2^-24
            let v = man as f32 * (1.0 / 16_777_216.0);
            if sign != 0 { -v } else { v }
        } else if exp == 31 {
            f32::from_bits(sign | 0x7f80_0000 | (man << 13))
        } else {
            f32::from_bits(sign | ((exp + 112) << 23) | (man << 13))
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_matches_reference_on_all_patterns() {
        let src: Vec<u16> = (0..=u16::MAX).collect();
        let mut a = vec![0.0; src.len()];
        let mut b = vec![0.0; src.len()];
        bf16_to_f32_ref(&src, &mut a);
        bf16_to_f32(&src, &mut b);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.to_bits(), y.to_bits());
        }
        assert_eq!(a[0x3f80], 1.0);
        assert_eq!(a[0xc000], -2.0);
    }

    #[test]
    fn f16_known_values() {
        let mut d = [0.0f32; 5];
        f16_to_f32(&[0x3c00, 0xc000, 0x0001, 0x7bff, 0x0000], &mut d);
        assert_eq!(d, [1.0, -2.0, 5.960_464_5e-8, 65504.0, 0.0]);
    }
}
