//! The Mimi decoder transformer (spec §4.2 step 3, §4.4): pre-norm layers at the SEANet rate (200 Hz),
//!
//! ```text
//! x += ls1 ⊙ out_proj(attn(rope(q), rope(k), v)),  [q | k | v] = in_proj(LN1(x))
//! x += ls2 ⊙ linear2(gelu_tanh(linear1(LN2(x))))
//! ```
//!
//! with no biases in the projections, LayerNorm eps 1e-5 (affine), LayerScale (`ls`, when present), RoPE on
//! interleaved pairs at absolute positions, and causal attention limited to a window of `context` steps: a query
//! at `p` sees keys `p − context < k ≤ p`. The KV cache is a ring of `context − 1 + T_max` positions per layer, in
//! the per-stream [`TransformerState`]. Positions keep counting across calls (16 per latent frame).

use crate::error::{CoreError, Result};
use crate::kernels::activation::gelu_tanh;
use crate::kernels::attention::{KvCache, attention};
use crate::kernels::linear::Linear;
use crate::kernels::norm::layer_norm;
use crate::kernels::rope::{apply_rope, rope_freqs};
use crate::mimi::{Taps, zeros};
use crate::params::Params;
use crate::weights::WeightStore;

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

struct Layer {
    norm1: (Vec<f32>, Vec<f32>),
    norm2: (Vec<f32>, Vec<f32>),
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    lin1: Linear,
    lin2: Linear,
    ls1: Option<Vec<f32>>,
    ls2: Option<Vec<f32>>,
}

/// The decoder transformer's weights.
pub struct MimiTransformer {
    pub cfg: TransformerConfig,
    layers: Vec<Layer>,
    freqs: Vec<f32>,
}

impl MimiTransformer {
    /// Takes `{prefix}.layers.{i}.*` (e.g. prefix `mimi.decoder_transformer.transformer`).
    pub fn from_store(s: &mut WeightStore, prefix: &str, cfg: TransformerConfig) -> Result<Self> {
        let (d, ff) = (cfg.d_model, cfg.dim_feedforward);
        let mut layers = Vec::new();
        for i in 0..cfg.num_layers {
            let p = format!("{prefix}.layers.{i}");
            let vec = |s: &mut WeightStore, n: &str| s.take(&format!("{p}.{n}"), &[d]).map(|t| t.data);
            let in_proj = s.take(&format!("{p}.self_attn.in_proj.weight"), &[3 * d, d])?.data;
            let out = s.take(&format!("{p}.self_attn.out_proj.weight"), &[d, d])?.data;
            let lin1 = s.take(&format!("{p}.linear1.weight"), &[ff, d])?.data;
            let lin2 = s.take(&format!("{p}.linear2.weight"), &[d, ff])?.data;
            let (ls1, ls2) = if cfg.layer_scale {
                (Some(vec(s, "layer_scale_1.scale")?), Some(vec(s, "layer_scale_2.scale")?))
            } else {
                (None, None)
            };
            layers.push(Layer {
                norm1: (vec(s, "norm1.weight")?, vec(s, "norm1.bias")?),
                norm2: (vec(s, "norm2.weight")?, vec(s, "norm2.bias")?),
                // in_proj rows are [q | k | v]: three GEMMs write q, k and v into separate buffers.
                q: Linear::new(&in_proj[..d * d], None, d, d),
                k: Linear::new(&in_proj[d * d..2 * d * d], None, d, d),
                v: Linear::new(&in_proj[2 * d * d..], None, d, d),
                out: Linear::new(&out, None, d, d),
                lin1: Linear::new(&lin1, None, ff, d),
                lin2: Linear::new(&lin2, None, d, ff),
                ls1,
                ls2,
            });
        }
        let freqs = rope_freqs(cfg.head_dim(), cfg.max_period);
        Ok(Self { cfg, layers, freqs })
    }

    /// Bytes of packed weights.
    pub fn weight_bytes(&self) -> usize {
        let d = self.cfg.d_model;
        self.layers
            .iter()
            .map(|l| {
                [&l.q, &l.k, &l.v, &l.out, &l.lin1, &l.lin2].iter().map(|x| x.weight_bytes()).sum::<usize>() + 6 * d * 4
            })
            .sum()
    }

    /// Runs every layer on `x` `[t × d_model]` in place, at positions continuing the state's.
    pub fn forward(&self, st: &mut TransformerState, x: &mut [f32], t: usize, mut taps: Option<&mut Taps>, tap0: usize) {
        assert!(t <= st.max_t, "transformer: {t} rows exceed the state's {}", st.max_t);
        let (d, h_n, hd) = (self.cfg.d_model, self.cfg.num_heads, self.cfg.head_dim());
        let n = t * d;
        let x = &mut x[..n];
        for (i, (l, cache)) in self.layers.iter().zip(st.caches.iter_mut()).enumerate() {
            let pos0 = cache.offset;
            layer_norm(x, &mut st.norm[..n], d, Some(&l.norm1.0), Some(&l.norm1.1), LN_EPS);
            l.q.forward(&st.norm, &mut st.q, t);
            l.k.forward(&st.norm, &mut st.k, t);
            l.v.forward(&st.norm, &mut st.v, t);
            apply_rope(&mut st.q[..n], t, h_n, hd, pos0, &self.freqs);
            apply_rope(&mut st.k[..n], t, h_n, hd, pos0, &self.freqs);
            cache.append(&st.k, &st.v, t);
            attention(&st.q, cache, t, Some(self.cfg.context), &mut st.attn, &mut st.scores);
            l.out.forward(&st.attn, &mut st.proj, t);
            residual(x, &st.proj[..n], l.ls1.as_deref(), d);
            layer_norm(x, &mut st.norm[..n], d, Some(&l.norm2.0), Some(&l.norm2.1), LN_EPS);
            l.lin1.forward(&st.norm, &mut st.ff, t);
            gelu_tanh(&mut st.ff[..t * self.cfg.dim_feedforward]);
            l.lin2.forward(&st.ff, &mut st.proj, t);
            residual(x, &st.proj[..n], l.ls2.as_deref(), d);
            if let Some(tp) = taps.as_deref_mut() {
                tp.put(tap0 + i, x);
            }
        }
        if let Some(tp) = taps {
            tp.put(tap0 + self.layers.len(), x);
        }
    }

    /// Tap names [`Self::forward`] records: each layer's output, then the transformer's.
    pub fn tap_names(&self) -> Vec<String> {
        let mut v: Vec<String> = (0..self.layers.len()).map(|i| format!("dec_tr.layer{i}_out")).collect();
        v.push("dec_tr_out".into());
        v
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

/// Per-stream transformer state: one KV ring per layer, plus scratch for up to `max_t` rows per call.
pub struct TransformerState {
    max_t: usize,
    caches: Vec<KvCache>,
    norm: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    attn: Vec<f32>,
    proj: Vec<f32>,
    ff: Vec<f32>,
    scores: Vec<f32>,
}

impl TransformerState {
    /// A fresh state for calls of up to `max_t` rows.
    pub fn new(tr: &MimiTransformer, max_t: usize) -> Result<Self> {
        let c = &tr.cfg;
        let d = c.d_model;
        let capacity = c.context - 1 + max_t;
        if capacity * d * 2 * c.num_layers > 1 << 28 {
            return Err(CoreError::new("transformer KV cache would exceed 1 GiB"));
        }
        // Probe the allocation first, so an oversized request is an error rather than an abort.
        drop(zeros(capacity * d * 2 * c.num_layers)?);
        let caches = (0..c.num_layers).map(|_| KvCache::new(c.num_heads, c.head_dim(), capacity, true)).collect();
        Ok(Self {
            max_t,
            caches,
            norm: zeros(max_t * d)?,
            q: zeros(max_t * d)?,
            k: zeros(max_t * d)?,
            v: zeros(max_t * d)?,
            attn: zeros(max_t * d)?,
            proj: zeros(max_t * d)?,
            ff: zeros(max_t * c.dim_feedforward)?,
            scores: zeros(c.context)?,
        })
    }

    /// Back to position 0 with an empty cache.
    pub fn reset(&mut self) {
        for c in &mut self.caches {
            c.reset();
        }
    }

    /// Absolute position of the next row.
    pub fn offset(&self) -> usize {
        self.caches.first().map_or(0, |c| c.offset)
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        let kv: usize = self.caches.iter().map(|c| 2 * c.capacity() * c.heads * c.head_dim).sum();
        let s = self.norm.len() * 6 + self.ff.len() + self.scores.len();
        (kv + s) * 4
    }
}
