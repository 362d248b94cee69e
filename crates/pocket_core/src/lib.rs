//! Pocket TTS compute core.
//!
//! Compiled to WebAssembly twice from the same source (simd128, and simd128 + relaxed-simd) and driven from TS
//! through the raw exports in [`exports`]. Weights live in [`weights`] until model parts take them; streaming state
//! belongs to per-stream state objects, never to the weights.

// `memory.atomic.wait32`/`notify` (the threads build's helpers sleep on them) are still unstable in `core::arch`.
#![cfg_attr(all(target_arch = "wasm32", target_feature = "atomics"), feature(stdarch_wasm_atomic_wait))]

pub mod conv;
pub mod error;
pub mod exports;
pub mod flow_head;
pub mod flow_lm;
pub mod kernels;
pub mod memory;
pub mod mimi;
pub mod mimi_encoder;
pub mod mimi_transformer;
pub mod params;
pub mod pool;
pub mod seanet;
pub mod seanet_encoder;
pub mod simd;
pub mod taps;
pub mod weights;

#[cfg(test)]
pub mod testing;
