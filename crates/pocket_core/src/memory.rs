//! Buffers shared with TS (16-byte aligned so SIMD loads never straddle more than they must), and fallible
//! zeroed buffers for the core's own scratch.

use std::alloc::{Layout, alloc_zeroed, dealloc};

use crate::error::{CoreError, Result};

const ALIGN: usize = 16;

/// A zeroed buffer, or an error (instead of an abort) when memory cannot grow.
pub fn zeros(n: usize) -> Result<Vec<f32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| CoreError::new(format!("out of memory allocating {n} floats")))?;
    v.resize(n, 0.0);
    Ok(v)
}


/// Allocates `bytes` zeroed bytes; null when `bytes` is 0 or the memory cannot grow.
pub fn allocate(bytes: usize) -> *mut u8 {
    if bytes == 0 {
        return std::ptr::null_mut();
    }
    match Layout::from_size_align(bytes, ALIGN) {
        // SAFETY: the layout has non-zero size.
        Ok(layout) => unsafe { alloc_zeroed(layout) },
        Err(_) => std::ptr::null_mut(),
    }
}

/// Frees a buffer from [`allocate`] with the same size.
///
/// # Safety
/// `ptr` must come from `allocate(bytes)` and not be freed twice.
pub unsafe fn release(ptr: *mut u8, bytes: usize) {
    if !ptr.is_null() && bytes != 0 {
        // SAFETY: the caller passes the pointer and size of a live allocation.
        unsafe { dealloc(ptr, Layout::from_size_align_unchecked(bytes, ALIGN)) }
    }
}

/// Borrows `n` values at `ptr` (TS-owned memory). An empty slice for `n == 0`.
///
/// # Safety
/// `ptr` must point to `n` valid, initialised values that outlive the borrow.
pub unsafe fn slice<'a, T>(ptr: *const T, n: usize) -> &'a [T] {
    if n == 0 { &[] } else { unsafe { std::slice::from_raw_parts(ptr, n) } }
}

/// Mutable counterpart of [`slice`].
///
/// # Safety
/// As [`slice`], and nothing else may alias the range during the borrow.
pub unsafe fn slice_mut<'a, T>(ptr: *mut T, n: usize) -> &'a mut [T] {
    if n == 0 { &mut [] } else { unsafe { std::slice::from_raw_parts_mut(ptr, n) } }
}
