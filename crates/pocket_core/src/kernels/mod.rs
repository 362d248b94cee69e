//! Compute kernels. Each has a plain scalar reference (`*_ref`) that a reader can check in a minute, and a fast
//! version tested against it (host `cargo test`, and the wasm builds from the TS tests).

pub mod bf16;
pub mod linear;
