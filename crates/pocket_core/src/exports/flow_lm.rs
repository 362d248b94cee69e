//! FlowLM exports: the model (built from the weight store), per-stream states (KV caches), calls (text prefill,
//! conditioning prefill, AR step), the flow head on its own, and voice-state import/export helpers.
//!
//! Handles: `flow_lm_new` → `*mut FlowLm` (free with `flow_lm_free`), `flow_lm_state_new` → `*mut FlowLmState`
//! (free with `flow_lm_state_free`). A state must only be used with the model that created it (checked).
//! Pointers are byte offsets into the instance's memory; sizes are element counts.

use super::{drop_handle, guard, str_arg};
use crate::error::{CoreError, Result};
use crate::flow_head::trace_tensors;
use crate::flow_lm::{FlowLm, FlowLmConfig, FlowLmState, Input};
use crate::memory::{slice, slice_mut};
use crate::params::Params;
use crate::weights::with_store;

/// Builds FlowLM from the weight store's `flow_lm.*` tensors. `params`: `d_model num_heads num_layers ffn_dim
/// flow_dim flow_depth ldim n_bins max_period` as `key=value`.
///
/// # Safety
/// `params` points to `len` bytes of UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_new(params: *const u8, len: usize) -> *mut FlowLm {
    guard(std::ptr::null_mut(), || {
        let p = Params::parse(unsafe { str_arg(params, len)? })?;
        let cfg = FlowLmConfig::from_params(&p)?;
        let m = with_store(|s| FlowLm::load(s, cfg))?;
        Ok(Box::into_raw(Box::new(m)))
    })
}

/// Plans the packing of FlowLM's linear weights before they are added (same `params` as [`flow_lm_new`]), so each
/// is packed as it arrives and the store never holds them all in their file form. Returns 1, or 0 on bad params.
///
/// # Safety
/// `params` points to `len` bytes of UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_plan(params: *const u8, len: usize) -> u32 {
    guard(0, || {
        let cfg = FlowLmConfig::from_params(&Params::parse(unsafe { str_arg(params, len)? })?)?;
        with_store(|s| FlowLm::plan(s, &cfg));
        Ok(1)
    })
}

/// # Safety
/// `h` from [`flow_lm_new`], freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_free(h: *mut FlowLm) {
    unsafe { drop_handle(h) }
}

/// Bytes of weights an AR step reads (transformer, input_linear, out_eos, 1-step flow head).
///
/// # Safety
/// `h` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_step_weight_bytes(h: *const FlowLm) -> usize {
    unsafe { (*h).step_weight_bytes() }
}

/// Bytes of every weight the model holds.
///
/// # Safety
/// `h` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_weight_bytes(h: *const FlowLm) -> usize {
    unsafe { (*h).weight_bytes() }
}

/// 1 when the model has `bos_before_voice`.
///
/// # Safety
/// `h` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_has_bos_before_voice(h: *const FlowLm) -> u32 {
    unsafe { (*h).has_bos_before_voice() as u32 }
}

/// Records each call's input rows and layer outputs (`on` = 1) or stops (`on` = 0).
///
/// # Safety
/// `h` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_set_trace(h: *mut FlowLm, on: u32) {
    unsafe { (*h).trace = (on != 0).then(Vec::new) }
}

/// Values in the trace of the last call (`(1 + layers) · t · d_model`), 0 when tracing is off.
///
/// # Safety
/// `h` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_trace_len(h: *const FlowLm) -> usize {
    unsafe { (*h).trace.as_ref().map_or(0, |t| t.len()) }
}

/// Pointer to the trace (valid until the next call on `h`).
///
/// # Safety
/// `h` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_trace_ptr(h: *const FlowLm) -> *const f32 {
    unsafe { (*h).trace.as_ref().map_or(std::ptr::null(), |t| t.as_ptr()) }
}

/// Copies the last call's `c` (`d_model` values) and, if `v` is not null, the flow head's last velocity (`ldim`).
///
/// # Safety
/// `h` live; buffers of those sizes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_last_c(h: *const FlowLm, c: *mut f32, v: *mut f32) {
    unsafe {
        let m = &*h;
        slice_mut(c, m.cfg.d_model).copy_from_slice(m.last_c());
        if !v.is_null() {
            slice_mut(v, m.cfg.ldim).copy_from_slice(m.flow.last_v());
        }
    }
}

// ---- states ----

/// A new empty state with room for `capacity` positions.
///
/// # Safety
/// `h` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_state_new(h: *const FlowLm, capacity: usize) -> *mut FlowLmState {
    Box::into_raw(Box::new(unsafe { (*h).new_state(capacity) }))
}

/// # Safety
/// `s` from [`flow_lm_state_new`], freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_state_free(s: *mut FlowLmState) {
    unsafe { drop_handle(s) }
}

/// Positions in the cache.
///
/// # Safety
/// `s` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_state_offset(s: *const FlowLmState) -> usize {
    unsafe { (*s).offset() }
}

/// Positions the cache has room for.
///
/// # Safety
/// `s` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_state_capacity(s: *const FlowLmState) -> usize {
    unsafe { (*s).capacity() }
}

/// Grows the cache to at least `capacity` positions, keeping its contents.
///
/// # Safety
/// `s` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_state_reserve(s: *mut FlowLmState, capacity: usize) {
    unsafe { (*s).reserve(capacity) }
}

/// Empties the cache (offset 0), keeping its buffers.
///
/// # Safety
/// `s` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_state_reset(s: *mut FlowLmState) {
    unsafe { (*s).reset() }
}

/// Makes `dst` a copy of `src`'s used positions (only the prefix is copied; `dst` keeps larger buffers).
///
/// # Safety
/// `dst` and `src` live and distinct.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_state_copy(dst: *mut FlowLmState, src: *const FlowLmState) -> u32 {
    guard(0, || {
        if std::ptr::eq(dst, src) {
            return Ok(1);
        }
        unsafe { (*dst).copy_from(&*src)? };
        Ok(1)
    })
}

/// Replaces layer `layer` with `t` positions from `kv` = `[2, t, heads, head_dim]` (K after RoPE, then V).
///
/// # Safety
/// `s` live; `kv` holds `2·t·d_model` values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_state_load_layer(s: *mut FlowLmState, layer: usize, kv: *const f32, t: usize) -> u32 {
    guard(0, || {
        let st = unsafe { &mut *s };
        let row = st.caches.first().map_or(0, |c| c.heads * c.head_dim);
        unsafe { st.load_layer(layer, slice(kv, 2 * t * row), t)? };
        Ok(1)
    })
}

/// Writes layer `layer`'s used positions as `[2, offset, heads, head_dim]` into `out` (`2·offset·d_model` values).
///
/// # Safety
/// `s` live; `out` of that size.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_state_read_layer(s: *const FlowLmState, layer: usize, out: *mut f32) -> u32 {
    guard(0, || {
        let st = unsafe { &*s };
        let row = st.caches.first().map_or(0, |c| c.heads * c.head_dim);
        unsafe { st.read_layer(layer, slice_mut(out, 2 * st.offset() * row))? };
        Ok(1)
    })
}

// ---- calls ----

/// Finishes a call: EOS logit into `eos` (if not null), and the latent decoded from `x0` into `latent` (if `x0`
/// is not null).
unsafe fn finish(m: &mut FlowLm, x0: *const f32, lsd_steps: usize, latent: *mut f32, eos: *mut f32) -> Result<u32> {
    let ldim = m.cfg.ldim;
    unsafe {
        if !eos.is_null() {
            *eos = m.last_eos();
        }
        if !x0.is_null() {
            if latent.is_null() {
                return Err(CoreError::new("x0 given without a latent output"));
            }
            let out = slice_mut(latent, ldim);
            out.copy_from_slice(slice(x0, ldim));
            m.decode_latent(out, lsd_steps)?;
        }
    }
    Ok(1)
}

/// Prefills `n` text token ids (u32). With `x0` (32 values) non-null, also decodes the (discarded upstream) latent.
///
/// # Safety
/// Live handles; buffers of the stated sizes; `latent`/`eos` may be null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_prefill_tokens(
    h: *mut FlowLm,
    s: *mut FlowLmState,
    ids: *const u32,
    n: usize,
    x0: *const f32,
    lsd_steps: usize,
    latent: *mut f32,
    eos: *mut f32,
) -> u32 {
    guard(0, || unsafe {
        let m = &mut *h;
        m.forward(&mut *s, Input::Tokens(slice(ids, n)))?;
        finish(m, x0, lsd_steps, latent, eos)
    })
}

/// Prefills `n` conditioning rows `[n, d_model]` (a voice), preceded by `bos_before_voice` when `bos_first` = 1.
///
/// # Safety
/// As [`flow_lm_prefill_tokens`]; `rows` holds `n·d_model` values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_prefill_embeddings(
    h: *mut FlowLm,
    s: *mut FlowLmState,
    rows: *const f32,
    n: usize,
    bos_first: u32,
    x0: *const f32,
    lsd_steps: usize,
    latent: *mut f32,
    eos: *mut f32,
) -> u32 {
    guard(0, || unsafe {
        let m = &mut *h;
        let rows = slice(rows, n * m.cfg.d_model);
        m.forward(&mut *s, Input::Embeddings { rows, t: n, bos_first: bos_first != 0 })?;
        finish(m, x0, lsd_steps, latent, eos)
    })
}

/// One AR step: feeds `input` (32 values; NaN entries become `bos_emb`), decodes the next latent from `x0` with
/// `lsd_steps` LSD steps into `latent`, and writes the raw EOS logit to `eos`.
///
/// # Safety
/// Live handles; `input`, `x0`, `latent` hold `ldim` values, `eos` one.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_step(
    h: *mut FlowLm,
    s: *mut FlowLmState,
    input: *const f32,
    x0: *const f32,
    lsd_steps: usize,
    latent: *mut f32,
    eos: *mut f32,
) -> u32 {
    guard(0, || unsafe {
        let m = &mut *h;
        let rows = slice(input, m.cfg.ldim);
        m.forward(&mut *s, Input::Latents { rows, t: 1 })?;
        finish(m, x0, lsd_steps, latent, eos)
    })
}

// ---- flow head alone, voice helpers ----

/// `v[b×ldim] = flow_net(c, s, t, x)` for `b` rows (`c [b, d_model]`, `s`, `t` `[b]`, `x [b, ldim]`). With
/// `trace` non-null, writes `[te0, te1, t_combined, cond, y, h_in, res0 …]` each `[b, flow_dim]`.
///
/// # Safety
/// Live handle; buffers of the stated sizes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_head_forward(
    h: *mut FlowLm,
    c: *const f32,
    s: *const f32,
    t: *const f32,
    x: *const f32,
    b: usize,
    v: *mut f32,
    trace: *mut f32,
) {
    unsafe {
        let f = &mut (*h).flow;
        let (d, ld, dim) = (f.d_model, f.ldim, f.dim);
        let n_trace = trace_tensors((*h).cfg.flow_depth) * b * dim;
        let tr = (!trace.is_null()).then(|| slice_mut(trace, n_trace));
        f.forward(slice(c, b * d), slice(s, b), slice(t, b), slice(x, b * ld), slice_mut(v, b * ld), b, tr);
    }
}

/// LSD decoding of `b` rows in place: `x [b, ldim]` from x₀ to the latent, conditioned on `c [b, d_model]`.
///
/// # Safety
/// Live handle; buffers of the stated sizes; `steps` ≥ 1.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_head_lsd(h: *mut FlowLm, c: *const f32, x: *mut f32, b: usize, steps: usize) -> u32 {
    guard(0, || unsafe {
        if steps == 0 {
            return Err(CoreError::new("LSD needs at least one step"));
        }
        let f = &mut (*h).flow;
        let (d, ld) = (f.d_model, f.ldim);
        f.lsd_decode(slice(c, b * d), slice_mut(x, b * ld), b, steps);
        Ok(1)
    })
}

/// Layer 0's K and V (`[2, d_model]`) at position 0 for `bos_before_voice`: the first position of every voice
/// state this model makes (a model-identity check for voice files). 0 when the model has no `bos_before_voice`.
///
/// # Safety
/// Live handle; `out` holds `2·d_model` values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_bos_kv(h: *mut FlowLm, out: *mut f32) -> u32 {
    guard(0, || unsafe {
        let m = &mut *h;
        let d = m.cfg.d_model;
        m.bos_kv(slice_mut(out, 2 * d))?;
        Ok(1)
    })
}

/// Voice conditioning from raw encoder latents: `out [f, d_model] = rows [f, inner_dim] · speaker_projᵀ`.
///
/// # Safety
/// Live handle; buffers of the stated sizes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lm_speaker_project(
    h: *const FlowLm,
    rows: *const f32,
    f: usize,
    inner: usize,
    out: *mut f32,
) -> u32 {
    guard(0, || unsafe {
        let m = &*h;
        m.speaker_project(slice(rows, f * inner), f, slice_mut(out, f * m.cfg.d_model))?;
        Ok(1)
    })
}
