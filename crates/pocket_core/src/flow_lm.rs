//! FlowLM (spec §3): a causal transformer over `[voice prefix | text tokens | generated latents]` with a KV cache,
//! whose out-normed last hidden state `c` drives the flow head (the next 32-dim latent) and `out_eos` (the raw
//! end-of-speech logit).
//!
//! Per layer (pre-norm, no biases, LayerNorm eps 1e-5):
//! `x += out_proj(attn(LN1(x)))`, `x += linear2(gelu_tanh(linear1(LN2(x))))`. `in_proj` rows are `[q | k | v]`,
//! each head-major; RoPE rotates adjacent pairs at absolute positions `offset + t`; K is cached after RoPE;
//! attention is causal over the whole cache with scale `1/√head_dim`.
//!
//! Inputs of a call are one kind of row: text token ids (embedding rows), conditioning rows (voice; optionally
//! preceded by `bos_before_voice`), or latents (`input_linear` after replacing every NaN with `bos_emb`). A call
//! of T rows runs every linear layer as one GEMM with m = T.
//!
//! The model owns its weights and working buffers; a [`FlowLmState`] owns one stream's KV caches. Buffers grow only
//! when a call has more rows, or a state more positions, than any before: an AR step allocates nothing.

use crate::error::{CoreError, Result};
use crate::flow_head::FlowHead;
use crate::kernels::activation::gelu_tanh_parallel;
use crate::kernels::attention::{KvCache, attention, dot};
use crate::kernels::linear::Linear;
use crate::kernels::linear_i8::{LinearI8, QuantActs};
use crate::kernels::norm::layer_norm;
use crate::kernels::rope::{apply_rope, rope_freqs};
use crate::params::Params;
use crate::weights::{Packing, Table, WeightStore};

/// LayerNorm epsilon of the transformer and `out_norm`.
const LN_EPS: f32 = 1e-5;

/// Hyper-parameters (from the config; each is checked against the tensor shapes).
#[derive(Clone, Debug)]
pub struct FlowLmConfig {
    pub d_model: usize,
    pub num_heads: usize,
    pub num_layers: usize,
    pub ffn_dim: usize,
    pub flow_dim: usize,
    pub flow_depth: usize,
    pub ldim: usize,
    /// Text vocabulary; the embedding table has `n_bins + 1` rows.
    pub n_bins: usize,
    pub max_period: f32,
    /// Int8 transformer linears (`in_proj`, `out_proj`, `linear1`, `linear2`), as the reference's `--quantize`.
    pub quantize: bool,
}

impl FlowLmConfig {
    /// From `d_model=… num_heads=… num_layers=… ffn_dim=… flow_dim=… flow_depth=… ldim=… n_bins=…
    /// max_period=…`.
    pub fn from_params(p: &Params) -> Result<Self> {
        let c = Self {
            d_model: p.usize("d_model")?,
            num_heads: p.usize("num_heads")?,
            num_layers: p.usize("num_layers")?,
            ffn_dim: p.usize("ffn_dim")?,
            flow_dim: p.usize("flow_dim")?,
            flow_depth: p.usize("flow_depth")?,
            ldim: p.usize("ldim")?,
            n_bins: p.usize("n_bins")?,
            max_period: p.f32("max_period")?,
            quantize: p.has("quantize") && p.bool("quantize")?,
        };
        if c.num_heads == 0 || c.d_model % c.num_heads != 0 || (c.d_model / c.num_heads) % 2 != 0 {
            return Err(CoreError::new(format!(
                "d_model {} must split into num_heads {} heads of even size",
                c.d_model, c.num_heads
            )));
        }
        Ok(c)
    }

    pub fn head_dim(&self) -> usize {
        self.d_model / self.num_heads
    }
}

/// A transformer linear: float panels (F32 or lossless BF16), or int8 with dynamic activations.
enum Proj {
    Float(Linear),
    Int8(LinearI8),
}

impl Proj {
    fn forward(&self, x: &[f32], y: &mut [f32], m: usize, acts: &mut QuantActs) {
        match self {
            Proj::Float(l) => l.forward(x, y, m),
            Proj::Int8(l) => l.forward(x, y, m, acts),
        }
    }

    fn weight_bytes(&self) -> usize {
        match self {
            Proj::Float(l) => l.weight_bytes(),
            Proj::Int8(l) => l.weight_bytes(),
        }
    }
}

struct Layer {
    norm1_w: Vec<f32>,
    norm1_b: Vec<f32>,
    in_proj: Proj,
    out_proj: Proj,
    norm2_w: Vec<f32>,
    norm2_b: Vec<f32>,
    linear1: Proj,
    linear2: Proj,
}

/// Working buffers for calls of up to `rows` rows.
#[derive(Default)]
struct Scratch {
    rows: usize,
    x: Vec<f32>,
    xn: Vec<f32>,
    qkv: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    attn: Vec<f32>,
    tmp: Vec<f32>,
    hid: Vec<f32>,
    latent: Vec<f32>,
    scores: Vec<f32>,
    c: Vec<f32>,
    eos: f32,
    acts: QuantActs,
}

impl Scratch {
    fn ensure(&mut self, rows: usize, cfg: &FlowLmConfig) {
        if rows <= self.rows {
            return;
        }
        self.rows = rows;
        let d = cfg.d_model;
        for v in [&mut self.x, &mut self.xn, &mut self.q, &mut self.k, &mut self.v, &mut self.attn, &mut self.tmp] {
            v.resize(rows * d, 0.0);
        }
        self.qkv.resize(rows * 3 * d, 0.0);
        self.hid.resize(rows * cfg.ffn_dim, 0.0);
        self.latent.resize(rows * cfg.ldim, 0.0);
    }
}

/// One stream's KV caches (one per layer; all share the same offset).
pub struct FlowLmState {
    pub caches: Vec<KvCache>,
}

impl FlowLmState {
    /// Positions already in the cache.
    pub fn offset(&self) -> usize {
        self.caches[0].offset
    }

    /// Positions the buffers hold.
    pub fn capacity(&self) -> usize {
        self.caches[0].capacity()
    }

    /// Grows every layer's cache to at least `capacity` positions (keeping the contents).
    pub fn reserve(&mut self, capacity: usize) {
        for c in &mut self.caches {
            c.reserve(capacity);
        }
    }

    /// Forgets every position (keeps the buffers).
    pub fn reset(&mut self) {
        for c in &mut self.caches {
            c.reset();
        }
    }

    /// Becomes a copy of `other`'s used positions; keeps its own buffers when they are large enough.
    pub fn copy_from(&mut self, other: &FlowLmState) -> Result<()> {
        if self.caches.len() != other.caches.len() || self.caches[0].heads != other.caches[0].heads {
            return Err(CoreError::new("cannot copy a FlowLM state of another model"));
        }
        for (a, b) in self.caches.iter_mut().zip(&other.caches) {
            a.copy_from(b);
        }
        Ok(())
    }

    /// Replaces layer `layer`'s contents with `t` positions: `kv` is `[2, t, heads, head_dim]` (K then V, K after
    /// RoPE), the layout of the reference's voice files.
    pub fn load_layer(&mut self, layer: usize, kv: &[f32], t: usize) -> Result<()> {
        let n_layers = self.caches.len();
        let cache = self.caches.get_mut(layer).ok_or_else(|| {
            CoreError::new(format!("layer {layer} out of range: the model has {n_layers} layers"))
        })?;
        let row = cache.heads * cache.head_dim;
        if kv.len() != 2 * t * row {
            return Err(CoreError::new(format!("layer {layer}: {} values for {t} positions of width {row}", kv.len())));
        }
        cache.load(&kv[..t * row], &kv[t * row..], t);
        Ok(())
    }

    /// Writes layer `layer`'s used positions as `[2, offset, heads, head_dim]` into `out`.
    pub fn read_layer(&self, layer: usize, out: &mut [f32]) -> Result<()> {
        let cache = self.caches.get(layer).ok_or_else(|| CoreError::new(format!("layer {layer} out of range")))?;
        let (k, v) = (cache.keys(), cache.values());
        if out.len() != k.len() + v.len() {
            return Err(CoreError::new(format!("layer {layer}: output of {} values, need {}", out.len(), 2 * k.len())));
        }
        out[..k.len()].copy_from_slice(k);
        out[k.len()..].copy_from_slice(v);
        Ok(())
    }

    fn check_consistent(&self) -> Result<()> {
        let o = self.offset();
        if self.caches.iter().any(|c| c.offset != o) {
            let offs: Vec<usize> = self.caches.iter().map(|c| c.offset).collect();
            return Err(CoreError::new(format!("FlowLM state layers disagree on the offset: {offs:?}")));
        }
        Ok(())
    }
}

/// What a call feeds.
pub enum Input<'a> {
    /// Text token ids.
    Tokens(&'a [u32]),
    /// Conditioning rows `[t, d_model]`, optionally preceded by `bos_before_voice`.
    Embeddings { rows: &'a [f32], t: usize, bos_first: bool },
    /// Latents `[t, ldim]` (NaN entries become `bos_emb`).
    Latents { rows: &'a [f32], t: usize },
}

/// FlowLM weights, flow head and working buffers.
pub struct FlowLm {
    pub cfg: FlowLmConfig,
    embed: Table,
    bos_emb: Vec<f32>,
    bos_before_voice: Option<Vec<f32>>,
    input_linear: Linear,
    speaker_proj: Option<Linear>,
    layers: Vec<Layer>,
    out_norm_w: Vec<f32>,
    out_norm_b: Vec<f32>,
    out_eos_w: Vec<f32>,
    out_eos_b: f32,
    rope: Vec<f32>,
    pub flow: FlowHead,
    scratch: Scratch,
    /// When on, each call records its input rows and every layer's output: `[(1 + layers), t, d_model]`.
    pub trace: Option<Vec<f32>>,
}

impl FlowLm {
    /// The transformer's linear weights (and `input_linear`, `speaker_proj_weight`), each `[n_out, n_in]` without
    /// bias, as [`Self::load`] packs them.
    fn linear_names(cfg: &FlowLmConfig) -> Vec<String> {
        let mut names = vec!["flow_lm.input_linear.weight".to_string(), "flow_lm.speaker_proj_weight".to_string()];
        for l in 0..cfg.num_layers {
            for proj in ["self_attn.in_proj", "self_attn.out_proj", "linear1", "linear2"] {
                names.push(format!("flow_lm.transformer.layers.{l}.{proj}.weight"));
            }
        }
        names
    }

    /// Plans the packing of the linear weights (the flow head's with their biases), so each is packed (or
    /// quantised) as it is added instead of waiting in the store in its file form while the rest arrive
    /// ([`WeightStore::plan`]).
    pub fn plan(s: &mut WeightStore, cfg: &FlowLmConfig) {
        for (i, name) in Self::linear_names(cfg).iter().enumerate() {
            // input_linear and speaker_proj_weight (the first two) stay float in the quantised model
            s.plan(name, if cfg.quantize && i >= 2 { Packing::LinearI8 } else { Packing::Linear { bias: None } });
        }
        for p in FlowHead::linear_prefixes("flow_lm.flow_net", cfg.flow_depth) {
            s.plan(&format!("{p}.weight"), Packing::Linear { bias: Some(format!("{p}.bias")) });
        }
    }

    /// Takes every `flow_lm.*` tensor it uses from the store (`flow_lm.emb_mean`/`emb_std` stay for the decoder
    /// side). `bos_before_voice` and `speaker_proj_weight` are optional.
    pub fn load(s: &mut WeightStore, cfg: FlowLmConfig) -> Result<Self> {
        let (d, ldim) = (cfg.d_model, cfg.ldim);
        let p = "flow_lm";
        // An AR step streams every weight once (memory-bound): BF16 panels halve that traffic, losslessly, when the
        // checkpoint is BF16 (as released); F32 checkpoints keep F32 panels.
        let lin = |s: &mut WeightStore, name: &str, n_out: usize, n_in: usize| s.take_linear(name, None, n_out, n_in);
        let quantize = cfg.quantize;
        let proj = |s: &mut WeightStore, name: &str, n_out: usize, n_in: usize| -> Result<Proj> {
            Ok(if quantize {
                Proj::Int8(s.take_linear_i8(name, n_out, n_in)?)
            } else {
                Proj::Float(lin(s, name, n_out, n_in)?)
            })
        };
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for l in 0..cfg.num_layers {
            let q = format!("{p}.transformer.layers.{l}");
            layers.push(Layer {
                norm1_w: s.take(&format!("{q}.norm1.weight"), &[d])?.data,
                norm1_b: s.take(&format!("{q}.norm1.bias"), &[d])?.data,
                in_proj: proj(s, &format!("{q}.self_attn.in_proj.weight"), 3 * d, d)?,
                out_proj: proj(s, &format!("{q}.self_attn.out_proj.weight"), d, d)?,
                norm2_w: s.take(&format!("{q}.norm2.weight"), &[d])?.data,
                norm2_b: s.take(&format!("{q}.norm2.bias"), &[d])?.data,
                linear1: proj(s, &format!("{q}.linear1.weight"), cfg.ffn_dim, d)?,
                linear2: proj(s, &format!("{q}.linear2.weight"), d, cfg.ffn_dim)?,
            });
        }
        let speaker_proj = match s.shape(&format!("{p}.speaker_proj_weight")) {
            Some(&[n_out, n_in]) if n_out == d => Some(lin(s, &format!("{p}.speaker_proj_weight"), d, n_in)?),
            Some(other) => {
                return Err(CoreError::new(format!(
                    "tensor '{p}.speaker_proj_weight' has shape {other:?}, expected [{d}, inner_dim]"
                )));
            }
            None => None,
        };
        let flow = FlowHead::load(s, &format!("{p}.flow_net"), d, cfg.flow_dim, cfg.flow_depth, ldim)?;
        let mut m = Self {
            embed: s.take_table(&format!("{p}.conditioner.embed.weight"), &[cfg.n_bins + 1, d])?,
            bos_emb: s.take(&format!("{p}.bos_emb"), &[ldim])?.data,
            bos_before_voice: s.take_optional(&format!("{p}.bos_before_voice"), &[1, 1, d])?.map(|t| t.data),
            input_linear: lin(s, &format!("{p}.input_linear.weight"), d, ldim)?,
            speaker_proj,
            layers,
            out_norm_w: s.take(&format!("{p}.out_norm.weight"), &[d])?.data,
            out_norm_b: s.take(&format!("{p}.out_norm.bias"), &[d])?.data,
            out_eos_w: s.take(&format!("{p}.out_eos.weight"), &[1, d])?.data,
            out_eos_b: s.take(&format!("{p}.out_eos.bias"), &[1])?.data[0],
            rope: rope_freqs(cfg.head_dim(), cfg.max_period),
            flow,
            scratch: Scratch::default(),
            trace: None,
            cfg,
        };
        m.scratch.c = vec![0.0; d];
        m.scratch.ensure(1, &m.cfg);
        Ok(m)
    }

    /// An empty state with room for `capacity` positions.
    pub fn new_state(&self, capacity: usize) -> FlowLmState {
        let (h, hd) = (self.cfg.num_heads, self.cfg.head_dim());
        FlowLmState { caches: (0..self.cfg.num_layers).map(|_| KvCache::new(h, hd, capacity, false)).collect() }
    }

    pub fn has_bos_before_voice(&self) -> bool {
        self.bos_before_voice.is_some()
    }

    /// Bytes of every weight held (what the model part keeps in memory, beside its states and scratch).
    pub fn weight_bytes(&self) -> usize {
        let norms: usize = self.layers.iter().map(|l| 4 * (l.norm1_w.len() + l.norm1_b.len()) * 2).sum();
        let bos = self.bos_emb.len() + self.bos_before_voice.as_ref().map_or(0, Vec::len);
        let vecs = 4 * (bos + 2 * self.out_norm_w.len());
        self.step_weight_bytes() - self.flow.weight_bytes()
            + self.flow.total_weight_bytes()
            + self.embed.bytes()
            + self.speaker_proj.as_ref().map_or(0, Linear::weight_bytes)
            + norms
            + vecs
    }

    /// Bytes of weights an AR step reads: the transformer, `input_linear`, `out_eos` and the 1-step flow head.
    pub fn step_weight_bytes(&self) -> usize {
        let per_layer: usize = self
            .layers
            .iter()
            .map(|l| {
                l.in_proj.weight_bytes()
                    + l.out_proj.weight_bytes()
                    + l.linear1.weight_bytes()
                    + l.linear2.weight_bytes()
            })
            .sum();
        per_layer + self.input_linear.weight_bytes() + self.out_eos_w.len() * 4 + self.flow.weight_bytes()
    }

    /// The out-normed last hidden state `c` of the last call.
    pub fn last_c(&self) -> &[f32] {
        &self.scratch.c
    }

    /// The raw EOS logit of the last call.
    pub fn last_eos(&self) -> f32 {
        self.scratch.eos
    }

    /// `out[f×d_model] = rows[f×inner] · speaker_projᵀ` (the voice conditioning from raw encoder latents).
    pub fn speaker_project(&self, rows: &[f32], f: usize, out: &mut [f32]) -> Result<()> {
        let p = self.speaker_proj.as_ref().ok_or_else(|| CoreError::new("the model has no speaker_proj_weight"))?;
        if rows.len() != f * p.n_in || out.len() != f * p.n_out {
            return Err(CoreError::new(format!("speaker projection of {f} rows of width {}: bad buffer sizes", p.n_in)));
        }
        p.forward(rows, out, f);
        Ok(())
    }

    /// Layer 0's K and V at position 0 for `bos_before_voice` (what every voice state made with this model starts
    /// with): `out[2, d_model]`.
    pub fn bos_kv(&mut self, out: &mut [f32]) -> Result<()> {
        let d = self.cfg.d_model;
        let bos = self.bos_before_voice.as_ref().ok_or_else(|| CoreError::new("the model has no bos_before_voice"))?;
        let l = &self.layers[0];
        let sc = &mut self.scratch;
        layer_norm(bos, &mut sc.xn[..d], d, Some(&l.norm1_w), Some(&l.norm1_b), LN_EPS);
        l.in_proj.forward(&sc.xn[..d], &mut sc.qkv[..3 * d], 1, &mut sc.acts);
        out[..2 * d].copy_from_slice(&sc.qkv[d..3 * d]); // RoPE at position 0 is the identity
        Ok(())
    }

    /// Runs one call: appends its rows to `state`, leaves `c` and the EOS logit in [`last_c`](Self::last_c) /
    /// [`last_eos`](Self::last_eos). The cache grows when it lacks room (exactly to fit a prefill; with slack for
    /// single steps past a chunk's planned length).
    pub fn forward(&mut self, state: &mut FlowLmState, input: Input) -> Result<()> {
        let d = self.cfg.d_model;
        if state.caches.len() != self.cfg.num_layers || state.caches[0].heads * state.caches[0].head_dim != d {
            return Err(CoreError::new("the FlowLM state belongs to another model"));
        }
        state.check_consistent()?;
        let t = match &input {
            Input::Tokens(ids) => ids.len(),
            Input::Embeddings { t, bos_first, .. } => t + *bos_first as usize,
            Input::Latents { t, .. } => *t,
        };
        if t == 0 {
            return Err(CoreError::new("a FlowLM call needs at least one input row"));
        }
        self.scratch.ensure(t, &self.cfg);
        // input rows → scratch.x
        match input {
            Input::Tokens(ids) => {
                let n_rows = self.cfg.n_bins + 1;
                for (r, &id) in ids.iter().enumerate() {
                    let id = id as usize;
                    if id >= n_rows {
                        return Err(CoreError::new(format!("token id {id} out of range: the table has {n_rows} rows")));
                    }
                    self.embed.row_into(id, &mut self.scratch.x[r * d..(r + 1) * d]);
                }
            }
            Input::Embeddings { rows, t: n, bos_first } => {
                if rows.len() != n * d {
                    return Err(CoreError::new(format!("{} values for {n} conditioning rows of width {d}", rows.len())));
                }
                let mut at = 0;
                if bos_first {
                    let bos = self
                        .bos_before_voice
                        .as_ref()
                        .ok_or_else(|| CoreError::new("the model has no bos_before_voice to put before the voice"))?;
                    self.scratch.x[..d].copy_from_slice(bos);
                    at = d;
                }
                self.scratch.x[at..at + n * d].copy_from_slice(rows);
            }
            Input::Latents { rows, t: n } => {
                let ldim = self.cfg.ldim;
                if rows.len() != n * ldim {
                    return Err(CoreError::new(format!("{} values for {n} latents of width {ldim}", rows.len())));
                }
                let lat = &mut self.scratch.latent[..n * ldim];
                for (i, (o, &v)) in lat.iter_mut().zip(rows).enumerate() {
                    *o = if v.is_nan() { self.bos_emb[i % ldim] } else { v };
                }
                self.input_linear.forward(&self.scratch.latent[..n * ldim], &mut self.scratch.x[..n * d], n);
            }
        }
        // room in the cache
        let (offset, cap) = (state.offset(), state.capacity());
        if offset + t > cap {
            let want = if t > 1 || cap == 0 { offset + t } else { (offset + t).max(cap + cap / 4 + 16) };
            state.reserve(want);
        }
        let scores = state.capacity() * self.cfg.num_heads;
        if self.scratch.scores.len() < scores {
            self.scratch.scores.resize(scores, 0.0);
        }
        if let Some(tr) = self.trace.as_mut() {
            tr.clear();
            tr.extend_from_slice(&self.scratch.x[..t * d]);
        }
        let n_layers = self.layers.len();
        for (i, (l, cache)) in self.layers.iter().zip(state.caches.iter_mut()).enumerate() {
            // Only the last row's output is used: after the last layer's attention (which still caches every
            // row's K/V), the remaining work is done for that row alone, unless every row is being traced.
            let last_only = i + 1 == n_layers && self.trace.is_none();
            layer_forward(l, cache, &mut self.scratch, &self.rope, t, d, self.cfg.ffn_dim, last_only);
            if let Some(tr) = self.trace.as_mut() {
                tr.extend_from_slice(&self.scratch.x[..t * d]);
            }
        }
        let sc = &mut self.scratch;
        let last = &sc.x[(t - 1) * d..t * d];
        layer_norm(last, &mut sc.c, d, Some(&self.out_norm_w), Some(&self.out_norm_b), LN_EPS);
        sc.eos = dot(&self.out_eos_w, &sc.c) + self.out_eos_b;
        Ok(())
    }

    /// The flow head on the last `c`: `x` holds x₀ and receives the latent (LSD with `steps` steps).
    pub fn decode_latent(&mut self, x: &mut [f32], steps: usize) -> Result<()> {
        if x.len() != self.cfg.ldim || steps == 0 {
            return Err(CoreError::new(format!("a latent has {} values and LSD needs ≥ 1 step", self.cfg.ldim)));
        }
        let c = std::mem::take(&mut self.scratch.c);
        self.flow.lsd_decode(&c, x, 1, steps);
        self.scratch.c = c;
        Ok(())
    }
}

/// One pre-norm transformer layer over the `t` rows of `sc.x` (in place), appending K/V to `cache`. With
/// `last_only`, everything after the K/V append (attention, `out_proj`, FFN) runs for the last row only (its
/// result is identical: rows are independent there), leaving the other rows of `sc.x` stale.
#[allow(clippy::too_many_arguments)]
fn layer_forward(
    l: &Layer,
    cache: &mut KvCache,
    sc: &mut Scratch,
    rope: &[f32],
    t: usize,
    d: usize,
    ffn: usize,
    last_only: bool,
) {
    let (h, hd) = (cache.heads, cache.head_dim);
    let pos0 = cache.offset;
    let n = t * d;
    layer_norm(&sc.x[..n], &mut sc.xn[..n], d, Some(&l.norm1_w), Some(&l.norm1_b), LN_EPS);
    l.in_proj.forward(&sc.xn[..n], &mut sc.qkv[..3 * n], t, &mut sc.acts);
    for r in 0..t {
        let row = &sc.qkv[r * 3 * d..(r + 1) * 3 * d];
        sc.q[r * d..(r + 1) * d].copy_from_slice(&row[..d]);
        sc.k[r * d..(r + 1) * d].copy_from_slice(&row[d..2 * d]);
        sc.v[r * d..(r + 1) * d].copy_from_slice(&row[2 * d..]);
    }
    apply_rope(&mut sc.q[..n], t, h, hd, pos0, rope);
    apply_rope(&mut sc.k[..n], t, h, hd, pos0, rope);
    cache.append(&sc.k[..n], &sc.v[..n], t);
    // queries (and everything after) for rows r0..t: the last `tq` positions of the cache
    let r0 = if last_only { t - 1 } else { 0 };
    let (tq, m) = (t - r0, (t - r0) * d);
    attention(&sc.q[r0 * d..n], cache, tq, None, &mut sc.attn[..m], &mut sc.scores);
    l.out_proj.forward(&sc.attn[..m], &mut sc.tmp[..m], tq, &mut sc.acts);
    let x = &mut sc.x[r0 * d..n];
    for (x, y) in x.iter_mut().zip(&sc.tmp[..m]) {
        *x += y;
    }
    layer_norm(x, &mut sc.xn[..m], d, Some(&l.norm2_w), Some(&l.norm2_b), LN_EPS);
    l.linear1.forward(&sc.xn[..m], &mut sc.hid[..tq * ffn], tq, &mut sc.acts);
    gelu_tanh_parallel(&mut sc.hid[..tq * ffn]);
    l.linear2.forward(&sc.hid[..tq * ffn], &mut sc.tmp[..m], tq, &mut sc.acts);
    for (x, y) in sc.x[r0 * d..n].iter_mut().zip(&sc.tmp[..m]) {
        *x += y;
    }
}

/// Test-only access to safetensors files under `tests/fixtures/` (golden data and the tiny checkpoint).
#[cfg(test)]
pub(crate) mod golden {
    use std::collections::HashMap;

    use crate::weights::{DType, WeightStore};

    pub struct Entry {
        pub dtype: String,
        pub shape: Vec<usize>,
        pub bytes: Vec<u8>,
    }

    /// Reads `tests/fixtures/<rel>`; `None` when absent (the full checkpoint is generated on demand).
    pub fn read(rel: &str) -> Option<HashMap<String, Entry>> {
        let path = format!("{}/../../tests/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"));
        let b = std::fs::read(path).ok()?;
        let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&b[8..8 + n]).unwrap();
        let data = &b[8 + n..];
        let mut out = HashMap::new();
        // The writer's compact JSON: "name":{"dtype":"X","shape":[..],"data_offsets":[a,b]}
        let mut rest = header;
        while let Some(i) = rest.find("{\"dtype\":\"") {
            let name_end = rest[..i].rfind("\":").unwrap();
            let name_start = rest[..name_end].rfind('"').unwrap() + 1;
            let name = rest[name_start..name_end].to_string();
            let body = &rest[i..];
            let dtype = body[10..].split('"').next().unwrap().to_string();
            let list = |key: &str| -> Vec<usize> {
                let k = body.find(key).unwrap() + key.len();
                let e = body[k..].find(']').unwrap();
                body[k..k + e].split(',').filter(|s| !s.is_empty()).map(|s| s.trim().parse().unwrap()).collect()
            };
            let shape = list("\"shape\":[");
            let offs = list("\"data_offsets\":[");
            out.insert(name, Entry { dtype, shape, bytes: data[offs[0]..offs[1]].to_vec() });
            rest = &body[body.find('}').unwrap() + 1..];
        }
        Some(out)
    }

    impl Entry {
        pub fn f32(&self) -> Vec<f32> {
            assert_eq!(self.dtype, "F32");
            self.bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
        }
        pub fn i64(&self) -> Vec<i64> {
            assert_eq!(self.dtype, "I64");
            self.bytes.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()
        }
    }

    /// A store holding every tensor of a checkpoint.
    pub fn store(rel: &str) -> Option<WeightStore> {
        let mut s = WeightStore::default();
        for (name, e) in read(rel)? {
            let dt = match e.dtype.as_str() {
                "BF16" => DType::BF16,
                "F32" => DType::F32,
                "F16" => DType::F16,
                _ => continue,
            };
            s.add(&name, dt, &e.shape, &e.bytes).unwrap();
        }
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::max_rel_diff;

    pub(crate) fn tiny_config() -> FlowLmConfig {
        FlowLmConfig::from_params(
            &Params::parse(
                "d_model=64 num_heads=4 num_layers=2 ffn_dim=256 flow_dim=32 flow_depth=2 ldim=32 n_bins=4000 \
                 max_period=10000",
            )
            .unwrap(),
        )
        .unwrap()
    }

    fn tiny() -> FlowLm {
        let mut s = golden::store("model/tiny/model.safetensors").expect("tiny checkpoint");
        FlowLm::load(&mut s, tiny_config()).unwrap()
    }

    #[test]
    fn quantized_model_tracks_golden_tiny() {
        let mut s = golden::store("model/tiny/model.safetensors").unwrap();
        let mut m = FlowLm::load(&mut s, FlowLmConfig { quantize: true, ..tiny_config() }).unwrap();
        let exact = tiny();
        assert!(m.step_weight_bytes() < exact.step_weight_bytes());
        let g = golden::read("tiny/flowlm_voice.safetensors").unwrap();
        let mut st = voice(&m, "tiny/voice_state.safetensors");
        let ids: Vec<u32> = g["text_tokens"].i64().iter().map(|&i| i as u32).collect();
        m.forward(&mut st, Input::Tokens(&ids)).unwrap();
        let rel = max_rel_diff(m.last_c(), &g["prefill_c"].f32());
        assert!(rel > 0.0 && rel < 0.05, "prefill c: {rel}");
        let (inp, c) = (g["ar_input_latent"].f32(), g["ar_c"].f32());
        for j in 0..24 {
            m.forward(&mut st, Input::Latents { rows: &inp[j * 32..(j + 1) * 32], t: 1 }).unwrap();
            let rel = max_rel_diff(m.last_c(), &c[j * 64..(j + 1) * 64]);
            assert!(rel < 0.05, "c step {j}: {rel}");
        }
    }

    /// Loads a voice file into a fresh state.
    fn voice(m: &FlowLm, rel: &str) -> FlowLmState {
        let v = golden::read(rel).unwrap();
        let mut st = m.new_state(0);
        for l in 0..m.cfg.num_layers {
            let e = &v[&format!("transformer.layers.{l}.self_attn/cache")];
            let t = e.shape[2];
            st.load_layer(l, &e.f32(), t).unwrap();
            assert_eq!(v[&format!("transformer.layers.{l}.self_attn/offset")].i64(), vec![t as i64]);
        }
        st
    }

    #[test]
    fn flow_head_matches_golden_tiny() {
        let mut m = tiny();
        let g = golden::read("tiny/flow_head.safetensors").unwrap();
        let (c, s, t, x) = (g["c"].f32(), g["s"].f32(), g["t"].f32(), g["x"].f32());
        let mut v = vec![0.0; 4 * 32];
        let mut trace = vec![0.0; crate::flow_head::trace_tensors(2) * 4 * 32];
        m.flow.forward(&c, &s, &t, &x, &mut v, 4, Some(&mut trace));
        let names = ["te0", "te1", "t_combined", "cond", "y", "h_in", "res0", "res1"];
        for (i, n) in names.iter().enumerate() {
            let r = max_rel_diff(&trace[i * 128..(i + 1) * 128], &g[*n].f32());
            assert!(r < 5e-6, "{n}: {r}");
        }
        assert!(max_rel_diff(&v, &g["v"].f32()) < 5e-6);
        for n in [1usize, 2, 4] {
            let mut x = g["lsd_x0"].f32();
            m.flow.lsd_decode(&g["lsd_c"].f32(), &mut x, 4, n);
            let r = max_rel_diff(&x, &g[&format!("lsd_n{n}")].f32());
            assert!(r < 5e-6, "lsd n={n}: {r}");
        }
    }

    #[test]
    fn teacher_forced_steps_match_golden_tiny() {
        let mut m = tiny();
        m.trace = Some(vec![]);
        let g = golden::read("tiny/flowlm_voice.safetensors").unwrap();
        let mut st = voice(&m, "tiny/voice_state.safetensors");
        assert_eq!(st.offset(), 59);
        st.reserve(59 + 12 + 75);
        assert_eq!(st.capacity(), 146);
        let ids: Vec<u32> = g["text_tokens"].i64().iter().map(|&i| i as u32).collect();
        m.forward(&mut st, Input::Tokens(&ids)).unwrap();
        let tr = m.trace.clone().unwrap();
        assert!(max_rel_diff(&tr[..12 * 64], &g["prefill_text_embeddings"].f32()) < 1e-7);
        assert!(max_rel_diff(&tr[12 * 64..], &g["prefill_layer_out"].f32()) < 5e-6);
        assert!(max_rel_diff(m.last_c(), &g["prefill_c"].f32()) < 5e-6);
        let noise = g["noise"].f32();
        let mut lat = noise[..32].to_vec();
        m.decode_latent(&mut lat, 1).unwrap();
        assert!(max_rel_diff(&lat, &g["prefill_latent"].f32()) < 5e-6);
        let (inp, c) = (g["ar_input_latent"].f32(), g["ar_c"].f32());
        let (eos, out) = (g["ar_eos_logit"].f32(), g["ar_output_latent"].f32());
        for j in 0..24 {
            m.forward(&mut st, Input::Latents { rows: &inp[j * 32..(j + 1) * 32], t: 1 }).unwrap();
            assert_eq!(st.offset(), 72 + j);
            assert!(max_rel_diff(m.last_c(), &c[j * 64..(j + 1) * 64]) < 5e-6, "c step {j}");
            let e = (m.last_eos() - eos[j]).abs() / eos.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            assert!(e < 5e-6, "eos step {j}: {e}");
            let mut lat = noise[(j + 1) * 32..(j + 2) * 32].to_vec();
            m.decode_latent(&mut lat, 1).unwrap();
            assert!(max_rel_diff(&lat, &out[j * 32..(j + 1) * 32]) < 5e-6, "latent step {j}");
        }
        assert_eq!(st.capacity(), 146);
    }

    #[test]
    fn audio_prompt_prefill_reproduces_voice_state_tiny() {
        let mut m = tiny();
        let ap = golden::read("tiny/voice_audio_prompt.safetensors").unwrap();
        let rows = ap["audio_prompt"].f32();
        let mut st = m.new_state(0);
        m.forward(&mut st, Input::Embeddings { rows: &rows, t: 58, bos_first: true }).unwrap();
        assert_eq!((st.offset(), st.capacity()), (59, 59));
        let want = voice(&m, "tiny/voice_state.safetensors");
        for l in 0..2 {
            let (mut a, mut b) = (vec![0.0; 2 * 59 * 64], vec![0.0; 2 * 59 * 64]);
            st.read_layer(l, &mut a).unwrap();
            want.read_layer(l, &mut b).unwrap();
            assert!(max_rel_diff(&a, &b) < 2e-5, "layer {l}: {}", max_rel_diff(&a, &b));
        }
        let mut kv = vec![0.0; 128];
        m.bos_kv(&mut kv).unwrap();
        let mut b = vec![0.0; 2 * 59 * 64];
        want.read_layer(0, &mut b).unwrap();
        let (k0, v0) = (&b[..64], &b[59 * 64..59 * 64 + 64]);
        assert!(max_rel_diff(&kv[..64], k0) < 1e-5 && max_rel_diff(&kv[64..], v0) < 1e-5);
    }

    #[test]
    fn last_layer_shortcut_gives_the_same_c_and_cache() {
        let mut m = tiny();
        let ids: Vec<u32> = (0..13).map(|i| (i * 97 + 5) % 4001).collect();
        let (mut a, mut b) = (m.new_state(0), m.new_state(0));
        m.forward(&mut a, Input::Tokens(&ids)).unwrap(); // last layer for the last row only
        let (ca, ea) = (m.last_c().to_vec(), m.last_eos());
        m.trace = Some(vec![]); // every row through every layer
        m.forward(&mut b, Input::Tokens(&ids)).unwrap();
        assert_eq!((m.last_c(), m.last_eos()), (&ca[..], ea));
        let (mut ka, mut kb) = (vec![0.0; 2 * 13 * 64], vec![0.0; 2 * 13 * 64]);
        a.read_layer(1, &mut ka).unwrap();
        b.read_layer(1, &mut kb).unwrap();
        assert_eq!(ka, kb);
    }

    #[test]
    fn prefill_in_one_call_equals_row_by_row() {
        let mut m = tiny();
        let ids: Vec<u32> = (0..9).map(|i| (i * 431 + 7) % 4001).collect();
        let mut a = m.new_state(0);
        m.forward(&mut a, Input::Tokens(&ids)).unwrap();
        let ca = m.last_c().to_vec();
        let mut b = m.new_state(0);
        for id in &ids {
            m.forward(&mut b, Input::Tokens(std::slice::from_ref(id))).unwrap();
        }
        assert!(max_rel_diff(m.last_c(), &ca) < 1e-5);
        let (mut ka, mut kb) = (vec![0.0; 2 * 9 * 64], vec![0.0; 2 * 9 * 64]);
        a.read_layer(1, &mut ka).unwrap();
        b.read_layer(1, &mut kb).unwrap();
        assert!(max_rel_diff(&ka, &kb) < 1e-5);
        assert!(m.forward(&mut a, Input::Tokens(&[4001])).unwrap_err().0.contains("token id 4001"));
    }
}
