//! Compute kernels. Each has a plain scalar reference (`*_ref` or a test-local f64 reference) that a reader can
//! check in a minute, and a fast version tested against it (host `cargo test`, and the wasm builds from the TS
//! tests).

pub mod activation;
pub mod attention;
pub mod bf16;
pub mod conv;
pub mod limits;
pub mod linear_i8;
pub mod linear;
pub mod norm;
pub mod rope;
