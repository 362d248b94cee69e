//! The machine's ceilings as wasm sees them, for `bench/limits.ts`: streaming read bandwidth (a buffer larger than
//! the caches, read once per pass) and 128-bit f32 multiply-add throughput (independent accumulator chains, so the
//! loop is bound by the vector units, not by latency). The benchmark prints every model figure beside these bounds.

use crate::simd::F32x4;

/// Scalar reference of [`read_sum`]: the wrapping sum of the buffer's 32-bit words.
pub fn read_sum_ref(buf: &[u32]) -> u32 {
    buf.iter().fold(0u32, |a, &w| a.wrapping_add(w))
}

/// Reads every word of `buf` once with 128-bit loads and returns their wrapping sum (equal to [`read_sum_ref`]:
/// wrapping addition does not depend on the grouping). Eight independent accumulators keep the loads in flight.
pub fn read_sum(buf: &[u32]) -> u32 {
    #[cfg(target_arch = "wasm32")]
    {
        use core::arch::wasm32::*;
        let n32 = buf.len() / 32 * 32;
        let mut acc = [i32x4_splat(0); 8];
        let p = buf.as_ptr();
        let mut i = 0;
        while i < n32 {
            for (j, a) in acc.iter_mut().enumerate() {
                // SAFETY: i + 32 <= len; wasm loads may be unaligned.
                *a = i32x4_add(*a, unsafe { v128_load(p.add(i + 4 * j) as *const v128) });
            }
            i += 32;
        }
        let v = acc.iter().fold(i32x4_splat(0), |s, &a| i32x4_add(s, a));
        let lanes = [
            u32x4_extract_lane::<0>(v),
            u32x4_extract_lane::<1>(v),
            u32x4_extract_lane::<2>(v),
            u32x4_extract_lane::<3>(v),
        ];
        lanes.iter().fold(read_sum_ref(&buf[n32..]), |a, &l| a.wrapping_add(l))
    }
    #[cfg(not(target_arch = "wasm32"))]
    read_sum_ref(buf)
}

/// Independent multiply-add chains [`madd_chains`] runs (enough to cover the FMA latency on two ports, few enough
/// that V8 keeps them all in the 16 vector registers).
pub const CHAINS: usize = 12;

/// Scalar reference of [`madd_chains`] for one lane: `iters` times `acc = acc·a + b` from `acc = start`.
pub fn madd_chain_ref(start: f32, a: f32, b: f32, iters: usize) -> f32 {
    (0..iters).fold(start, |acc, _| acc * a + b)
}

/// Runs [`CHAINS`] vector chains of `iters` multiply-adds each (`CHAINS · 4 · iters` MACs; fused in the relaxed
/// build) and returns the sum of every lane, so nothing can be optimised away. Chain `j` starts at `j`.
pub fn madd_chains(a: f32, b: f32, iters: usize) -> f32 {
    let (va, vb) = (F32x4::splat(a), F32x4::splat(b));
    let mut acc: [F32x4; CHAINS] = core::array::from_fn(|j| F32x4::splat(j as f32));
    for _ in 0..iters {
        for c in acc.iter_mut() {
            *c = c.madd(va, vb);
        }
    }
    acc.iter().map(|c| c.sum()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_sum_matches_reference() {
        let buf: Vec<u32> = (0..1000u32).map(|i| i.wrapping_mul(2_654_435_761)).collect();
        for n in [0, 5, 32, 33, 1000] {
            assert_eq!(read_sum(&buf[..n]), read_sum_ref(&buf[..n]));
        }
    }

    #[test]
    fn madd_chains_match_reference() {
        let (a, b, iters) = (0.999, 0.001, 500);
        let want: f32 = (0..CHAINS).map(|j| 4.0 * madd_chain_ref(j as f32, a, b, iters)).sum();
        let got = madd_chains(a, b, iters);
        assert!((got - want).abs() <= 1e-5 * want.abs(), "{got} vs {want}");
    }
}
