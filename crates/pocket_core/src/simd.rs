//! A four-lane f32 vector: WebAssembly `v128` on wasm32, a plain array elsewhere.
//!
//! Kernels are written once against [`F32x4`]. On wasm32 it compiles to SIMD128 instructions (and to
//! `f32x4.relaxed_madd` in the relaxed build); on the host it is an array with the same lane semantics, so host
//! `cargo test` exercises the very code paths the wasm build runs, and the TS tests check the real SIMD.

#[cfg(target_arch = "wasm32")]
use core::arch::wasm32::*;

/// Four f32 lanes.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct F32x4(#[cfg(target_arch = "wasm32")] v128, #[cfg(not(target_arch = "wasm32"))] [f32; 4]);

#[cfg(target_arch = "wasm32")]
impl F32x4 {
    #[inline(always)]
    pub fn zero() -> Self {
        Self(f32x4_splat(0.0))
    }
    #[inline(always)]
    pub fn splat(x: f32) -> Self {
        Self(f32x4_splat(x))
    }
    /// Loads `s[i..i + 4]` (unaligned). The caller guarantees `i + 4 <= s.len()`.
    #[inline(always)]
    pub fn load(s: &[f32], i: usize) -> Self {
        debug_assert!(i + 4 <= s.len());
        unsafe { Self(v128_load(s.as_ptr().add(i) as *const v128)) }
    }
    /// Stores into `s[i..i + 4]`. The caller guarantees `i + 4 <= s.len()`.
    #[inline(always)]
    pub fn store(self, s: &mut [f32], i: usize) {
        debug_assert!(i + 4 <= s.len());
        unsafe { v128_store(s.as_mut_ptr().add(i) as *mut v128, self.0) }
    }
    #[inline(always)]
    pub fn add(self, o: Self) -> Self {
        Self(f32x4_add(self.0, o.0))
    }
    #[inline(always)]
    pub fn sub(self, o: Self) -> Self {
        Self(f32x4_sub(self.0, o.0))
    }
    #[inline(always)]
    pub fn mul(self, o: Self) -> Self {
        Self(f32x4_mul(self.0, o.0))
    }
    #[inline(always)]
    pub fn max(self, o: Self) -> Self {
        Self(f32x4_pmax(self.0, o.0))
    }
    /// `self · b + c`: fused where the relaxed build and the engine allow it, `mul` then `add` otherwise.
    #[inline(always)]
    pub fn madd(self, b: Self, c: Self) -> Self {
        #[cfg(target_feature = "relaxed-simd")]
        {
            Self(f32x4_relaxed_madd(self.0, b.0, c.0))
        }
        #[cfg(not(target_feature = "relaxed-simd"))]
        {
            Self(f32x4_add(f32x4_mul(self.0, b.0), c.0))
        }
    }
    #[inline(always)]
    pub fn div(self, o: Self) -> Self {
        Self(f32x4_div(self.0, o.0))
    }
    #[inline(always)]
    pub fn min(self, o: Self) -> Self {
        Self(f32x4_pmin(self.0, o.0))
    }
    /// `2^n` from `self = n + 1.5·2²³` for whole numbers `n` in −126…127 (used by `exp`): that sum has the bit
    /// pattern `0x4B40_0000 + n`, so adding `bias` (every lane holding the bits of `127 − 0x4B40_0000`, see
    /// [`F32x4::POW2I_BIAS`]) and shifting into the exponent field gives `2^n` with two integer ops.
    #[inline(always)]
    pub fn pow2i_from_magic(self, bias: Self) -> Self {
        Self(i32x4_shl(i32x4_add(self.0, bias.0), 23))
    }
    #[inline(always)]
    pub fn lanes(self) -> [f32; 4] {
        [
            f32x4_extract_lane::<0>(self.0),
            f32x4_extract_lane::<1>(self.0),
            f32x4_extract_lane::<2>(self.0),
            f32x4_extract_lane::<3>(self.0),
        ]
    }

    /// Widens 8 BF16 values stored as pairs (`s[i + 2l]` = value `4 + l`, `s[i + 2l + 1]` = value `l`): each
    /// 32-bit lane holds two values, the upper already in f32 position, so three shifts widen all eight. JSC (Bun's
    /// engine) runs a Mimi frame and a BF16 AR step ~9 % faster this way than with plain order's two `extend`s and
    /// two shifts; V8 runs both alike.
    /// The caller guarantees `i + 8 <= s.len()`.
    #[inline(always)]
    pub fn load_bf16x8_pairs(s: &[u16], i: usize) -> (Self, Self) {
        debug_assert!(i + 8 <= s.len());
        // SAFETY: i + 8 <= len; wasm loads may be unaligned.
        let v = unsafe { v128_load(s.as_ptr().add(i) as *const v128) };
        (Self(i32x4_shl(u32x4_shr(v, 16), 16)), Self(i32x4_shl(v, 16)))
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl F32x4 {
    #[inline(always)]
    pub fn zero() -> Self {
        Self([0.0; 4])
    }
    #[inline(always)]
    pub fn splat(x: f32) -> Self {
        Self([x; 4])
    }
    #[inline(always)]
    pub fn load(s: &[f32], i: usize) -> Self {
        Self([s[i], s[i + 1], s[i + 2], s[i + 3]])
    }
    #[inline(always)]
    pub fn store(self, s: &mut [f32], i: usize) {
        s[i..i + 4].copy_from_slice(&self.0);
    }
    #[inline(always)]
    pub fn add(self, o: Self) -> Self {
        Self(core::array::from_fn(|l| self.0[l] + o.0[l]))
    }
    #[inline(always)]
    pub fn sub(self, o: Self) -> Self {
        Self(core::array::from_fn(|l| self.0[l] - o.0[l]))
    }
    #[inline(always)]
    pub fn mul(self, o: Self) -> Self {
        Self(core::array::from_fn(|l| self.0[l] * o.0[l]))
    }
    #[inline(always)]
    pub fn max(self, o: Self) -> Self {
        Self(core::array::from_fn(|l| if self.0[l] < o.0[l] { o.0[l] } else { self.0[l] }))
    }
    #[inline(always)]
    pub fn madd(self, b: Self, c: Self) -> Self {
        Self(core::array::from_fn(|l| self.0[l] * b.0[l] + c.0[l]))
    }
    #[inline(always)]
    pub fn div(self, o: Self) -> Self {
        Self(core::array::from_fn(|l| self.0[l] / o.0[l]))
    }
    #[inline(always)]
    pub fn min(self, o: Self) -> Self {
        Self(core::array::from_fn(|l| if o.0[l] < self.0[l] { o.0[l] } else { self.0[l] }))
    }
    #[inline(always)]
    pub fn pow2i_from_magic(self, bias: Self) -> Self {
        Self(core::array::from_fn(|l| {
            f32::from_bits((self.0[l].to_bits() as i32).wrapping_add(bias.0[l].to_bits() as i32).wrapping_shl(23) as u32)
        }))
    }
    #[inline(always)]
    pub fn lanes(self) -> [f32; 4] {
        self.0
    }

    #[inline(always)]
    pub fn load_bf16x8_pairs(s: &[u16], i: usize) -> (Self, Self) {
        let f = |j: usize| f32::from_bits((s[i + j] as u32) << 16);
        (Self(core::array::from_fn(|l| f(2 * l + 1))), Self(core::array::from_fn(|l| f(2 * l))))
    }
}

impl F32x4 {
    /// The bit pattern [`F32x4::pow2i_from_magic`] adds (`127 − 0x4B40_0000` as a 32-bit integer).
    pub const POW2I_BIAS: u32 = (127i32 - 0x4B40_0000) as u32;

    /// Horizontal sum in a fixed order, `(l0 + l2) + (l1 + l3)`, identical on every target.
    #[inline(always)]
    pub fn sum(self) -> f32 {
        let l = self.lanes();
        (l[0] + l[2]) + (l[1] + l[3])
    }
}

/// Which vector instruction set this build uses: 0 = host emulation, 1 = simd128, 2 = simd128 + relaxed-simd.
pub const fn variant() -> u32 {
    if cfg!(target_feature = "relaxed-simd") {
        2
    } else if cfg!(target_arch = "wasm32") {
        1
    } else {
        0
    }
}
