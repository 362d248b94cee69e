//! Streaming convolution modules of the Mimi codec (spec §4.3), built from checkpoint tensors.
//!
//! The weights live here; the carried state lives in buffers the caller owns (one set per stream), so one decoder
//! serves any number of streams:
//!
//! - [`StreamConv1d`] keeps `previous`, the last `P = (k − 1)·dilation + 1 − stride` input rows. The caller writes
//!   new input rows into a buffer *after* the `P` carried rows, calls [`StreamConv1d::step`], which convolves the
//!   whole buffer without padding and then moves the last `P` rows to the front. Zeros at the start = the causal
//!   left padding of `pad_mode: constant`.
//! - [`StreamConvTr1d`] keeps `partial`, the `k − s = s` output rows that belong to the next call (bias excluded).
//!
//! All activations are time-major `[T × C]`.

use crate::error::{CoreError, Result};
use crate::kernels::conv::{Conv1dGemm, ConvTr1dGemm};
use std::rc::Rc;

use crate::weights::{Packer, Packing, WeightStore};

/// A causal streaming Conv1d (`{name}.weight` `[c_out, c_in, k]`, `{name}.bias` `[c_out]`).
pub struct StreamConv1d {
    pub gemm: Conv1dGemm,
    /// Input rows carried between calls.
    pub prev: usize,
}

impl StreamConv1d {
    /// Takes `{name}.weight` (and `{name}.bias` when `bias`) from the store.
    #[allow(clippy::too_many_arguments)]
    pub fn from_store(
        s: &mut WeightStore,
        name: &str,
        c_out: usize,
        c_in: usize,
        k: usize,
        stride: usize,
        dilation: usize,
        bias: bool,
    ) -> Result<Self> {
        if k == 0 || stride == 0 || dilation == 0 {
            return Err(CoreError::new(format!("conv '{name}': kernel, stride and dilation must be positive")));
        }
        let span = (k - 1) * dilation + 1;
        if span < stride {
            return Err(CoreError::new(format!("conv '{name}': stride {stride} exceeds the receptive field {span}")));
        }
        let (w, b) = (format!("{name}.weight"), format!("{name}.bias"));
        let pack = Self::packer(c_out, c_in, k, stride, dilation);
        let gemm = s.take_packed(&w, &[c_out, c_in, k], bias.then_some((b.as_str(), c_out)), &pack)?;
        Ok(Self { gemm, prev: span - stride })
    }

    /// Plans `{name}.weight` (and its bias) to be packed as it is added, as [`Self::from_store`] packs it
    /// ([`WeightStore::plan`]), so it never waits in the store in its file form.
    #[allow(clippy::too_many_arguments)]
    pub fn plan(s: &mut WeightStore, name: &str, c_out: usize, c_in: usize, k: usize, stride: usize, dilation: usize, bias: bool) {
        let pack = Self::packer(c_out, c_in, k, stride, dilation);
        let bias = bias.then(|| (format!("{name}.bias"), c_out));
        s.plan(&format!("{name}.weight"), Packing::Custom { shape: vec![c_out, c_in, k], bias, pack });
    }

    fn packer(c_out: usize, c_in: usize, k: usize, stride: usize, dilation: usize) -> Packer {
        Rc::new(move |w, b| Box::new(Conv1dGemm::from_fn(w, b, c_out, c_in, k, stride, dilation)))
    }

    /// Output rows for `t_in` new input rows (`t_in` must be a multiple of the stride).
    pub fn out_len(&self, t_in: usize) -> usize {
        t_in / self.gemm.stride
    }

    /// Floats of the input buffer for up to `t_in` new rows (carried rows included).
    pub fn buf_len(&self, t_in: usize) -> usize {
        (self.prev + t_in) * self.gemm.c_in
    }

    /// Scratch floats [`Self::step`] needs in `cols` for `t_in` new rows.
    pub fn cols_len(&self, t_in: usize) -> usize {
        self.gemm.cols_len(self.out_len(t_in))
    }

    /// `buf` holds the `prev` carried rows followed by `t_in` new rows; writes `y` `[t_in/stride × c_out]` and
    /// leaves the last `prev` rows of `buf` at its front for the next call.
    pub fn step(&self, buf: &mut [f32], t_in: usize, cols: &mut [f32], y: &mut [f32]) {
        let c = self.gemm.c_in;
        self.gemm.forward(buf, self.out_len(t_in), cols, y);
        buf.copy_within(t_in * c..(t_in + self.prev) * c, 0);
    }
}

/// A streaming ConvTranspose1d with `k = 2·stride` (`{name}.weight` `[c_in, c_out, k]`, `{name}.bias` `[c_out]`).
pub struct StreamConvTr1d {
    pub gemm: ConvTr1dGemm,
}

impl StreamConvTr1d {
    /// Takes `{name}.weight` and `{name}.bias` from the store.
    pub fn from_store(s: &mut WeightStore, name: &str, c_in: usize, c_out: usize, stride: usize) -> Result<Self> {
        if stride == 0 {
            return Err(CoreError::new(format!("conv transpose '{name}': stride must be positive")));
        }
        let (w, b) = (format!("{name}.weight"), format!("{name}.bias"));
        let gemm = s.take_packed(&w, &[c_in, c_out, 2 * stride], Some((&b, c_out)), &Self::packer(c_in, c_out, stride))?;
        Ok(Self { gemm })
    }

    /// Plans `{name}.weight` and its bias to be packed as they are added (see [`StreamConv1d::plan`]).
    pub fn plan(s: &mut WeightStore, name: &str, c_in: usize, c_out: usize, stride: usize) {
        let (shape, bias) = (vec![c_in, c_out, 2 * stride], Some((format!("{name}.bias"), c_out)));
        s.plan(&format!("{name}.weight"), Packing::Custom { shape, bias, pack: Self::packer(c_in, c_out, stride) });
    }

    fn packer(c_in: usize, c_out: usize, stride: usize) -> Packer {
        Rc::new(move |w, b| Box::new(ConvTr1dGemm::from_fn(w, b, c_in, c_out, stride)))
    }

    /// Floats of the carried `partial` (`[stride × c_out]`).
    pub fn partial_len(&self) -> usize {
        self.gemm.stride * self.gemm.c_out
    }

    /// Scratch floats [`Self::step`] needs in `g` for `t` input rows.
    pub fn scratch_len(&self, t: usize) -> usize {
        self.gemm.scratch_len(t)
    }

    /// `x` `[t × c_in]` → `y` `[t·stride × c_out]`, updating `partial`.
    pub fn step(&self, x: &[f32], t: usize, g: &mut [f32], partial: &mut [f32], y: &mut [f32]) {
        self.gemm.forward(x, t, g, partial, y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::conv::conv1d_ref;
    use crate::testing::{max_rel_diff, random_vec};
    use crate::weights::Tensor;

    #[test]
    fn streaming_conv_equals_causal_padded_conv() {
        // Three calls of 4, 8 and 4 rows equal one conv over [k − 1 zeros, all 16 rows].
        let (c_in, c_out, k) = (6, 5, 3);
        let w = random_vec(c_out * c_in * k, 1);
        let b = random_vec(c_out, 2);
        let mut s = WeightStore::default();
        s.insert("c.weight", Tensor { shape: vec![c_out, c_in, k], data: w.clone() });
        s.insert("c.bias", Tensor { shape: vec![c_out], data: b.clone() });
        let conv = StreamConv1d::from_store(&mut s, "c", c_out, c_in, k, 1, 1, true).unwrap();
        assert_eq!(conv.prev, 2);
        let x = random_vec(16 * c_in, 3);
        let mut padded = vec![0.0; 2 * c_in];
        padded.extend_from_slice(&x);
        let mut want = vec![0.0; 16 * c_out];
        conv1d_ref(&padded, 18, c_in, &w, c_out, k, 1, 1, Some(&b), &mut want);
        let mut buf = vec![0.0; conv.buf_len(8)];
        let mut cols = vec![0.0; conv.cols_len(8)];
        let mut got = vec![0.0; 16 * c_out];
        let mut at = 0;
        for t in [4, 8, 4] {
            buf[conv.prev * c_in..(conv.prev + t) * c_in].copy_from_slice(&x[at * c_in..(at + t) * c_in]);
            conv.step(&mut buf, t, &mut cols, &mut got[at * c_out..]);
            at += t;
        }
        assert!(max_rel_diff(&got, &want) < 1e-5);
    }

    #[test]
    fn shape_errors_name_the_tensor() {
        let mut s = WeightStore::default();
        s.insert("c.weight", Tensor { shape: vec![2, 3, 4], data: vec![0.0; 24] });
        let e = StreamConv1d::from_store(&mut s, "c", 2, 3, 3, 1, 1, false).err().unwrap();
        assert!(e.0.contains("'c.weight'") && e.0.contains("[2, 3, 3]"), "{}", e.0);
        let e = StreamConvTr1d::from_store(&mut s, "t", 4, 2, 3).err().unwrap();
        assert!(e.0.contains("missing tensor 't.weight'"), "{}", e.0);
    }
}
