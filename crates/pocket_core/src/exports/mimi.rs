//! Mimi decoder exports: the decoder (built from the weight store's `mimi.*` tensors) and per-stream states.
//!
//! Handles: `mimi_decoder_new` → `*mut MimiDecoder` (free with `mimi_decoder_free`), `mimi_state_new` →
//! `*mut MimiState` (free with `mimi_state_free`; free every state before its decoder). A state must only be used
//! with the decoder that created it (checked). Null handles are reported as errors, never dereferenced.

use super::{drop_handle, guard, str_arg};
use crate::error::{CoreError, Result};
use crate::memory::{slice, slice_mut};
use crate::mimi::{MimiDecoder, MimiState, plan_text};
use crate::weights::with_store;

/// # Safety
/// `h` is null or points to a live `T`.
pub(crate) unsafe fn live<'a, T>(h: *const T, what: &str) -> Result<&'a T> {
    if h.is_null() { Err(CoreError::new(format!("null {what} handle"))) } else { Ok(unsafe { &*h }) }
}

/// # Safety
/// `h` is null or points to a live `T` nothing else borrows.
pub(crate) unsafe fn live_mut<'a, T>(h: *mut T, what: &str) -> Result<&'a mut T> {
    if h.is_null() { Err(CoreError::new(format!("null {what} handle"))) } else { Ok(unsafe { &mut *h }) }
}

/// Builds the decoder from the store. `params` (`key=value`): `latent_dim outer_dim stride d_model num_heads
/// num_layers dim_feedforward context max_period layer_scale dimension channels n_filters ratios kernel_size
/// residual_kernel_size last_kernel_size n_residual_layers dilation_base compress`, and optionally `stages=FROM,TO`
/// (only the stages `FROM..TO` of [`mimi_plan_new`]'s list: one part of a decoder split between threads). Null on
/// error.
///
/// # Safety
/// `params` points to `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_decoder_new(params: *const u8, len: usize) -> *mut MimiDecoder {
    guard(std::ptr::null_mut(), || {
        let p = unsafe { str_arg(params, len)? };
        let d = with_store(|s| MimiDecoder::from_store(s, p))?;
        Ok(Box::into_raw(Box::new(d)))
    })
}

/// Plans the packing of the weights of the decoder (or part) `params` describes (as [`mimi_decoder_new`] takes
/// them), before its tensors are added: each big one is then packed as it arrives. Returns 1, or 0 on bad params.
///
/// # Safety
/// `params` points to `len` bytes of UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_decoder_plan(params: *const u8, len: usize) -> u32 {
    guard(0, || {
        let p = unsafe { str_arg(params, len)? };
        with_store(|s| MimiDecoder::plan(s, p))?;
        Ok(1)
    })
}

/// The decoder's pipeline for `params` (as [`mimi_decoder_new`] takes them; no weights needed): a text handle
/// (read it with `mimi_plan_ptr`/`mimi_plan_len`, free it with `mimi_plan_free`), one `name macs out_len width` line
/// per stage, then an empty line and the tensors of the part `stages` (default: all). Null on error.
///
/// # Safety
/// `params` points to `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_plan_new(params: *const u8, len: usize) -> *mut String {
    guard(std::ptr::null_mut(), || Ok(Box::into_raw(Box::new(plan_text(unsafe { str_arg(params, len)? })?))))
}

/// # Safety
/// `h` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_plan_ptr(h: *const String) -> *const u8 {
    guard(std::ptr::null(), || Ok(unsafe { live(h, "Mimi plan") }?.as_ptr()))
}

/// # Safety
/// `h` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_plan_len(h: *const String) -> usize {
    guard(0, || Ok(unsafe { live(h, "Mimi plan") }?.len()))
}

/// # Safety
/// `h` from [`mimi_plan_new`], freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_plan_free(h: *mut String) {
    unsafe { drop_handle(h) }
}

/// # Safety
/// `h` from [`mimi_decoder_new`], freed once, after its states.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_decoder_free(h: *mut MimiDecoder) {
    unsafe { drop_handle(h) }
}

/// Makes `mimi_decode` take normalised latents (`x·std + mean`); `mean`, `std`: `latent_dim` f32 each.
///
/// # Safety
/// `h` live or null; buffers of `latent_dim` values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_decoder_set_latent_stats(h: *mut MimiDecoder, mean: *const f32, std: *const f32) -> u32 {
    guard(0, || {
        let d = unsafe { live_mut(h, "Mimi decoder") }?;
        let n = d.latent_dim;
        d.set_latent_stats(unsafe { slice(mean, n) }, unsafe { slice(std, n) })?;
        Ok(1)
    })
}

/// Values out per frame: audio samples for a whole decoder or its last part, the activation at the cut for an
/// earlier part (0 for a null handle).
///
/// # Safety
/// `h` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_decoder_frame_samples(h: *const MimiDecoder) -> usize {
    guard(0, || Ok(unsafe { live(h, "Mimi decoder") }?.frame_samples()))
}

/// Latent width (0 for a null handle).
///
/// # Safety
/// `h` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_decoder_latent_dim(h: *const MimiDecoder) -> usize {
    guard(0, || Ok(unsafe { live(h, "Mimi decoder") }?.latent_dim))
}

/// Values in per frame: `latent_dim` for a whole decoder or its first part, the activation at the cut for a later
/// part (0 for a null handle).
///
/// # Safety
/// `h` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_decoder_in_len(h: *const MimiDecoder) -> usize {
    guard(0, || Ok(unsafe { live(h, "Mimi decoder") }?.in_len))
}

/// Bytes of packed weights.
///
/// # Safety
/// `h` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_decoder_weight_bytes(h: *const MimiDecoder) -> usize {
    guard(0, || Ok(unsafe { live(h, "Mimi decoder") }?.weight_bytes()))
}

/// Multiply-accumulates per frame (GEMMs and convolutions).
///
/// # Safety
/// `h` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_decoder_macs_per_frame(h: *const MimiDecoder) -> usize {
    guard(0, || Ok(unsafe { live(h, "Mimi decoder") }?.macs_per_frame()))
}

/// Pointer to the tap list: one `name channels` line per tap (UTF-8, [`mimi_decoder_tap_names_len`] bytes).
///
/// # Safety
/// `h` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_decoder_tap_names_ptr(h: *const MimiDecoder) -> *const u8 {
    guard(std::ptr::null(), || Ok(unsafe { live(h, "Mimi decoder") }?.tap_names.as_ptr()))
}

/// Byte length of the tap names.
///
/// # Safety
/// `h` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_decoder_tap_names_len(h: *const MimiDecoder) -> usize {
    guard(0, || Ok(unsafe { live(h, "Mimi decoder") }?.tap_names.len()))
}

/// A fresh stream state for up to `max_frames` frames per internal step (1…256). Null on error.
///
/// # Safety
/// `h` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_state_new(h: *const MimiDecoder, max_frames: usize) -> *mut MimiState {
    guard(std::ptr::null_mut(), || {
        let st = MimiState::new(unsafe { live(h, "Mimi decoder") }?, max_frames)?;
        Ok(Box::into_raw(Box::new(st)))
    })
}

/// # Safety
/// `s` from [`mimi_state_new`], freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_state_free(s: *mut MimiState) {
    unsafe { drop_handle(s) }
}

/// Back to the start of a stream. 0 for a null handle.
///
/// # Safety
/// `s` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_state_reset(s: *mut MimiState) -> u32 {
    guard(0, || {
        unsafe { live_mut(s, "Mimi state") }?.reset();
        Ok(1)
    })
}

/// Bytes the state holds.
///
/// # Safety
/// `s` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_state_bytes(s: *const MimiState) -> usize {
    guard(0, || Ok(unsafe { live(s, "Mimi state") }?.bytes()))
}

/// Absolute 200 Hz position of the next step (16 per decoded frame).
///
/// # Safety
/// `s` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_state_position(s: *const MimiState) -> usize {
    guard(0, || Ok(unsafe { live(s, "Mimi state") }?.position()))
}

/// Turns recording of intermediate outputs on (`on` = 1, allocates) or off.
///
/// # Safety
/// `h`, `s` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_state_set_taps(h: *const MimiDecoder, s: *mut MimiState, on: u32) -> u32 {
    guard(0, || {
        unsafe { live_mut(s, "Mimi state") }?.set_taps(unsafe { live(h, "Mimi decoder") }?, on != 0)?;
        Ok(1)
    })
}

/// Pointer to tap `id` of the last call (time-major `[T × C]`), null when absent.
///
/// # Safety
/// `s` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_state_tap_ptr(s: *const MimiState, id: usize) -> *const f32 {
    guard(std::ptr::null(), || {
        let t = unsafe { live(s, "Mimi state") }?.tap(id).ok_or_else(|| CoreError::new(format!("no tap {id}")))?;
        Ok(t.as_ptr())
    })
}

/// Values in tap `id` (0 when absent).
///
/// # Safety
/// `s` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_state_tap_len(s: *const MimiState, id: usize) -> usize {
    guard(0, || Ok(unsafe { live(s, "Mimi state") }?.tap(id).map_or(0, |t| t.len())))
}

/// Decodes `n_frames` inputs (`[n_frames × in_len]` at `latents`: latents for the first part) into `out`
/// (`[n_frames × frame_samples]`). 1 on success, 0 on error.
///
/// # Safety
/// `h`, `s` live or null; buffers of the stated sizes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_decode(
    h: *const MimiDecoder,
    s: *mut MimiState,
    latents: *const f32,
    n_frames: usize,
    out: *mut f32,
) -> u32 {
    guard(0, || {
        let d = unsafe { live(h, "Mimi decoder") }?;
        let st = unsafe { live_mut(s, "Mimi state") }?;
        if n_frames == 0 {
            return Ok(1);
        }
        if latents.is_null() || out.is_null() {
            return Err(CoreError::new("null latent or audio buffer"));
        }
        let lat = unsafe { slice(latents, n_frames * d.in_len) };
        let o = unsafe { slice_mut(out, n_frames * d.frame_samples()) };
        d.decode(st, lat, n_frames, o)?;
        Ok(1)
    })
}
