//! Every `extern "C"` entry point of the wasm module: the whole TS ↔ wasm boundary lives in this folder
//! (`mod.rs`: memory, diagnostics, kernels and the weight store; one file per model part beside it).
//!
//! Conventions: pointers are byte offsets into the instance's memory, sizes are element counts unless named
//! `bytes`. Fallible exports return 1 / a non-null handle on success and 0 / null on failure, leaving a message
//! for `last_error_*`. Handles are `Box` pointers owned by TS until passed to the matching `*_free`.

pub mod flow_lm;
pub mod mimi;
pub mod mimi_encoder;

use crate::error::{CoreError, set_last_error, with_last_error};
use crate::kernels::{bf16, limits, linear, linear_i8};
use crate::memory::{allocate, release, slice, slice_mut};
use crate::weights::{DType, with_store};

/// Runs a fallible export body: `Ok` → its value, `Err` → records the message and returns `fail`.
pub(crate) fn guard<T>(fail: T, body: impl FnOnce() -> crate::error::Result<T>) -> T {
    match body() {
        Ok(v) => v,
        Err(e) => {
            set_last_error(&e);
            fail
        }
    }
}

/// Frees a handle made by `Box::into_raw` (null is ignored): the body of every `*_free` export.
///
/// # Safety
/// `h` is null or a live handle of type `T`, freed once.
pub(crate) unsafe fn drop_handle<T>(h: *mut T) {
    if !h.is_null() {
        drop(unsafe { Box::from_raw(h) })
    }
}

/// Reads a UTF-8 string passed from TS.
///
/// # Safety
/// `ptr` must point to `len` readable bytes.
pub(crate) unsafe fn str_arg<'a>(ptr: *const u8, len: usize) -> crate::error::Result<&'a str> {
    std::str::from_utf8(unsafe { slice(ptr, len) }).map_err(|_| CoreError::new("string argument is not UTF-8"))
}

// ---- memory and diagnostics ----

// Exported as `alloc`/`free` on wasm only: on the host these names would replace libc's allocator.
#[cfg_attr(target_arch = "wasm32", unsafe(export_name = "alloc"))]
pub extern "C" fn core_alloc(bytes: usize) -> *mut u8 {
    allocate(bytes)
}

/// # Safety
/// See [`release`].
#[cfg_attr(target_arch = "wasm32", unsafe(export_name = "free"))]
pub unsafe extern "C" fn core_free(ptr: *mut u8, bytes: usize) {
    unsafe { release(ptr, bytes) }
}

/// 1 = simd128, 2 = simd128 + relaxed-simd (0 = host build).
#[unsafe(no_mangle)]
pub extern "C" fn core_variant() -> u32 {
    crate::simd::variant()
}

// ---- the threads build's helpers (`pool.rs`) ----

/// 1 in the threads build (shared memory: helper instances can join), else 0.
#[unsafe(no_mangle)]
pub extern "C" fn core_threads() -> u32 {
    cfg!(target_feature = "atomics") as u32
}

/// A helper instance's whole life (called once from its worker; returns after `pool_quit`).
#[unsafe(no_mangle)]
pub extern "C" fn pool_helper_run() {
    crate::pool::helper_run()
}

/// Sends every helper out of `pool_helper_run` (before their workers are terminated).
#[unsafe(no_mangle)]
pub extern "C" fn pool_quit() {
    crate::pool::quit()
}

/// Non-zero: kernels share their work with the helpers (the default); zero: they run on the calling thread alone.
#[unsafe(no_mangle)]
pub extern "C" fn pool_set_enabled(on: u32) {
    crate::pool::set_enabled(on != 0)
}

#[unsafe(no_mangle)]
pub extern "C" fn pool_helpers() -> u32 {
    crate::pool::helpers()
}

/// Chunks helpers have run (a diagnostic for tests), as f64 so that JS gets a number.
#[unsafe(no_mangle)]
pub extern "C" fn pool_helper_chunks() -> f64 {
    crate::pool::helper_chunks() as f64
}

/// Address of the i32 a helper's worker sets when its instance traps.
#[unsafe(no_mangle)]
pub extern "C" fn pool_failed_flag() -> *const i32 {
    crate::pool::failed_flag() as *const i32
}

#[unsafe(no_mangle)]
pub extern "C" fn last_error_ptr() -> *const u8 {
    with_last_error(|b| b.as_ptr())
}

#[unsafe(no_mangle)]
pub extern "C" fn last_error_len() -> usize {
    with_last_error(|b| b.len())
}

// ---- kernels (exposed for tests and benchmarks) ----

/// # Safety
/// `src` holds `n` u16, `dst` room for `n` f32.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bf16_to_f32(src: *const u16, dst: *mut f32, n: usize) {
    unsafe { bf16::bf16_to_f32(slice(src, n), slice_mut(dst, n)) }
}

/// # Safety
/// As [`bf16_to_f32`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bf16_to_f32_ref(src: *const u16, dst: *mut f32, n: usize) {
    unsafe { bf16::bf16_to_f32_ref(slice(src, n), slice_mut(dst, n)) }
}

/// Scalar reference `y[m×n] = x[m×k]·w[n×k]ᵀ (+ b)`; `b` may be null.
///
/// # Safety
/// Buffers of the stated sizes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn matmul_ref(
    x: *const f32,
    w: *const f32,
    b: *const f32,
    y: *mut f32,
    m: usize,
    n: usize,
    k: usize,
) {
    unsafe {
        let bias = (!b.is_null()).then(|| slice(b, n));
        linear::matmul_ref(slice(x, m * k), slice(w, n * k), bias, slice_mut(y, m * n), m, n, k)
    }
}

/// Packs a row-major `[n_out, n_in]` weight (and optional bias, may be null) into a [`linear::Linear`].
///
/// # Safety
/// Buffers of the stated sizes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn linear_new(w: *const f32, b: *const f32, n_out: usize, n_in: usize) -> *mut linear::Linear {
    unsafe {
        let bias = (!b.is_null()).then(|| slice(b, n_out));
        Box::into_raw(Box::new(linear::Linear::new(slice(w, n_out * n_in), bias, n_out, n_in)))
    }
}

/// # Safety
/// `h` from [`linear_new`], freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn linear_free(h: *mut linear::Linear) {
    unsafe { drop_handle(h) }
}

/// Stores the weights as BF16 panels when lossless (see [`linear::Linear::compact`]); returns 1 when it did.
///
/// # Safety
/// `h` from [`linear_new`], live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn linear_compact(h: *mut linear::Linear) -> u32 {
    // Move the value out of its box, convert it, and move it back: the handle TS holds stays the same.
    unsafe {
        let l = std::ptr::read(h);
        let before = l.weight_bytes();
        let l = l.compact();
        let done = (l.weight_bytes() < before) as u32;
        std::ptr::write(h, l);
        done
    }
}

/// `y[m×n_out] = x[m×n_in]·Wᵀ + b` with the packed SIMD kernel (GEMV when m = 1).
///
/// # Safety
/// `h` live; buffers of the stated sizes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn linear_forward(h: *const linear::Linear, x: *const f32, y: *mut f32, m: usize) {
    unsafe {
        let l = &*h;
        l.forward(slice(x, m * l.n_in), slice_mut(y, m * l.n_out), m)
    }
}

/// The GEMM tile's multiply-add form on this engine ([`linear::MaddMode`]): 1 fused, 2 a product then a sum.
#[unsafe(no_mangle)]
pub extern "C" fn linear_madd_mode() -> u32 {
    match linear::madd_mode() {
        linear::MaddMode::Fused => 1,
        linear::MaddMode::Separate => 2,
    }
}

/// Forces the tile's multiply-add form (1 fused, else separate), so tests can compare both on one engine.
#[unsafe(no_mangle)]
pub extern "C" fn linear_set_madd_mode(mode: u32) {
    linear::set_madd_mode(if mode == 1 { linear::MaddMode::Fused } else { linear::MaddMode::Separate });
}

/// An int8 linear layer with its activation scratch (for tests and benchmarks; FlowLM keeps one scratch for all).
pub struct LinearI8Handle {
    l: linear_i8::LinearI8,
    acts: linear_i8::QuantActs,
}

/// Quantises and packs a row-major `[n_out, n_in]` weight (and optional bias, may be null) as int8.
///
/// # Safety
/// Buffers of the stated sizes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn linear_i8_new(w: *const f32, b: *const f32, n_out: usize, n_in: usize) -> *mut LinearI8Handle {
    unsafe {
        let bias = (!b.is_null()).then(|| slice(b, n_out));
        let l = linear_i8::LinearI8::new(slice(w, n_out * n_in), bias, n_out, n_in);
        Box::into_raw(Box::new(LinearI8Handle { l, acts: Default::default() }))
    }
}

/// # Safety
/// `h` from [`linear_i8_new`], freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn linear_i8_free(h: *mut LinearI8Handle) {
    unsafe { drop_handle(h) }
}

/// `y[m×n_out] = x[m×n_in]·Wᵀ + b` with dynamic int8 activations: the SIMD kernel, or (`reference` = 1) the
/// scalar reference.
///
/// # Safety
/// `h` live; buffers of the stated sizes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn linear_i8_forward(h: *mut LinearI8Handle, x: *const f32, y: *mut f32, m: usize, reference: u32) {
    unsafe {
        let LinearI8Handle { l, acts } = &mut *h;
        let (x, y) = (slice(x, m * l.n_in), slice_mut(y, m * l.n_out));
        if reference == 1 { l.forward_ref(x, y, m, acts) } else { l.forward(x, y, m, acts) }
    }
}

/// Reads `bytes` bytes at `buf` (a multiple of 4) `passes` times with 128-bit loads; returns the words' wrapping sum
/// (the `limits` benchmark's streaming read).
///
/// # Safety
/// `buf` holds `bytes` readable bytes, 4-byte aligned.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn limits_read(buf: *const u32, bytes: usize, passes: usize) -> u32 {
    let words = unsafe { slice(buf, bytes / 4) };
    (0..passes).fold(0u32, |a, _| a.wrapping_add(limits::read_sum(words)))
}

/// Runs [`limits::CHAINS`] vector multiply-add chains of `iters` steps (the `limits` benchmark's FMA throughput).
#[unsafe(no_mangle)]
pub extern "C" fn limits_madd(a: f32, b: f32, iters: usize) -> f32 {
    limits::madd_chains(a, b, iters)
}

// ---- weight store ----

/// Adds one checkpoint tensor. `dtype`: 0 = F32, 1 = BF16, 2 = F16; `shape` holds `ndim` u32.
///
/// # Safety
/// Buffers of the stated sizes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn weights_add(
    name: *const u8,
    name_len: usize,
    dtype: u32,
    shape: *const u32,
    ndim: usize,
    bytes: *const u8,
    n_bytes: usize,
) -> u32 {
    guard(0, || {
        let name = unsafe { str_arg(name, name_len)? };
        let shape: Vec<usize> = unsafe { slice(shape, ndim) }.iter().map(|&d| d as usize).collect();
        let dtype = DType::from_code(dtype)?;
        with_store(|s| s.add(name, dtype, &shape, unsafe { slice(bytes, n_bytes) }))?;
        Ok(1)
    })
}

/// Drops every tensor not yet taken by a model part.
#[unsafe(no_mangle)]
pub extern "C" fn weights_clear() {
    with_store(|s| s.clear())
}
