//! Mimi encoder exports (voice cloning): the encoder (built from the weight store's `mimi.encoder.*`,
//! `mimi.encoder_transformer.*` and `mimi.downsample.*` tensors) and per-stream states.
//!
//! Handles: `mimi_encoder_new` → `*mut MimiEncoder` (free with `mimi_encoder_free`), `mimi_encoder_state_new` →
//! `*mut MimiEncoderState` (free with `mimi_encoder_state_free`, before its encoder). A state must only be used with
//! the encoder that created it (checked). Null handles are reported as errors, never dereferenced.

use super::mimi::{live, live_mut};
use super::{drop_handle, guard, str_arg};
use crate::error::CoreError;
use crate::memory::{slice, slice_mut};
use crate::mimi_encoder::{MimiEncoder, MimiEncoderState};
use crate::weights::with_store;

/// Builds the encoder from the store. `params` (`key=value`): `inner_dim stride`, the transformer's (`d_model
/// num_heads num_layers dim_feedforward context max_period layer_scale`) and SEANet's (`dimension channels n_filters
/// ratios kernel_size residual_kernel_size last_kernel_size n_residual_layers dilation_base compress`). Null on
/// error; a checkpoint that does not fit leaves the store untouched.
///
/// # Safety
/// `params` points to `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_encoder_new(params: *const u8, len: usize) -> *mut MimiEncoder {
    guard(std::ptr::null_mut(), || {
        let p = unsafe { str_arg(params, len)? };
        let e = with_store(|s| MimiEncoder::from_store(s, p))?;
        Ok(Box::into_raw(Box::new(e)))
    })
}

/// # Safety
/// `h` from [`mimi_encoder_new`], freed once, after its states.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_encoder_free(h: *mut MimiEncoder) {
    unsafe { drop_handle(h) }
}

/// Audio samples per latent frame (0 for a null handle).
///
/// # Safety
/// `h` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_encoder_frame_samples(h: *const MimiEncoder) -> usize {
    guard(0, || Ok(unsafe { live(h, "Mimi encoder") }?.frame_samples()))
}

/// Values per latent frame (0 for a null handle).
///
/// # Safety
/// `h` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_encoder_inner_dim(h: *const MimiEncoder) -> usize {
    guard(0, || Ok(unsafe { live(h, "Mimi encoder") }?.inner_dim))
}

/// Bytes of packed weights.
///
/// # Safety
/// `h` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_encoder_weight_bytes(h: *const MimiEncoder) -> usize {
    guard(0, || Ok(unsafe { live(h, "Mimi encoder") }?.weight_bytes()))
}

/// Multiply-accumulates per frame (GEMMs and convolutions).
///
/// # Safety
/// `h` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_encoder_macs_per_frame(h: *const MimiEncoder) -> usize {
    guard(0, || Ok(unsafe { live(h, "Mimi encoder") }?.macs_per_frame()))
}

/// Pointer to the tap list: one `name channels` line per tap (UTF-8, [`mimi_encoder_tap_names_len`] bytes).
///
/// # Safety
/// `h` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_encoder_tap_names_ptr(h: *const MimiEncoder) -> *const u8 {
    guard(std::ptr::null(), || Ok(unsafe { live(h, "Mimi encoder") }?.tap_names.as_ptr()))
}

/// Byte length of the tap names.
///
/// # Safety
/// `h` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_encoder_tap_names_len(h: *const MimiEncoder) -> usize {
    guard(0, || Ok(unsafe { live(h, "Mimi encoder") }?.tap_names.len()))
}

/// A fresh stream state for up to `max_frames` frames per internal step (1…256). Null on error.
///
/// # Safety
/// `h` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_encoder_state_new(h: *const MimiEncoder, max_frames: usize) -> *mut MimiEncoderState {
    guard(std::ptr::null_mut(), || {
        let st = MimiEncoderState::new(unsafe { live(h, "Mimi encoder") }?, max_frames)?;
        Ok(Box::into_raw(Box::new(st)))
    })
}

/// # Safety
/// `s` from [`mimi_encoder_state_new`], freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_encoder_state_free(s: *mut MimiEncoderState) {
    unsafe { drop_handle(s) }
}

/// Back to the start of a stream. 0 for a null handle.
///
/// # Safety
/// `s` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_encoder_state_reset(s: *mut MimiEncoderState) -> u32 {
    guard(0, || {
        unsafe { live_mut(s, "Mimi encoder state") }?.reset();
        Ok(1)
    })
}

/// Bytes the state holds.
///
/// # Safety
/// `s` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_encoder_state_bytes(s: *const MimiEncoderState) -> usize {
    guard(0, || Ok(unsafe { live(s, "Mimi encoder state") }?.bytes()))
}

/// Absolute 200 Hz position of the next step (16 per encoded frame).
///
/// # Safety
/// `s` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_encoder_state_position(s: *const MimiEncoderState) -> usize {
    guard(0, || Ok(unsafe { live(s, "Mimi encoder state") }?.position()))
}

/// Turns recording of intermediate outputs on (`on` = 1, allocates) or off.
///
/// # Safety
/// `h`, `s` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_encoder_state_set_taps(h: *const MimiEncoder, s: *mut MimiEncoderState, on: u32) -> u32 {
    guard(0, || {
        unsafe { live_mut(s, "Mimi encoder state") }?.set_taps(unsafe { live(h, "Mimi encoder") }?, on != 0)?;
        Ok(1)
    })
}

/// Pointer to tap `id` of the last internal step (time-major `[T × C]`), null when absent.
///
/// # Safety
/// `s` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_encoder_state_tap_ptr(s: *const MimiEncoderState, id: usize) -> *const f32 {
    guard(std::ptr::null(), || {
        let st = unsafe { live(s, "Mimi encoder state") }?;
        Ok(st.tap(id).ok_or_else(|| CoreError::new(format!("no tap {id}")))?.as_ptr())
    })
}

/// Values in tap `id` (0 when absent).
///
/// # Safety
/// `s` live or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_encoder_state_tap_len(s: *const MimiEncoderState, id: usize) -> usize {
    guard(0, || Ok(unsafe { live(s, "Mimi encoder state") }?.tap(id).map_or(0, |t| t.len())))
}

/// Encodes `n_frames` frames of audio (`[n_frames × frame_samples]` at `audio`) into `out`
/// (`[n_frames × inner_dim]`), continuing the stream. 1 on success, 0 on error.
///
/// # Safety
/// `h`, `s` live or null; buffers of the stated sizes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mimi_encode(
    h: *const MimiEncoder,
    s: *mut MimiEncoderState,
    audio: *const f32,
    n_frames: usize,
    out: *mut f32,
) -> u32 {
    guard(0, || {
        let e = unsafe { live(h, "Mimi encoder") }?;
        let st = unsafe { live_mut(s, "Mimi encoder state") }?;
        if n_frames == 0 {
            return Ok(1);
        }
        if audio.is_null() || out.is_null() {
            return Err(CoreError::new("null audio or latent buffer"));
        }
        let a = unsafe { slice(audio, n_frames * e.frame_samples()) };
        let o = unsafe { slice_mut(out, n_frames * e.inner_dim) };
        e.encode(st, a, n_frames, o)?;
        Ok(1)
    })
}
