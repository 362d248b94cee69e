//! The flow head `SimpleMLPAdaLN` (spec §3.7) and LSD decoding (§3.8): turns the FlowLM conditioning `c` and a
//! starting point `x₀` into the next latent.
//!
//! - `y = cond_embed(c) + (TE0(s) + TE1(t)) / 2`, `h = input_proj(x)`;
//! - `depth` ResBlocks: `(shift, scale, gate) = chunk3(Linear(SiLU(y)))`,
//!   `h += gate · Lin2(SiLU(Lin1(LN(h)·(1+scale)+shift)))`, LN with eps 1e-6, biased variance, affine;
//! - final layer: `(shift, scale) = chunk2(Linear(SiLU(y)))`, `v = Linear(LN₀(h)·(1+scale)+shift)` with a
//!   non-affine LN₀.
//! - timestep embedder `TE(τ)`: `[cos(τ·freqs), sin(τ·freqs)]` (cos first, `freqs` as stored, BF16-rounded) →
//!   Linear → SiLU → Linear → `h · (alpha / sqrt(var_unbiased(h) + 1e-5))` (a "RMSNorm" whose variance is
//!   mean-subtracted with N−1 and multiplies the uncentred h).
//!
//! LSD with n steps: `x ← x + v(c, i/n, (i+1)/n, x)/n`. With one step (the default) `s = 0, t = 1`, so the time
//! conditioning is a constant vector computed at load.
//!
//! All buffers live in [`FlowHead`] and grow only when a call has more rows than any before (the AR loop uses one
//! row, so nothing is allocated per step).

use crate::error::{CoreError, Result};
use crate::kernels::activation::silu;
use crate::kernels::linear::Linear;
use crate::kernels::norm::layer_norm;
use crate::weights::WeightStore;

/// Epsilon of the flow head's LayerNorms.
const LN_EPS: f32 = 1e-6;
/// Epsilon of the timestep embedder's "RMSNorm".
const RMS_EPS: f32 = 1e-5;

/// `{prefix}.weight` and `.bias` as one [`Linear`]: BF16 panels when the checkpoint is BF16 (lossless), which
/// halves both what the flow head holds and what each AR step reads of it.
fn take_linear(s: &mut WeightStore, prefix: &str, n_out: usize, n_in: usize) -> Result<Linear> {
    s.take_linear(&format!("{prefix}.weight"), Some(&format!("{prefix}.bias")), n_out, n_in)
}

/// `TimestepEmbedder`: one scalar time per row → a `dim` vector.
pub struct TimestepEmbedder {
    /// `[n_freq]` frequencies as stored (the embedding is `2·n_freq` wide).
    freqs: Vec<f32>,
    lin0: Linear,
    lin2: Linear,
    alpha: Vec<f32>,
}

impl TimestepEmbedder {
    fn load(s: &mut WeightStore, prefix: &str, dim: usize) -> Result<Self> {
        let fname = format!("{prefix}.freqs");
        let n_freq = match s.shape(&fname) {
            Some([n]) => *n,
            Some(other) => return Err(CoreError::new(format!("tensor '{fname}' has shape {other:?}, expected [n]"))),
            None => return Err(CoreError::new(format!("missing tensor '{fname}'"))),
        };
        let freqs = s.take(&fname, &[n_freq])?.data;
        Ok(Self {
            freqs,
            lin0: take_linear(s, &format!("{prefix}.mlp.0"), dim, 2 * n_freq)?,
            lin2: take_linear(s, &format!("{prefix}.mlp.2"), dim, dim)?,
            alpha: s.take(&format!("{prefix}.mlp.3.alpha"), &[dim])?.data,
        })
    }

    fn weight_bytes(&self) -> usize {
        self.lin0.weight_bytes() + self.lin2.weight_bytes()
    }

    /// `out[b×dim] = TE(tau[r])` for each of the `b` rows. `emb` holds `b·2·n_freq`, `hid` `b·dim` values.
    fn forward(&self, tau: &[f32], out: &mut [f32], emb: &mut [f32], hid: &mut [f32], b: usize) {
        let nf = self.freqs.len();
        let dim = self.alpha.len();
        for r in 0..b {
            let e = &mut emb[r * 2 * nf..(r + 1) * 2 * nf];
            for (i, &f) in self.freqs.iter().enumerate() {
                // float32 argument as the reference forms it; cos/sin evaluated in f64 and rounded.
                let a = (tau[r] * f) as f64;
                e[i] = a.cos() as f32;
                e[nf + i] = a.sin() as f32;
            }
        }
        self.lin0.forward(&emb[..b * 2 * nf], &mut hid[..b * dim], b);
        silu(&mut hid[..b * dim]);
        self.lin2.forward(&hid[..b * dim], &mut out[..b * dim], b);
        for row in out[..b * dim].chunks_exact_mut(dim) {
            rms_norm_unbiased(row, &self.alpha, RMS_EPS);
        }
    }
}

/// The timestep embedder's norm, in place: `h · (alpha / sqrt(var(h) + eps))` with the unbiased (N−1),
/// mean-subtracted variance, applied to the uncentred `h`.
pub fn rms_norm_unbiased(h: &mut [f32], alpha: &[f32], eps: f32) {
    let n = h.len();
    let mean = h.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let var = h.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0);
    let inv = (1.0 / (var + eps as f64).sqrt()) as f32;
    for (v, &a) in h.iter_mut().zip(alpha) {
        *v *= a * inv;
    }
}

/// `u = x·(1 + scale) + shift` for each row; `shift` and `scale` are rows of `modulation` at the given chunk
/// offsets (row stride `stride`).
fn modulate(x: &[f32], u: &mut [f32], modulation: &[f32], stride: usize, shift: usize, scale: usize, dim: usize) {
    for ((xr, ur), mr) in x.chunks_exact(dim).zip(u.chunks_exact_mut(dim)).zip(modulation.chunks_exact(stride)) {
        for i in 0..dim {
            ur[i] = xr[i] * (1.0 + mr[scale + i]) + mr[shift + i];
        }
    }
}

struct ResBlock {
    ln_w: Vec<f32>,
    ln_b: Vec<f32>,
    mlp0: Linear,
    mlp2: Linear,
    ada: Linear,
}

/// Working buffers, sized for `rows` rows.
#[derive(Default)]
struct Scratch {
    rows: usize,
    tau: Vec<f32>,
    emb: Vec<f32>,
    hid: Vec<f32>,
    te0: Vec<f32>,
    te1: Vec<f32>,
    cond: Vec<f32>,
    y: Vec<f32>,
    sy: Vec<f32>,
    h: Vec<f32>,
    u: Vec<f32>,
    u2: Vec<f32>,
    modulation: Vec<f32>,
    v: Vec<f32>,
    /// Time conditioning of the current LSD step (multi-step decoding).
    tcomb: Vec<f32>,
}

impl Scratch {
    fn ensure(&mut self, rows: usize, dim: usize, ldim: usize, emb: usize) {
        if rows <= self.rows {
            return;
        }
        self.rows = rows;
        let grow = |v: &mut Vec<f32>, n: usize| v.resize(n, 0.0);
        grow(&mut self.tau, rows);
        grow(&mut self.emb, rows * emb);
        for v in [&mut self.hid, &mut self.te0, &mut self.te1, &mut self.cond, &mut self.y, &mut self.sy] {
            grow(v, rows * dim);
        }
        for v in [&mut self.h, &mut self.u, &mut self.u2] {
            grow(v, rows * dim);
        }
        grow(&mut self.modulation, rows * 3 * dim);
        grow(&mut self.v, rows * ldim);
        grow(&mut self.tcomb, dim);
    }
}

/// Number of intermediate `[b, dim]` tensors a traced forward writes before `v` (see [`FlowHead::forward`]).
pub fn trace_tensors(depth: usize) -> usize {
    6 + depth
}

/// `SimpleMLPAdaLN` with its buffers.
pub struct FlowHead {
    /// Width of the conditioning `c` (FlowLM's d_model).
    pub d_model: usize,
    /// Width of the MLP.
    pub dim: usize,
    /// Latent width.
    pub ldim: usize,
    te: [TimestepEmbedder; 2],
    cond_embed: Linear,
    input_proj: Linear,
    blocks: Vec<ResBlock>,
    final_ada: Linear,
    final_linear: Linear,
    /// `(TE0(0) + TE1(1)) / 2`: the time conditioning of 1-step LSD.
    tcomb_01: Vec<f32>,
    scratch: Scratch,
}

impl FlowHead {
    /// The prefixes of its linears (each a `.weight` and a `.bias`), for [`WeightStore::plan`].
    pub fn linear_prefixes(prefix: &str, depth: usize) -> Vec<String> {
        let te = ["time_embed.0.mlp.0", "time_embed.0.mlp.2", "time_embed.1.mlp.0", "time_embed.1.mlp.2"];
        let mut v: Vec<String> = te
            .into_iter()
            .chain(["cond_embed", "input_proj", "final_layer.adaLN_modulation.1", "final_layer.linear"])
            .map(|n| format!("{prefix}.{n}"))
            .collect();
        for k in 0..depth {
            v.extend(["mlp.0", "mlp.2", "adaLN_modulation.1"].map(|n| format!("{prefix}.res_blocks.{k}.{n}")));
        }
        v
    }

    /// Takes `{prefix}.*` (e.g. `flow_lm.flow_net`) from the store.
    pub fn load(
        s: &mut WeightStore,
        prefix: &str,
        d_model: usize,
        dim: usize,
        depth: usize,
        ldim: usize,
    ) -> Result<Self> {
        let te = [
            TimestepEmbedder::load(s, &format!("{prefix}.time_embed.0"), dim)?,
            TimestepEmbedder::load(s, &format!("{prefix}.time_embed.1"), dim)?,
        ];
        let cond_embed = take_linear(s, &format!("{prefix}.cond_embed"), dim, d_model)?;
        let input_proj = take_linear(s, &format!("{prefix}.input_proj"), dim, ldim)?;
        let mut blocks = Vec::with_capacity(depth);
        for k in 0..depth {
            let p = format!("{prefix}.res_blocks.{k}");
            blocks.push(ResBlock {
                ln_w: s.take(&format!("{p}.in_ln.weight"), &[dim])?.data,
                ln_b: s.take(&format!("{p}.in_ln.bias"), &[dim])?.data,
                mlp0: take_linear(s, &format!("{p}.mlp.0"), dim, dim)?,
                mlp2: take_linear(s, &format!("{p}.mlp.2"), dim, dim)?,
                ada: take_linear(s, &format!("{p}.adaLN_modulation.1"), 3 * dim, dim)?,
            });
        }
        let final_ada = take_linear(s, &format!("{prefix}.final_layer.adaLN_modulation.1"), 2 * dim, dim)?;
        let final_linear = take_linear(s, &format!("{prefix}.final_layer.linear"), ldim, dim)?;
        let mut head = Self {
            d_model,
            dim,
            ldim,
            te,
            cond_embed,
            input_proj,
            blocks,
            final_ada,
            final_linear,
            tcomb_01: vec![0.0; dim],
            scratch: Scratch::default(),
        };
        head.ensure(1);
        head.time_conditioning(0.0, 1.0);
        head.tcomb_01.copy_from_slice(&head.scratch.tcomb[..dim]);
        Ok(head)
    }

    fn emb_width(&self) -> usize {
        2 * self.te[0].freqs.len()
    }

    fn ensure(&mut self, rows: usize) {
        let (dim, ldim, emb) = (self.dim, self.ldim, self.emb_width());
        self.scratch.ensure(rows, dim, ldim, emb);
    }

    /// Bytes of weights one forward reads (for bandwidth figures): everything but the time embedders, which 1-step
    /// LSD never runs.
    pub fn weight_bytes(&self) -> usize {
        self.cond_embed.weight_bytes()
            + self.input_proj.weight_bytes()
            + self
                .blocks
                .iter()
                .map(|b| b.mlp0.weight_bytes() + b.mlp2.weight_bytes() + b.ada.weight_bytes())
                .sum::<usize>()
            + self.final_ada.weight_bytes()
            + self.final_linear.weight_bytes()
    }

    /// Bytes of all packed weights.
    pub fn total_weight_bytes(&self) -> usize {
        self.weight_bytes() + self.te[0].weight_bytes() + self.te[1].weight_bytes()
    }

    /// `scratch.tcomb = (TE0(s) + TE1(t)) / 2` for one `(s, t)` pair.
    fn time_conditioning(&mut self, s: f32, t: f32) {
        let sc = &mut self.scratch;
        sc.tau[0] = s;
        self.te[0].forward(&sc.tau[..1], &mut sc.te0, &mut sc.emb, &mut sc.hid, 1);
        sc.tau[0] = t;
        self.te[1].forward(&sc.tau[..1], &mut sc.te1, &mut sc.emb, &mut sc.hid, 1);
        for i in 0..self.dim {
            sc.tcomb[i] = (sc.te0[i] + sc.te1[i]) / 2.0;
        }
    }

    /// The ResBlocks and final layer on `scratch.h` given `scratch.y`, `b` rows; `v` into `scratch.v`.
    /// `trace`, when given, receives each block's output at `[k, b, dim]`.
    fn body(&mut self, b: usize, mut trace: Option<&mut [f32]>) {
        let dim = self.dim;
        let sc = &mut self.scratch;
        let n = b * dim;
        sc.sy[..n].copy_from_slice(&sc.y[..n]);
        silu(&mut sc.sy[..n]);
        for (k, blk) in self.blocks.iter().enumerate() {
            blk.ada.forward(&sc.sy[..n], &mut sc.modulation[..3 * n], b);
            layer_norm(&sc.h[..n], &mut sc.u[..n], dim, Some(&blk.ln_w), Some(&blk.ln_b), LN_EPS);
            modulate(&sc.u[..n], &mut sc.u2[..n], &sc.modulation[..3 * n], 3 * dim, 0, dim, dim);
            blk.mlp0.forward(&sc.u2[..n], &mut sc.u[..n], b);
            silu(&mut sc.u[..n]);
            blk.mlp2.forward(&sc.u[..n], &mut sc.u2[..n], b);
            for r in 0..b {
                let h = &mut sc.h[r * dim..(r + 1) * dim];
                let (g, m) = (&sc.u2[r * dim..], &sc.modulation[r * 3 * dim + 2 * dim..]);
                for i in 0..dim {
                    h[i] += m[i] * g[i];
                }
            }
            if let Some(t) = trace.as_deref_mut() {
                t[k * n..(k + 1) * n].copy_from_slice(&sc.h[..n]);
            }
        }
        self.final_ada.forward(&sc.sy[..n], &mut sc.modulation[..2 * n], b);
        layer_norm(&sc.h[..n], &mut sc.u[..n], dim, None, None, LN_EPS);
        modulate(&sc.u[..n], &mut sc.u2[..n], &sc.modulation[..2 * n], 2 * dim, 0, dim, dim);
        self.final_linear.forward(&sc.u2[..n], &mut sc.v[..b * self.ldim], b);
    }

    /// `v[b×ldim] = flow_net(c, s, t, x)` for `b` rows, each with its own `s` and `t`.
    ///
    /// `trace`, when given, receives `[te0, te1, t_combined, cond, y, h_in, res0 … res{depth−1}]`, each `[b, dim]`
    /// ([`trace_tensors`] of them).
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &mut self,
        c: &[f32],
        s: &[f32],
        t: &[f32],
        x: &[f32],
        v: &mut [f32],
        b: usize,
        trace: Option<&mut [f32]>,
    ) {
        let (dim, ldim) = (self.dim, self.ldim);
        assert!(c.len() >= b * self.d_model && s.len() >= b && t.len() >= b, "flow head sizes");
        assert!(x.len() >= b * ldim && v.len() >= b * ldim, "flow head sizes");
        self.ensure(b);
        let n = b * dim;
        let sc = &mut self.scratch;
        sc.tau[..b].copy_from_slice(&s[..b]);
        self.te[0].forward(&sc.tau[..b], &mut sc.te0, &mut sc.emb, &mut sc.hid, b);
        sc.tau[..b].copy_from_slice(&t[..b]);
        self.te[1].forward(&sc.tau[..b], &mut sc.te1, &mut sc.emb, &mut sc.hid, b);
        self.cond_embed.forward(&c[..b * self.d_model], &mut sc.cond[..n], b);
        for i in 0..n {
            sc.y[i] = (sc.te0[i] + sc.te1[i]) / 2.0 + sc.cond[i];
        }
        self.input_proj.forward(&x[..b * ldim], &mut sc.h[..n], b);
        let mut trace = trace;
        if let Some(tr) = trace.as_deref_mut() {
            assert!(tr.len() >= trace_tensors(self.blocks.len()) * n, "flow head trace size");
            tr[..n].copy_from_slice(&sc.te0[..n]);
            tr[n..2 * n].copy_from_slice(&sc.te1[..n]);
            for i in 0..n {
                tr[2 * n + i] = (sc.te0[i] + sc.te1[i]) / 2.0;
            }
            tr[3 * n..4 * n].copy_from_slice(&sc.cond[..n]);
            tr[4 * n..5 * n].copy_from_slice(&sc.y[..n]);
            tr[5 * n..6 * n].copy_from_slice(&sc.h[..n]);
        }
        self.body(b, trace.map(|tr| &mut tr[6 * n..]));
        v[..b * ldim].copy_from_slice(&self.scratch.v[..b * ldim]);
    }

    /// LSD decoding in place: `x[b×ldim]` starts as x₀ and ends as the latent; `c` is `[b, d_model]`.
    pub fn lsd_decode(&mut self, c: &[f32], x: &mut [f32], b: usize, steps: usize) {
        let (dim, ldim) = (self.dim, self.ldim);
        assert!(steps >= 1 && c.len() >= b * self.d_model && x.len() >= b * ldim);
        self.ensure(b);
        let n = b * dim;
        self.cond_embed.forward(&c[..b * self.d_model], &mut self.scratch.cond[..n], b);
        for i in 0..steps {
            if steps > 1 {
                // s = i/n and t = (i+1)/n as Python floats, then float32.
                let (s, t) = ((i as f64 / steps as f64) as f32, ((i + 1) as f64 / steps as f64) as f32);
                self.time_conditioning(s, t);
            }
            let sc = &mut self.scratch;
            let tc = if steps > 1 { &sc.tcomb[..dim] } else { &self.tcomb_01[..] };
            for r in 0..b {
                for j in 0..dim {
                    sc.y[r * dim + j] = tc[j] + sc.cond[r * dim + j];
                }
            }
            self.input_proj.forward(&x[..b * ldim], &mut sc.h[..n], b);
            self.body(b, None);
            let inv = steps as f32;
            for (xi, &vi) in x[..b * ldim].iter_mut().zip(&self.scratch.v[..b * ldim]) {
                *xi += vi / inv;
            }
        }
    }

    /// The velocity of the last step of the last [`lsd_decode`](Self::lsd_decode) or [`forward`](Self::forward)
    /// call, first row.
    pub fn last_v(&self) -> &[f32] {
        &self.scratch.v[..self.ldim]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::random_vec;

    #[test]
    fn rms_norm_uses_unbiased_centred_variance_on_the_uncentred_input() {
        let h0: Vec<f32> = random_vec(512, 3).iter().map(|v| v * 3.0 + 0.7).collect();
        let alpha = random_vec(512, 4);
        let mut h = h0.clone();
        rms_norm_unbiased(&mut h, &alpha, 1e-5);
        // torch: var(h) with N−1, then h · alpha · rsqrt(var + eps)
        let n = h0.len() as f64;
        let mean = h0.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = h0.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0);
        for i in 0..512 {
            let want = h0[i] as f64 * alpha[i] as f64 / (var + 1e-5).sqrt();
            assert!((h[i] as f64 - want).abs() <= 1e-6 * want.abs().max(1.0), "{i}: {} vs {want}", h[i]);
        }
    }

    #[test]
    fn modulate_reads_shift_and_scale_chunks() {
        // two rows of width 2; modulation rows [shift | scale | gate]
        let x = [1.0, 2.0, 3.0, 4.0];
        let m = [0.5, -0.5, 1.0, 0.0, 9.0, 9.0, 0.0, 1.0, -1.0, 2.0, 9.0, 9.0];
        let mut u = [0.0; 4];
        modulate(&x, &mut u, &m, 6, 0, 2, 2);
        assert_eq!(u, [1.0 * 2.0 + 0.5, 2.0 * 1.0 - 0.5, 3.0 * 0.0 + 0.0, 4.0 * 3.0 + 1.0]);
    }
}
