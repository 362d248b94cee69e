//! Causal multi-head attention over a KV cache, shared by FlowLM (a linear cache that grows before each text
//! chunk) and the Mimi transformers (a ring buffer over a sliding `context` window).
//!
//! Layout everywhere is the reference's `[position, heads, head_dim]`, so voice-state files map onto the cache
//! directly. K is stored after RoPE. A query at absolute position `p` sees keys at `k ≤ p` and, with a window,
//! `p − k < context`.

use std::ops::Range;

use crate::kernels::activation::VecExp;
use crate::pool::{self, SharedOut};
use crate::simd::F32x4;

/// K and V for one attention module.
pub struct KvCache {
    pub heads: usize,
    pub head_dim: usize,
    /// Positions the buffers hold.
    capacity: usize,
    /// Ring buffer (position `p` lives in slot `p % capacity`) instead of a linear cache (slot `p`).
    ring: bool,
    k: Vec<f32>,
    v: Vec<f32>,
    /// Number of positions written so far = the absolute position of the next one.
    pub offset: usize,
}

impl KvCache {
    /// An empty cache. A ring needs `capacity ≥ context − 1 + T` for calls of up to `T` positions.
    pub fn new(heads: usize, head_dim: usize, capacity: usize, ring: bool) -> Self {
        let n = capacity * heads * head_dim;
        Self { heads, head_dim, capacity, ring, k: vec![0.0; n], v: vec![0.0; n], offset: 0 }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn row(&self) -> usize {
        self.heads * self.head_dim
    }

    fn slot(&self, pos: usize) -> usize {
        if self.ring { pos % self.capacity } else { pos }
    }

    /// Forgets every position (buffers are kept).
    pub fn reset(&mut self) {
        self.offset = 0;
    }

    /// Grows a linear cache to at least `capacity` positions, keeping its contents.
    pub fn reserve(&mut self, capacity: usize) {
        assert!(!self.ring, "a ring cache has a fixed capacity");
        if capacity > self.capacity {
            self.capacity = capacity;
            let n = capacity * self.row();
            self.k.resize(n, 0.0);
            self.v.resize(n, 0.0);
        }
    }

    /// Makes `self` a copy of `other`'s used positions (a linear cache; only the prefix is copied, and `self`
    /// keeps its larger capacity if it has one).
    pub fn copy_from(&mut self, other: &KvCache) {
        assert!(!self.ring && !other.ring && self.row() == other.row(), "copy between matching linear caches");
        self.reserve(other.offset);
        let n = other.offset * self.row();
        self.k[..n].copy_from_slice(&other.k[..n]);
        self.v[..n].copy_from_slice(&other.v[..n]);
        self.offset = other.offset;
    }

    /// Writes `t` new positions (`[t, heads, head_dim]` each) at `offset` and advances it.
    pub fn append(&mut self, k: &[f32], v: &[f32], t: usize) {
        let row = self.row();
        assert!(k.len() >= t * row && v.len() >= t * row, "kv append sizes");
        assert!(self.ring || self.offset + t <= self.capacity, "kv cache full: grow it before the call");
        for r in 0..t {
            let s = self.slot(self.offset + r) * row;
            self.k[s..s + row].copy_from_slice(&k[r * row..(r + 1) * row]);
            self.v[s..s + row].copy_from_slice(&v[r * row..(r + 1) * row]);
        }
        self.offset += t;
    }

    /// K of the used positions, `[offset, heads, head_dim]` (linear caches only; for export).
    pub fn keys(&self) -> &[f32] {
        assert!(!self.ring);
        &self.k[..self.offset * self.row()]
    }

    /// V of the used positions (linear caches only; for export).
    pub fn values(&self) -> &[f32] {
        assert!(!self.ring);
        &self.v[..self.offset * self.row()]
    }

    /// Replaces the contents with `offset` positions of K and V (for voice-state import).
    pub fn load(&mut self, k: &[f32], v: &[f32], offset: usize) {
        assert!(!self.ring && k.len() == offset * self.row() && v.len() == k.len(), "kv load sizes");
        self.reserve(offset);
        self.k[..k.len()].copy_from_slice(k);
        self.v[..v.len()].copy_from_slice(v);
        self.offset = offset;
    }
}

/// `Σ a[i]·b[i]` with four f32x4 partial sums (any length).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let n16 = n / 16 * 16;
    let mut acc = [F32x4::zero(); 4];
    let mut i = 0;
    while i < n16 {
        for (j, s) in acc.iter_mut().enumerate() {
            *s = F32x4::load(a, i + 4 * j).madd(F32x4::load(b, i + 4 * j), *s);
        }
        i += 16;
    }
    let mut total = acc[0].add(acc[1]).add(acc[2].add(acc[3])).sum();
    for j in n16..n {
        total += a[j] * b[j];
    }
    total
}

/// `y += a·x`.
#[inline]
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    let n = y.len().min(x.len());
    let n4 = n / 4 * 4;
    let av = F32x4::splat(a);
    let mut i = 0;
    while i < n4 {
        av.madd(F32x4::load(x, i), F32x4::load(y, i)).store(y, i);
        i += 4;
    }
    for j in n4..n {
        y[j] += a * x[j];
    }
}

/// Attention of the last `t` positions appended to `cache` (queries `q` `[t, heads, head_dim]`, after RoPE) over
/// the cache, into `out` `[t, heads, head_dim]`. `scores` is scratch of at least `heads · min(offset, context)`
/// values. Scale `1/√head_dim`, softmax with the maximum subtracted.
///
/// The keys are visited position by position, all heads of a position together: a position's K (and V) row is
/// contiguous in the `[position, heads, head_dim]` cache, so the walk is one sequential stream. Head by head, it
/// would stride by a whole row (4 KB in FlowLM) between keys: a page per key, beyond what the prefetchers and the
/// TLB follow, and FlowLM's step paid ~90 ns per key and head for it. Each head's arithmetic (its dots, its
/// softmax, its weighted sum of V, in position order) is the same either way. The threads build splits the heads
/// into one contiguous group per thread.
pub fn attention(q: &[f32], cache: &KvCache, t: usize, context: Option<usize>, out: &mut [f32], scores: &mut [f32]) {
    let (h_n, d) = (cache.heads, cache.head_dim);
    let row = h_n * d;
    let first_pos = cache.offset - t;
    let groups = (pool::helpers() as usize + 1).min(h_n);
    for r in 0..t {
        let p = first_pos + r;
        let lo = context.map_or(0, |c| (p + 1).saturating_sub(c));
        if cache.ring {
            assert!(p + 1 - lo <= cache.capacity && cache.offset - lo <= cache.capacity, "ring cache too small");
        }
        let n_keys = p + 1 - lo;
        let (s_all, o_all) = (SharedOut::new(&mut scores[..h_n * n_keys]), SharedOut::new(&mut out[r * row..][..row]));
        let qr = &q[r * row..(r + 1) * row];
        pool::parallel_ranges(groups, 3 * h_n * n_keys * d, &|gs| {
            let heads = gs.start * h_n / groups..gs.end * h_n / groups;
            // SAFETY: the group's heads own their scores and their columns of the output row.
            let (s, o) = unsafe {
                (s_all.part(heads.start * n_keys, heads.len() * n_keys), o_all.part(heads.start * d, heads.len() * d))
            };
            attend_heads(qr, cache, heads, lo, n_keys, s, o);
        });
    }
}

/// One query row's attention for the heads `heads`, over the keys at positions `lo..lo + n_keys`: `s` holds
/// `n_keys` scores per head, `o` the heads' outputs (`head_dim` values each).
fn attend_heads(q: &[f32], cache: &KvCache, heads: Range<usize>, lo: usize, n_keys: usize, s: &mut [f32], o: &mut [f32]) {
    let (d, row) = (cache.head_dim, cache.row());
    let scale = 1.0 / (d as f32).sqrt();
    for j in 0..n_keys {
        let ks = cache.slot(lo + j) * row;
        for (i, h) in heads.clone().enumerate() {
            s[i * n_keys + j] = dot(&q[h * d..(h + 1) * d], &cache.k[ks + h * d..ks + (h + 1) * d]) * scale;
        }
    }
    // Softmax per head (each head's scores are contiguous: a vector exp); the weights are `e · (1/Σe)`.
    for s in s.chunks_exact_mut(n_keys) {
        let max = s.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let inv = 1.0 / softmax_exp(s, max, 1.0);
        for sc in s.iter_mut() {
            *sc *= inv;
        }
    }
    o.fill(0.0);
    for j in 0..n_keys {
        let vs = cache.slot(lo + j) * row;
        for (i, h) in heads.clone().enumerate() {
            axpy(&mut o[i * d..(i + 1) * d], s[i * n_keys + j], &cache.v[vs + h * d..vs + (h + 1) * d]);
        }
    }
}

/// `x[j] ← exp((x[j] − max)·scale)` in place; returns the sum.
pub fn softmax_exp(x: &mut [f32], max: f32, scale: f32) -> f32 {
    let (m, s) = (F32x4::splat(max), F32x4::splat(scale));
    let ve = VecExp::new();
    let n4 = x.len() / 4 * 4;
    let mut acc = F32x4::zero();
    for i in (0..n4).step_by(4) {
        let e = ve.exp(F32x4::load(x, i).sub(m).mul(s));
        e.store(x, i);
        acc = acc.add(e);
    }
    let mut sum = acc.sum();
    for v in &mut x[n4..] {
        *v = ((*v - max) * scale).exp();
        sum += *v;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{max_rel_diff, random_vec};

    /// Plain reference over full K/V arrays `[positions, heads, d]`, in f64.
    fn reference(q: &[f32], k: &[f32], v: &[f32], p0: usize, t: usize, h_n: usize, d: usize, ctx: Option<usize>) -> Vec<f32> {
        let row = h_n * d;
        let mut out = vec![0.0f32; t * row];
        for r in 0..t {
            let p = p0 + r;
            for h in 0..h_n {
                let keys: Vec<usize> = (0..=p).filter(|&kp| ctx.is_none_or(|c| p - kp < c)).collect();
                let s: Vec<f64> = keys
                    .iter()
                    .map(|&kp| {
                        (0..d).map(|i| q[r * row + h * d + i] as f64 * k[kp * row + h * d + i] as f64).sum::<f64>()
                            / (d as f64).sqrt()
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for i in 0..d {
                    let acc: f64 = keys.iter().zip(&e).map(|(&kp, w)| w / z * v[kp * row + h * d + i] as f64).sum();
                    out[r * row + h * d + i] = acc as f32;
                }
            }
        }
        out
    }

    #[test]
    fn linear_cache_in_chunks_matches_reference() {
        crate::pool::start_host_helpers(2);
        let (h_n, d, total) = (3, 8, 23);
        let (k, v, q) = (random_vec(total * 24, 1), random_vec(total * 24, 2), random_vec(total * 24, 3));
        let mut cache = KvCache::new(h_n, d, 10, false);
        let mut scores = vec![0.0; h_n * total];
        let mut p = 0;
        for t in [7usize, 1, 1, 14] {
            cache.reserve(p + t);
            cache.append(&k[p * 24..], &v[p * 24..], t);
            let mut out = vec![0.0; t * 24];
            attention(&q[p * 24..(p + t) * 24], &cache, t, None, &mut out, &mut scores);
            let want = reference(&q[p * 24..], &k, &v, p, t, h_n, d, None);
            assert!(max_rel_diff(&out, &want) < 1e-5, "chunk at {p}");
            let mut one = vec![0.0; t * 24];
            crate::pool::run_inline(|| attention(&q[p * 24..(p + t) * 24], &cache, t, None, &mut one, &mut scores));
            assert_eq!(out, one, "heads split between threads = one thread, bit for bit");
            p += t;
        }
    }

    #[test]
    fn heads_split_between_threads_are_bit_identical() {
        crate::pool::start_host_helpers(2);
        let (h_n, d, total) = (16, 64, 150); // FlowLM's head shape, enough keys to split
        let row = h_n * d;
        let (k, v, q) = (random_vec(total * row, 9), random_vec(total * row, 10), random_vec(2 * row, 11));
        let mut cache = KvCache::new(h_n, d, total, false);
        cache.append(&k, &v, total);
        let mut scores = vec![0.0; h_n * total];
        let (mut got, mut one) = (vec![0.0; 2 * row], vec![0.0; 2 * row]);
        attention(&q, &cache, 2, None, &mut got, &mut scores);
        crate::pool::run_inline(|| attention(&q, &cache, 2, None, &mut one, &mut scores));
        assert_eq!(got, one);
        let want = reference(&q, &k, &v, total - 2, 2, h_n, d, None);
        assert!(max_rel_diff(&got, &want) < 1e-5);
    }

    #[test]
    fn ring_with_window_matches_reference() {
        let (h_n, d, ctx, t) = (2, 16, 20, 16);
        let total = 16 * 5;
        let (k, v, q) = (random_vec(total * 32, 4), random_vec(total * 32, 5), random_vec(total * 32, 6));
        let mut cache = KvCache::new(h_n, d, ctx - 1 + t, true);
        let mut scores = vec![0.0; h_n * ctx];
        for f in 0..5 {
            let p = f * t;
            cache.append(&k[p * 32..], &v[p * 32..], t);
            let mut out = vec![0.0; t * 32];
            attention(&q[p * 32..(p + t) * 32], &cache, t, Some(ctx), &mut out, &mut scores);
            let want = reference(&q[p * 32..], &k, &v, p, t, h_n, d, Some(ctx));
            assert!(max_rel_diff(&out, &want) < 1e-5, "frame {f}");
        }
    }

    #[test]
    fn dot_and_axpy_match_scalar() {
        let (a, b) = (random_vec(37, 7), random_vec(37, 8));
        let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - want).abs() < 1e-5);
        let mut y = b.clone();
        axpy(&mut y, 0.5, &a);
        for i in 0..37 {
            assert!((y[i] - (b[i] + 0.5 * a[i])).abs() < 1e-7);
        }
    }

    #[test]
    fn copy_from_takes_used_prefix() {
        let mut a = KvCache::new(1, 4, 8, false);
        a.append(&[1.0; 12], &[2.0; 12], 3);
        let mut b = KvCache::new(1, 4, 2, false);
        b.copy_from(&a);
        assert_eq!((b.offset, b.keys(), b.values()), (3, &[1.0; 12][..], &[2.0; 12][..]));
    }
}
