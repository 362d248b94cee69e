//! The Mimi decoder transformer (spec §4.2 step 3, §4.4): pre-norm layers at the SEANet rate (200 Hz),
//!
//! ```text
//! x += ls1 ⊙ out_proj(attn(rope(q), rope(k), v)),  [q | k | v] = in_proj(LN1(x))
//! x += ls2 ⊙ linear2(gelu_tanh(linear1(LN2(x))))
//! ```
//!
//! with no biases in the projections, LayerNorm eps 1e-5 (affine), LayerScale (`ls`, when present), RoPE on
//! interleaved pairs at absolute positions, and causal attention limited to a window of `context` steps: a query
//! at `p` sees keys `p − context < k ≤ p`. The KV cache is a ring of at least `context − 1 + T_max` positions per
//! layer, in the per-stream [`TransformerState`]. Positions keep counting across calls (16 per latent frame).
//!
//! Attention is batched over the `T` queries of a call: the ring stores, per head, K transposed (`[head_dim × cap]`)
//! and V (`[cap × head_dim]`), so the scores `Q·Kᵀ` and the output `P·V` are two small GEMMs per head over every
//! ring slot, and the softmax (vectorised `exp`) gives zero weight to slots outside each query's window. The
//! shared scalar kernel `kernels::attention` is the reference it is tested against.

use std::ops::Range;
use std::rc::Rc;

use crate::error::{CoreError, Result};
use crate::kernels::activation::gelu_tanh_parallel as gelu_tanh;
use crate::kernels::attention::softmax_exp;
use crate::kernels::linear::Linear;
use crate::kernels::norm::layer_norm;
use crate::kernels::rope::{apply_rope, rope_freqs};
use crate::memory::zeros;
use crate::simd::F32x4;
use crate::params::Params;
use crate::pool::{self, SharedOut};
use crate::taps::Taps;
use crate::weights::{Packer, Packing, WeightStore};

/// LayerNorm epsilon of the Mimi transformers.
const LN_EPS: f32 = 1e-5;

/// Hyper-parameters (the config's `mimi.transformer`).
#[derive(Clone, Debug)]
pub struct TransformerConfig {
    pub d_model: usize,
    pub num_heads: usize,
    pub num_layers: usize,
    pub dim_feedforward: usize,
    pub context: usize,
    pub max_period: f32,
    /// Whether the layers have LayerScale vectors (`layer_scale` not null in the config).
    pub layer_scale: bool,
}

impl TransformerConfig {
    /// Reads `d_model num_heads num_layers dim_feedforward context max_period layer_scale`.
    pub fn from_params(p: &Params) -> Result<Self> {
        let c = Self {
            d_model: p.usize("d_model")?,
            num_heads: p.usize("num_heads")?,
            num_layers: p.usize("num_layers")?,
            dim_feedforward: p.usize("dim_feedforward")?,
            context: p.usize("context")?,
            max_period: p.f32("max_period")?,
            layer_scale: p.bool("layer_scale")?,
        };
        if c.d_model == 0 || c.num_heads == 0 || !c.d_model.is_multiple_of(c.num_heads) || !(c.d_model / c.num_heads).is_multiple_of(2) {
            return Err(CoreError::new(format!(
                "transformer d_model {} must split into {} heads of an even size",
                c.d_model, c.num_heads
            )));
        }
        if c.dim_feedforward == 0 || c.context == 0 || c.max_period.is_nan() || c.max_period <= 1.0 {
            return Err(CoreError::new("transformer dim_feedforward, context and max_period must be positive"));
        }
        if c.d_model > 1 << 14 || c.dim_feedforward > 1 << 16 || c.context > 1 << 16 || c.num_layers > 64 {
            return Err(CoreError::new("transformer dimensions are too large"));
        }
        Ok(c)
    }

    fn head_dim(&self) -> usize {
        self.d_model / self.num_heads
    }
}

/// The two projection weights of half-layer `h` (of layer prefix `p`): name, shape and how many equal row blocks
/// it is packed as (in_proj's `[q | k | v]`: three).
fn projections(p: &str, cfg: &TransformerConfig, h: usize) -> [(String, Vec<usize>, usize); 2] {
    let (d, ff) = (cfg.d_model, cfg.dim_feedforward);
    if h % 2 == 0 {
        [(format!("{p}.self_attn.in_proj.weight"), vec![3 * d, d], 3), (format!("{p}.self_attn.out_proj.weight"), vec![d, d], 1)]
    } else {
        [(format!("{p}.linear1.weight"), vec![ff, d], 1), (format!("{p}.linear2.weight"), vec![d, ff], 1)]
    }
}

/// A projection `[n_out, n_in]` as `parts` [`Linear`]s of `n_out / parts` rows each, BF16 panels where that loses
/// nothing when `compact` ([`Linear::compact`]).
fn projection_packer(shape: &[usize], parts: usize, compact: bool) -> Packer {
    let (rows, n_in) = (shape[0] / parts, shape[1]);
    Rc::new(move |w, _| {
        let part = |j: usize| Linear::from_fn(rows, n_in, None, |c, i| w((j * rows + c) * n_in + i));
        Box::new((0..parts).map(|j| if compact { part(j).compact() } else { part(j) }).collect::<Vec<_>>())
    })
}

/// Every tensor [`MimiTransformer::from_store`] takes, with its shape.
pub fn expected_tensors(prefix: &str, cfg: &TransformerConfig) -> Vec<(String, Vec<usize>)> {
    expected_half_tensors(prefix, cfg, 0..2 * cfg.num_layers)
}

/// The tensors of the half-layers `halves` (`2·i`: layer `i`'s attention block, `2·i + 1`: its feed-forward block).
pub fn expected_half_tensors(prefix: &str, cfg: &TransformerConfig, halves: Range<usize>) -> Vec<(String, Vec<usize>)> {
    let (d, ff) = (cfg.d_model, cfg.dim_feedforward);
    let mut v = Vec::new();
    for h in halves {
        let (p, n) = (format!("{prefix}.layers.{}", h / 2), h % 2 + 1);
        if n == 1 {
            v.push((format!("{p}.self_attn.in_proj.weight"), vec![3 * d, d]));
            v.push((format!("{p}.self_attn.out_proj.weight"), vec![d, d]));
        } else {
            v.push((format!("{p}.linear1.weight"), vec![ff, d]));
            v.push((format!("{p}.linear2.weight"), vec![d, ff]));
        }
        v.push((format!("{p}.norm{n}.weight"), vec![d]));
        v.push((format!("{p}.norm{n}.bias"), vec![d]));
        if cfg.layer_scale {
            v.push((format!("{p}.layer_scale_{n}.scale"), vec![d]));
        }
    }
    v
}

/// `x += ls1 ⊙ out_proj(attn(…LN1(x)))`: the half of a layer that carries state (its KV ring).
struct Attn {
    norm: (Vec<f32>, Vec<f32>),
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    ls: Option<Vec<f32>>,
}

/// `x += ls2 ⊙ linear2(gelu(linear1(LN2(x))))`: the stateless half.
struct Ff {
    norm: (Vec<f32>, Vec<f32>),
    lin1: Linear,
    lin2: Linear,
    ls: Option<Vec<f32>>,
}

/// Half a layer: the decoder's pipeline may be cut between the two halves of a layer (see `mimi.rs`).
enum Half {
    Attn(Attn),
    Ff(Ff),
}

/// The transformer's weights: all its layers, or the run of half-layers one part of a split decoder runs.
pub struct MimiTransformer {
    pub cfg: TransformerConfig,
    /// `(index, half)`: index `2·i` is layer `i`'s attention block, `2·i + 1` its feed-forward block; in order.
    halves: Vec<(usize, Half)>,
    /// Whether the last half is the transformer's last (its output is the transformer's output tap).
    out_tap: bool,
    freqs: Vec<f32>,
}

impl MimiTransformer {
    /// Takes `{prefix}.layers.{i}.*` (e.g. prefix `mimi.decoder_transformer.transformer`), with f32 panels.
    pub fn from_store(s: &mut WeightStore, prefix: &str, cfg: TransformerConfig) -> Result<Self> {
        Self::from_store_packed(s, prefix, cfg, false)
    }

    /// As [`Self::from_store`]; with `compact`, each projection switches to BF16 panels as it is packed, when that
    /// loses nothing ([`Linear::compact`]: results stay bit-identical; half the bytes, no f32 copy of all of them).
    pub fn from_store_packed(s: &mut WeightStore, prefix: &str, cfg: TransformerConfig, compact: bool) -> Result<Self> {
        let all = 0..2 * cfg.num_layers;
        Self::from_store_halves(s, prefix, cfg, all, true, compact)
    }

    /// Takes only the tensors of the half-layers `halves` (see [`expected_half_tensors`]); `out_tap`: this part
    /// records the transformer's output tap; `compact` as in [`Self::from_store_packed`].
    pub fn from_store_halves(
        s: &mut WeightStore,
        prefix: &str,
        cfg: TransformerConfig,
        halves: Range<usize>,
        out_tap: bool,
        compact: bool,
    ) -> Result<Self> {
        let d = cfg.d_model;
        let mut out = Vec::new();
        for h in halves {
            let (p, n) = (format!("{prefix}.layers.{}", h / 2), h % 2 + 1);
            let vec = |s: &mut WeightStore, n: &str| s.take(&format!("{p}.{n}"), &[d]).map(|t| t.data);
            let norm = (vec(s, &format!("norm{n}.weight"))?, vec(s, &format!("norm{n}.bias"))?);
            let ls = if cfg.layer_scale { Some(vec(s, &format!("layer_scale_{n}.scale"))?) } else { None };
            let take = |s: &mut WeightStore, (name, shape, parts): (String, Vec<usize>, usize)| {
                s.take_packed::<Vec<Linear>>(&name, &shape, None, &projection_packer(&shape, parts, compact))
            };
            let [first, second] = projections(&p, &cfg, h);
            let (mut a, mut b) = (take(s, first)?, take(s, second)?);
            let one = |v: &mut Vec<Linear>| v.pop().expect("a packed projection");
            out.push((
                h,
                if n == 1 {
                    // in_proj rows are [q | k | v]: three GEMMs write q, k and v into separate buffers.
                    let (v, k, q) = (one(&mut a), one(&mut a), one(&mut a));
                    Half::Attn(Attn { norm, q, k, v, out: one(&mut b), ls })
                } else {
                    Half::Ff(Ff { norm, lin1: one(&mut a), lin2: one(&mut b), ls })
                },
            ));
        }
        let freqs = rope_freqs(cfg.head_dim(), cfg.max_period);
        Ok(Self { cfg, halves: out, out_tap, freqs })
    }

    /// Plans the projections of the half-layers `halves` to be packed as they are added, as
    /// [`Self::from_store_halves`] packs them ([`WeightStore::plan`]).
    pub fn plan_halves(s: &mut WeightStore, prefix: &str, cfg: &TransformerConfig, halves: Range<usize>, compact: bool) {
        for h in halves {
            for (name, shape, parts) in projections(&format!("{prefix}.layers.{}", h / 2), cfg, h) {
                let pack = projection_packer(&shape, parts, compact);
                s.plan(&name, Packing::Custom { shape, bias: None, pack });
            }
        }
    }

    /// Bytes of packed weights.
    pub fn weight_bytes(&self) -> usize {
        let d = self.cfg.d_model;
        let lin = |ls: &[&Linear]| ls.iter().map(|x| x.weight_bytes()).sum::<usize>() + 3 * d * 4;
        self.halves
            .iter()
            .map(|(_, h)| match h {
                Half::Attn(a) => lin(&[&a.q, &a.k, &a.v, &a.out]),
                Half::Ff(f) => lin(&[&f.lin1, &f.lin2]),
            })
            .sum()
    }

    /// Multiply-accumulates of half-layer `h` per row (projections; attention scores excluded).
    pub fn half_macs(cfg: &TransformerConfig, h: usize) -> usize {
        let d = cfg.d_model;
        if h.is_multiple_of(2) { 4 * d * d } else { 2 * d * cfg.dim_feedforward }
    }

    /// Runs this part's half-layers on `x` `[t × d_model]` in place, at positions continuing the state's.
    pub fn forward(&self, st: &mut TransformerState, x: &mut [f32], t: usize, mut taps: Option<&mut Taps>, tap0: usize) {
        assert!(t <= st.max_t, "transformer: {t} rows exceed the state's {}", st.max_t);
        let (d, h_n, hd) = (self.cfg.d_model, self.cfg.num_heads, self.cfg.head_dim());
        let n = t * d;
        let x = &mut x[..n];
        let mut rings = st.rings.iter_mut();
        let mut tap = tap0;
        for (_, half) in &self.halves {
            match half {
                Half::Attn(l) => {
                    let ring = rings.next().expect("one ring per attention block");
                    let pos0 = ring.offset;
                    layer_norm(x, &mut st.norm[..n], d, Some(&l.norm.0), Some(&l.norm.1), LN_EPS);
                    l.q.forward(&st.norm, &mut st.q, t);
                    l.k.forward(&st.norm, &mut st.k, t);
                    l.v.forward(&st.norm, &mut st.v, t);
                    apply_rope(&mut st.q[..n], t, h_n, hd, pos0, &self.freqs);
                    apply_rope(&mut st.k[..n], t, h_n, hd, pos0, &self.freqs);
                    ring.append(&st.k, &st.v, t);
                    ring.attend(&st.q, t, self.cfg.context, &mut st.scores, &mut st.inv, &mut st.head_out, &mut st.attn);
                    l.out.forward(&st.attn, &mut st.proj, t);
                    residual(x, &st.proj[..n], l.ls.as_deref(), d);
                }
                Half::Ff(l) => {
                    layer_norm(x, &mut st.norm[..n], d, Some(&l.norm.0), Some(&l.norm.1), LN_EPS);
                    l.lin1.forward(&st.norm, &mut st.ff, t);
                    gelu_tanh(&mut st.ff[..t * self.cfg.dim_feedforward]);
                    l.lin2.forward(&st.ff, &mut st.proj, t);
                    residual(x, &st.proj[..n], l.ls.as_deref(), d);
                    if let Some(tp) = taps.as_deref_mut() {
                        tp.put(tap, x);
                    }
                    tap += 1;
                }
            }
        }
        if let (true, Some(tp)) = (self.out_tap, taps) {
            tp.put(tap, x);
        }
    }

    /// Tap names [`Self::forward`] records: each whole layer's output (`{prefix}.layer{i}_out`, after its
    /// feed-forward block), then the transformer's (`{prefix}_out`) when this part ends it.
    pub fn tap_names(&self, prefix: &str) -> Vec<String> {
        let mut v: Vec<String> =
            self.halves.iter().filter(|(h, _)| h % 2 == 1).map(|(h, _)| format!("{prefix}.layer{}_out", h / 2)).collect();
        if self.out_tap {
            v.push(format!("{prefix}_out"));
        }
        v
    }

    fn attn_blocks(&self) -> usize {
        self.halves.iter().filter(|(_, h)| matches!(h, Half::Attn(_))).count()
    }
}

/// `x += ls ⊙ y` row by row (`x + y` without LayerScale), as the reference rounds it: product, then sum.
fn residual(x: &mut [f32], y: &[f32], ls: Option<&[f32]>, d: usize) {
    match ls {
        Some(ls) => {
            for (xr, yr) in x.chunks_exact_mut(d).zip(y.chunks_exact(d)) {
                for ((a, &b), &s) in xr.iter_mut().zip(yr).zip(ls) {
                    *a += s * b;
                }
            }
        }
        None => {
            for (a, &b) in x.iter_mut().zip(y) {
                *a += b;
            }
        }
    }
}

/// Per-stream transformer state: one KV ring per attention block of the part, plus scratch for up to `max_t` rows per call.
pub struct TransformerState {
    max_t: usize,
    rings: Vec<RingKv>,
    norm: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    attn: Vec<f32>,
    proj: Vec<f32>,
    ff: Vec<f32>,
    scores: Vec<f32>,
    inv: Vec<f32>,
    head_out: Vec<f32>,
}

impl TransformerState {
    /// A fresh state for calls of up to `max_t` rows. The attention's scores get a slot per head (so heads can run
    /// on different threads) while that stays within 4 MB, else one slot (calls of many frames).
    pub fn new(tr: &MimiTransformer, max_t: usize) -> Result<Self> {
        let c = &tr.cfg;
        let d = c.d_model;
        let cap = (c.context - 1 + max_t).next_multiple_of(16);
        if cap * d * 2 * c.num_layers > 1 << 28 {
            return Err(CoreError::new("transformer KV cache would exceed 1 GiB"));
        }
        let score_slots = if c.num_heads * max_t * cap * 4 <= 4 << 20 { c.num_heads } else { 1 };
        let mut rings = Vec::new();
        for _ in 0..tr.attn_blocks() {
            rings.push(RingKv::new(c.num_heads, c.head_dim(), cap)?);
        }
        Ok(Self {
            max_t,
            rings,
            norm: zeros(max_t * d)?,
            q: zeros(max_t * d)?,
            k: zeros(max_t * d)?,
            v: zeros(max_t * d)?,
            attn: zeros(max_t * d)?,
            proj: zeros(max_t * d)?,
            ff: zeros(max_t * c.dim_feedforward)?,
            scores: zeros(score_slots * max_t * cap)?,
            inv: zeros(score_slots * max_t)?,
            head_out: zeros(max_t * d)?,
        })
    }

    /// Back to position 0 with an empty cache.
    pub fn reset(&mut self) {
        for r in &mut self.rings {
            r.reset();
        }
    }

    /// Absolute position of the next row.
    pub fn offset(&self) -> usize {
        self.rings.first().map_or(0, |r| r.offset)
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        let kv: usize = self.rings.iter().map(|r| r.kt.len() + r.v.len()).sum();
        let s = self.norm.len() * 6 + self.head_out.len() + self.ff.len() + self.scores.len() + self.inv.len();
        (kv + s) * 4
    }
}

/// One layer's KV ring: position `p` lives in slot `p % cap`; per head, K is stored transposed (`kt`:
/// `[heads][head_dim][cap]`, after RoPE) and V as rows (`v`: `[heads][cap][head_dim]`).
struct RingKv {
    heads: usize,
    hd: usize,
    cap: usize,
    kt: Vec<f32>,
    v: Vec<f32>,
    /// Positions written so far = the absolute position of the next one.
    offset: usize,
}

impl RingKv {
    fn new(heads: usize, hd: usize, cap: usize) -> Result<Self> {
        Ok(Self { heads, hd, cap, kt: zeros(heads * hd * cap)?, v: zeros(heads * cap * hd)?, offset: 0 })
    }

    /// Empty again; slots are zeroed so stale values can never reach an output (they get weight 0 anyway).
    fn reset(&mut self) {
        self.offset = 0;
        self.kt.fill(0.0);
        self.v.fill(0.0);
    }

    /// Stores `t` positions of K and V (`[t × heads·head_dim]` each) and advances the offset.
    fn append(&mut self, k: &[f32], v: &[f32], t: usize) {
        let (hd, cap) = (self.hd, self.cap);
        let d = self.heads * hd;
        for r in 0..t {
            let slot = (self.offset + r) % cap;
            for h in 0..self.heads {
                let src = r * d + h * hd;
                for (e, &kv) in k[src..src + hd].iter().enumerate() {
                    self.kt[(h * hd + e) * cap + slot] = kv;
                }
                let dst = (h * cap + slot) * hd;
                self.v[dst..dst + hd].copy_from_slice(&v[src..src + hd]);
            }
        }
        self.offset += t;
    }

    /// Attention of the last `t` positions appended (queries `q` `[t × d]`, after RoPE) into `out` `[t × d]`.
    /// A query at `p` sees the positions `max(p − context + 1, 0) ≤ k ≤ p` (all still in the ring since
    /// `cap ≥ context − 1 + t`). Scratch: `head_out` `heads × t × head_dim`; `scores` (`t × cap` each) and `inv`
    /// (`t` each) either for every head, so heads run on whichever threads are free (the threads build), or for one
    /// head (see [`TransformerState::new`]), so heads run one after the other.
    #[allow(clippy::too_many_arguments)]
    fn attend(
        &self,
        q: &[f32],
        t: usize,
        context: usize,
        scores: &mut [f32],
        inv: &mut [f32],
        head_out: &mut [f32],
        out: &mut [f32],
    ) {
        let (hd, cap, heads) = (self.hd, self.cap, self.heads);
        let d = heads * hd;
        let end = self.offset;
        // Slots ever written; cap is a multiple of 16 so this stays within it.
        let n_slots = end.next_multiple_of(4).min(cap);
        // One scratch slot per head, or a single one shared by heads run in turn.
        let slots = if scores.len() >= heads * t * cap && inv.len() >= heads * t { heads } else { 1 };
        let (scores, inv) = (SharedOut::new(&mut scores[..slots * t * cap]), SharedOut::new(&mut inv[..slots * t]));
        let (head_out, out) = (SharedOut::new(&mut head_out[..heads * t * hd]), SharedOut::new(&mut out[..t * d]));
        let work = if slots == heads { 2 * heads * t * n_slots * hd } else { 0 };
        pool::parallel_ranges(heads, work, &|hs| {
            for h in hs {
                let slot = h % slots;
                // SAFETY: head h's scratch slot and its columns of `out` belong to this chunk alone (with one slot,
                // the work of 0 keeps every head in one chunk).
                let (s, i, o) = unsafe {
                    (scores.part(slot * t * cap, t * cap), inv.part(slot * t, t), head_out.part(h * t * hd, t * hd))
                };
                self.attend_head(h, q, t, context, n_slots, s, i, o);
                for r in 0..t {
                    let dst = unsafe { out.part(r * d + h * hd, hd) };
                    dst.copy_from_slice(&o[r * hd..(r + 1) * hd]);
                }
            }
        });
    }

    /// Head `h` of [`Self::attend`] into `out` `[t × head_dim]`.
    #[allow(clippy::too_many_arguments)]
    fn attend_head(
        &self,
        h: usize,
        q: &[f32],
        t: usize,
        context: usize,
        n_slots: usize,
        scores: &mut [f32],
        inv: &mut [f32],
        out: &mut [f32],
    ) {
        let (hd, cap) = (self.hd, self.cap);
        let d = self.heads * hd;
        let pos0 = self.offset - t;
        let scale = 1.0 / (hd as f32).sqrt();
        let kt = &self.kt[h * hd * cap..(h + 1) * hd * cap];
        gemm_nn(&q[h * hd..], d, kt, cap, scores, cap, t, n_slots, hd);
        for r in 0..t {
            let p = pos0 + r;
            let lo = (p + 1).saturating_sub(context);
            let row = &mut scores[r * cap..r * cap + n_slots];
            // The window's positions lo..=p as at most two slot ranges.
            let (s0, len) = (lo % cap, p + 1 - lo);
            let first = s0..(s0 + len).min(cap);
            let second = 0..(s0 + len).saturating_sub(cap);
            let mut max = f32::NEG_INFINITY;
            for j in first.clone().chain(second.clone()) {
                max = max.max(row[j]);
            }
            let mut sum = 0.0f32;
            for range in [second.clone(), first.clone()] {
                sum += softmax_exp(&mut row[range], max, scale);
            }
            row[second.end..first.start].fill(0.0);
            row[first.end..].fill(0.0);
            inv[r] = 1.0 / sum;
        }
        let v = &self.v[h * cap * hd..(h + 1) * cap * hd];
        gemm_nn(scores, cap, v, hd, out, hd, t, hd, n_slots);
        for r in 0..t {
            let o = &mut out[r * hd..(r + 1) * hd];
            let s = F32x4::splat(inv[r]);
            let n4 = hd / 4 * 4;
            for i in (0..n4).step_by(4) {
                F32x4::load(o, i).mul(s).store(o, i);
            }
            for x in &mut o[n4..] {
                *x *= inv[r];
            }
        }
    }
}

/// `c[m × n] = a[m × k] · b[k × n]` with row strides `lda`, `ldb`, `ldc` (`b` row-major; `n` a multiple of 4).
/// Tiles of 2 rows × 16 columns: each loaded row segment of `b` serves two rows of `a`.
#[allow(clippy::too_many_arguments)]
fn gemm_nn(a: &[f32], lda: usize, b: &[f32], ldb: usize, c: &mut [f32], ldc: usize, m: usize, n: usize, k: usize) {
    debug_assert!(n.is_multiple_of(4));
    let mut c0 = 0;
    while c0 < n {
        match (n - c0).min(16) / 4 {
            4 => gemm_cols::<4>(a, lda, b, ldb, c, ldc, m, k, c0),
            3 => gemm_cols::<3>(a, lda, b, ldb, c, ldc, m, k, c0),
            2 => gemm_cols::<2>(a, lda, b, ldb, c, ldc, m, k, c0),
            _ => gemm_cols::<1>(a, lda, b, ldb, c, ldc, m, k, c0),
        }
        c0 += 16;
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gemm_cols<const NV: usize>(
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    m: usize,
    k: usize,
    c0: usize,
) {
    let mut r = 0;
    while r < m {
        let two = r + 1 < m;
        let a0 = &a[r * lda..r * lda + k];
        let a1 = if two { &a[(r + 1) * lda..(r + 1) * lda + k] } else { a0 };
        let mut x = [F32x4::zero(); NV];
        let mut y = [F32x4::zero(); NV];
        for (i, (&u, &v)) in a0.iter().zip(a1).enumerate() {
            let brow = &b[i * ldb + c0..i * ldb + c0 + 4 * NV];
            let (u, v) = (F32x4::splat(u), F32x4::splat(v));
            for j in 0..NV {
                let w = F32x4::load(brow, 4 * j);
                x[j] = u.madd(w, x[j]);
                y[j] = v.madd(w, y[j]);
            }
        }
        for j in 0..NV {
            x[j].store(&mut c[r * ldc + c0..], 4 * j);
            if two {
                y[j].store(&mut c[(r + 1) * ldc + c0..], 4 * j);
            }
        }
        r += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::attention::{KvCache, attention};
    use crate::testing::{max_rel_diff, random_vec};

    #[test]
    fn batched_ring_attention_matches_reference_kernel() {
        crate::pool::start_host_helpers(2);
        // Windows 20 and 250 (the tiny and full configs), 16-step calls, enough calls for the ring to wrap twice;
        // also a 48-step call (three frames at once).
        for (heads, hd, ctx, calls) in [(4, 16, 20, 9), (2, 64, 250, 40)] {
            let d = heads * hd;
            let max_t: usize = 48;
            let mut ring = RingKv::new(heads, hd, (ctx - 1 + max_t).next_multiple_of(16)).unwrap();
            let mut cache = KvCache::new(heads, hd, ctx - 1 + max_t, true);
            let mut scores = vec![0.0; heads * max_t * ring.cap];
            let mut inv = vec![0.0; heads * max_t];
            let mut head_out = vec![0.0; max_t * d];
            let mut ref_scores = vec![0.0; heads * ctx];
            for call in 0..calls {
                let t = if call == 3 { 48 } else { 16 };
                let seed = 100 + 3 * call as u32;
                let (q, k, v) = (random_vec(t * d, seed), random_vec(t * d, seed + 1), random_vec(t * d, seed + 2));
                ring.append(&k, &v, t);
                cache.append(&k, &v, t);
                let (mut got, mut want, mut one) = (vec![0.0; t * d], vec![0.0; t * d], vec![0.0; t * d]);
                ring.attend(&q, t, ctx, &mut scores, &mut inv, &mut head_out, &mut got);
                crate::pool::run_inline(|| ring.attend(&q, t, ctx, &mut scores, &mut inv, &mut head_out, &mut one));
                assert_eq!(got, one, "heads split between threads = one thread, bit for bit");
                let (mut s1, mut i1) = (vec![0.0; t * ring.cap], vec![0.0; t]);
                ring.attend(&q, t, ctx, &mut s1, &mut i1, &mut head_out, &mut one);
                assert_eq!(got, one, "one scratch slot, heads in turn = a slot per head");
                attention(&q, &cache, t, Some(ctx), &mut want, &mut ref_scores);
                let rel = max_rel_diff(&got, &want);
                assert!(rel < 2e-6, "heads {heads} hd {hd} ctx {ctx} call {call}: rel {rel}");
            }
        }
    }

    #[test]
    fn gemm_nn_matches_naive() {
        for (m, n, k) in [(16, 64, 272), (1, 12, 5), (3, 36, 7), (16, 272, 64)] {
            let (lda, ldb, ldc) = (k + 3, n + 8, n + 4);
            let a = random_vec(m * lda, 1);
            let b = random_vec(k * ldb, 2);
            let mut c = vec![0.0; m * ldc];
            gemm_nn(&a, lda, &b, ldb, &mut c, ldc, m, n, k);
            for r in 0..m {
                for j in 0..n {
                    let want: f32 = (0..k).map(|i| a[r * lda + i] * b[i * ldb + j]).sum();
                    assert!((c[r * ldc + j] - want).abs() < 1e-4, "m{m} n{n} k{k} at {r},{j}");
                }
            }
        }
    }
}
