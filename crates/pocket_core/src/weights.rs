//! The weight store: every tensor of a checkpoint, by name, in this instance's memory until a model part takes it.
//!
//! TS copies each tensor's raw bytes into a staging buffer and calls `weights_add`; model constructors then
//! `take` the tensors they need (checking shapes, so a mismatched checkpoint is a clear error), packing linear
//! weights as they go. Tensors wait here in their file precision (BF16 stays 2 bytes a value) and are widened to
//! f32 only when taken; taking removes the tensor, and the packed copy reuses the memory it leaves.
//!
//! Wasm memory never shrinks, so the load's peak is the process's floor. A model part whose big linears would
//! otherwise wait here all at once (FlowLM: 151 MB of BF16 beside the panels made from them) [`plan`s]
//! (WeightStore::plan) them first: a planned tensor is packed the moment it is added, straight from the staging
//! bytes into its final form ([`Linear`] panels or [`LinearI8`]), so the store never holds more than one such
//! tensor in its file form.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::error::{CoreError, Result};
use crate::kernels::bf16::{bf16_to_f32, f16_to_f32};
use crate::kernels::linear::Linear;
use crate::kernels::linear_i8::LinearI8;

/// A dense f32 tensor, row-major.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Element types accepted from safetensors files.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DType {
    F32 = 0,
    BF16 = 1,
    F16 = 2,
}

impl DType {
    pub fn from_code(code: u32) -> Result<Self> {
        match code {
            0 => Ok(Self::F32),
            1 => Ok(Self::BF16),
            2 => Ok(Self::F16),
            _ => Err(CoreError::new(format!("unsupported dtype code {code}"))),
        }
    }
    pub fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::BF16 | Self::F16 => 2,
        }
    }
}

/// A model part's own packing of a weight: from its values (`w(i)`: element `i`, row-major, widened to f32 as it
/// is read from the stored or staged bytes) and its bias, the packed form the part keeps. The same function packs
/// a planned tensor on arrival and an unplanned one when taken ([`WeightStore::take_packed`]), so both give the
/// same weights.
pub type Packer = Rc<dyn Fn(&dyn Fn(usize) -> f32, Option<Vec<f32>>) -> Box<dyn Any>>;

/// How a planned tensor is packed when it is added.
#[derive(Clone)]
pub enum Packing {
    /// A `[n_out, n_in]` weight as [`Linear`] panels, BF16 where that loses nothing ([`Linear::compact`]), with the
    /// bias tensor `bias` when named: packed on arrival only if the bias is already in the store (else when taken).
    Linear { bias: Option<String> },
    /// A `[n_out, n_in]` weight as [`LinearI8`]: int8 with per-row scales, no bias.
    LinearI8,
    /// A weight of exactly `shape` by `pack`, with the bias tensor `bias` (name and length) when given, under the
    /// same rule as `Linear`'s bias. Taken back with [`WeightStore::take_packed`].
    Custom { shape: Vec<usize>, bias: Option<(String, usize)>, pack: Packer },
}

/// A tensor as it waits in the store: f32, the 16-bit patterns of a BF16/F16 file, or already packed.
enum Stored {
    F32(Vec<f32>),
    Half(DType, Vec<u16>),
    Linear(Linear),
    LinearI8(LinearI8),
    /// Packed by a [`Packing::Custom`] plan.
    Custom(Box<dyn Any>),
}

impl Stored {
    fn widen(self, name: &str) -> Result<Vec<f32>> {
        match self {
            Stored::F32(v) => Ok(v),
            Stored::Half(dtype, h) => {
                let mut out = vec![0.0f32; h.len()];
                if dtype == DType::BF16 { bf16_to_f32(&h, &mut out) } else { f16_to_f32(&h, &mut out) }
                Ok(out)
            }
            Stored::Linear(_) | Stored::LinearI8(_) | Stored::Custom(_) => Err(packed_error(name)),
        }
    }

    /// `f` with an accessor of element `i` as f32, read from the stored values (no widened copy of them all).
    fn with_values<R>(&self, name: &str, f: impl FnOnce(&dyn Fn(usize) -> f32) -> R) -> Result<R> {
        match self {
            Stored::F32(v) => Ok(f(&|i| v[i])),
            Stored::Half(dtype, h) => {
                let dtype = *dtype;
                Ok(f(&|i| half_value(dtype, h[i])))
            }
            Stored::Linear(_) | Stored::LinearI8(_) | Stored::Custom(_) => Err(packed_error(name)),
        }
    }
}

fn packed_error(name: &str) -> CoreError {
    CoreError::new(format!("tensor '{name}' was packed as a linear weight when it was added"))
}

/// Element `i` of raw little-endian `bytes` of `dtype`, as f32.
fn value_at(dtype: DType, bytes: &[u8], i: usize) -> f32 {
    match dtype {
        DType::F32 => f32::from_le_bytes([bytes[4 * i], bytes[4 * i + 1], bytes[4 * i + 2], bytes[4 * i + 3]]),
        DType::BF16 | DType::F16 => half_value(dtype, u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]])),
    }
}

/// A BF16 or F16 value's bits as f32 (what widening the whole tensor gives for it).
fn half_value(dtype: DType, bits: u16) -> f32 {
    if dtype == DType::BF16 {
        return f32::from_bits((bits as u32) << 16);
    }
    let mut out = [0.0f32];
    f16_to_f32(&[bits], &mut out);
    out[0]
}

/// A row-major `[n_out, n_in]` weight (element `i` is `w(i)`) and its bias packed as [`Linear`] panels, then
/// compacted to BF16 where lossless: the panels are filled straight from `w`, so no row-major f32 copy is made.
fn packed_linear(n_out: usize, n_in: usize, bias: Option<Vec<f32>>, w: impl Fn(usize) -> f32) -> Linear {
    Linear::from_fn(n_out, n_in, bias, |c, i| w(c * n_in + i)).compact()
}

/// A table of rows (an embedding) kept in its file precision: BF16 rows stay 2 bytes a value and are widened when
/// read, which gives exactly the f32 values a widened copy would hold.
pub enum Table {
    F32(Vec<f32>),
    Bf16(Vec<u16>),
}

impl Table {
    /// Writes row `r` (of width `out.len()`) into `out`.
    pub fn row_into(&self, r: usize, out: &mut [f32]) {
        let w = out.len();
        match self {
            Table::F32(v) => out.copy_from_slice(&v[r * w..(r + 1) * w]),
            Table::Bf16(v) => bf16_to_f32(&v[r * w..(r + 1) * w], out),
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        match self {
            Table::F32(v) => v.len() * 4,
            Table::Bf16(v) => v.len() * 2,
        }
    }
}

/// Named tensors awaiting their model part, and how the planned ones are packed on arrival.
#[derive(Default)]
pub struct WeightStore {
    tensors: HashMap<String, (Vec<usize>, Stored)>,
    plans: HashMap<String, Packing>,
    /// Biases that went into a planned weight on arrival, with their shapes: present for [`Self::check_shape`]
    /// until that weight is taken.
    absorbed: HashMap<String, Vec<usize>>,
}

impl WeightStore {
    /// Adds a tensor from raw little-endian bytes.
    pub fn add(&mut self, name: &str, dtype: DType, shape: &[usize], bytes: &[u8]) -> Result<()> {
        let n: usize = shape.iter().product();
        if bytes.len() != n * dtype.size() {
            return Err(CoreError::new(format!(
                "tensor '{name}': {} bytes for shape {shape:?} of {dtype:?}",
                bytes.len()
            )));
        }
        let stored = match (self.plans.get(name), shape) {
            (Some(Packing::Linear { bias }), &[n_out, n_in]) => match bias.clone() {
                None => Stored::Linear(packed_linear(n_out, n_in, None, |i| value_at(dtype, bytes, i))),
                Some(b) if self.shape(&b) == Some(&[n_out]) => {
                    let b = self.absorb(&b, n_out)?;
                    Stored::Linear(packed_linear(n_out, n_in, Some(b), |i| value_at(dtype, bytes, i)))
                }
                Some(_) => Self::unpacked(dtype, bytes),
            },
            (Some(Packing::LinearI8), &[n_out, n_in]) => {
                let w: Vec<f32> = (0..n_out * n_in).map(|i| value_at(dtype, bytes, i)).collect();
                Stored::LinearI8(LinearI8::new(&w, None, n_out, n_in))
            }
            (Some(Packing::Custom { shape: want, bias, pack }), _) if want == shape => match bias.clone() {
                None => Stored::Custom(pack(&|i| value_at(dtype, bytes, i), None)),
                Some((b, n)) if self.shape(&b) == Some(&[n]) => {
                    let (pack, b) = (pack.clone(), self.absorb(&b, n)?);
                    Stored::Custom(pack(&|i| value_at(dtype, bytes, i), Some(b)))
                }
                Some(_) => Self::unpacked(dtype, bytes),
            },
            _ => Self::unpacked(dtype, bytes),
        };
        self.tensors.insert(name.to_string(), (shape.to_vec(), stored));
        Ok(())
    }

    /// Removes `name`, which [`Self::check_shape`] found: an error if it is a bias a packed weight absorbed.
    fn remove(&mut self, name: &str) -> Result<(Vec<usize>, Stored)> {
        self.tensors.remove(name).ok_or_else(|| CoreError::new(format!("tensor '{name}' went into its packed weight")))
    }

    /// Takes the bias `name` (`[n]`) into the weight being packed, keeping its shape for [`Self::check_shape`].
    fn absorb(&mut self, name: &str, n: usize) -> Result<Vec<f32>> {
        self.absorbed.insert(name.to_string(), vec![n]);
        Ok(self.take(name, &[n])?.data)
    }

    fn unpacked(dtype: DType, bytes: &[u8]) -> Stored {
        match dtype {
            DType::F32 => Stored::F32(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
            DType::BF16 | DType::F16 => {
                Stored::Half(dtype, bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect())
            }
        }
    }

    /// Packs `name` as `packing` when it is added (until [`Self::clear`]). A tensor that arrives with another rank
    /// is stored as it is, so taking it reports the shape.
    pub fn plan(&mut self, name: &str, packing: Packing) {
        self.plans.insert(name.to_string(), packing);
    }

    pub fn insert(&mut self, name: &str, t: Tensor) {
        self.tensors.insert(name.to_string(), (t.shape, Stored::F32(t.data)));
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Whether `name` is stored packed (planned and packed on arrival), not in its file form.
    pub fn is_packed(&self, name: &str) -> bool {
        matches!(self.tensors.get(name), Some((_, Stored::Linear(_) | Stored::LinearI8(_) | Stored::Custom(_))))
    }

    /// Shape of a stored tensor, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|(shape, _)| shape.as_slice())
    }

    /// Checks that `name` is present with exactly `shape`.
    pub fn check_shape(&self, name: &str, shape: &[usize]) -> Result<()> {
        match self.tensors.get(name).map(|(shape, _)| shape).or_else(|| self.absorbed.get(name)) {
            None => Err(CoreError::new(format!("missing tensor '{name}' (expected shape {shape:?})"))),
            Some(have) if have != shape => {
                Err(CoreError::new(format!("tensor '{name}' has shape {have:?}, expected {shape:?}")))
            }
            _ => Ok(()),
        }
    }

    /// Checks every `(name, shape)` before a model part takes any, so a checkpoint that does not fit leaves the
    /// store untouched.
    pub fn check_shapes(&self, expected: &[(String, Vec<usize>)]) -> Result<()> {
        expected.iter().try_for_each(|(name, shape)| self.check_shape(name, shape))
    }

    /// Removes and returns `name`, which must have exactly `shape`.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.check_shape(name, shape)?;
        if self.is_packed(name) {
            return Err(packed_error(name));
        }
        let (shape, stored) = self.remove(name)?;
        Ok(Tensor { data: stored.widen(name)?, shape })
    }

    /// Removes `name` (`[n_out, n_in]`) as [`Linear`] panels, compacted to BF16 where lossless, with the bias
    /// `bias` (`[n_out]`) when named: packed when it was added if it was planned (its bias then went in with it),
    /// else now, straight from its stored form (taking the bias too).
    pub fn take_linear(&mut self, name: &str, bias: Option<&str>, n_out: usize, n_in: usize) -> Result<Linear> {
        self.check_shape(name, &[n_out, n_in])?;
        self.plans.remove(name);
        if let Some((_, Stored::Linear(_))) = self.tensors.get(name) {
            let Some((_, Stored::Linear(l))) = self.tensors.remove(name) else { unreachable!() };
            bias.map(|b| self.absorbed.remove(b));
            return Ok(l);
        }
        let b = match bias {
            Some(b) => Some(self.take(b, &[n_out])?.data),
            None => None,
        };
        Ok(match self.remove(name)?.1 {
            Stored::Half(DType::BF16, h) => packed_linear(n_out, n_in, b, |i| f32::from_bits((h[i] as u32) << 16)),
            other => {
                let v = other.widen(name)?;
                packed_linear(n_out, n_in, b, |i| v[i])
            }
        })
    }

    /// Removes `name` (`[n_out, n_in]`) as a [`LinearI8`]: quantised when it was added if it was planned, else now.
    pub fn take_linear_i8(&mut self, name: &str, n_out: usize, n_in: usize) -> Result<LinearI8> {
        self.check_shape(name, &[n_out, n_in])?;
        self.plans.remove(name);
        match self.remove(name)?.1 {
            Stored::LinearI8(l) => Ok(l),
            other => Ok(LinearI8::new(&other.widen(name)?, None, n_out, n_in)),
        }
    }

    /// Removes `name` (exactly `shape`; with the bias `bias`, name and length, when given) packed by `pack`: as its
    /// [`Packing::Custom`] plan packed it on arrival (with the same `pack`, the bias then went in with it), else
    /// now, straight from its stored form (taking the bias too).
    pub fn take_packed<T: 'static>(
        &mut self,
        name: &str,
        shape: &[usize],
        bias: Option<(&str, usize)>,
        pack: &Packer,
    ) -> Result<T> {
        self.check_shape(name, shape)?;
        self.plans.remove(name);
        let packed = match self.remove(name)?.1 {
            Stored::Custom(p) => {
                bias.map(|(b, _)| self.absorbed.remove(b));
                p
            }
            stored => {
                let b = match bias {
                    Some((b, n)) => Some(self.take(b, &[n])?.data),
                    None => None,
                };
                stored.with_values(name, |w| pack(w, b))?
            }
        };
        packed.downcast::<T>().map(|t| *t).map_err(|_| CoreError::new(format!("tensor '{name}' was packed as another kind")))
    }

    /// Removes `name` (exactly `shape`) as a [`Table`]: BF16 stays BF16, F32 and F16 become f32.
    pub fn take_table(&mut self, name: &str, shape: &[usize]) -> Result<Table> {
        self.check_shape(name, shape)?;
        if let Some((_, Stored::Half(DType::BF16, _))) = self.tensors.get(name) {
            let Some((_, Stored::Half(_, h))) = self.tensors.remove(name) else { unreachable!() };
            return Ok(Table::Bf16(h));
        }
        Ok(Table::F32(self.take(name, shape)?.data))
    }

    /// Removes and returns `name` if present (optional tensors such as biases).
    pub fn take_optional(&mut self, name: &str, shape: &[usize]) -> Result<Option<Tensor>> {
        if self.contains(name) { self.take(name, shape).map(Some) } else { Ok(None) }
    }

    /// Names still in the store (e.g. to report unused tensors).
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.tensors.keys().cloned().collect();
        v.sort();
        v
    }

    pub fn clear(&mut self) {
        self.tensors.clear();
        self.plans.clear();
        self.absorbed.clear();
    }
}

thread_local! {
    static STORE: RefCell<WeightStore> = RefCell::new(WeightStore::default());
}

/// Runs `f` with this instance's weight store.
pub fn with_store<R>(f: impl FnOnce(&mut WeightStore) -> R) -> R {
    STORE.with(|s| f(&mut s.borrow_mut()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_take_and_shape_errors() {
        let mut s = WeightStore::default();
        let bytes: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        s.add("a.weight", DType::F32, &[2, 2], &bytes).unwrap();
        s.add("b", DType::BF16, &[2], &[0x80, 0x3f, 0x00, 0xc0]).unwrap();
        assert!(s.add("c", DType::F32, &[3], &bytes).is_err());
        let e = s.take("a.weight", &[4]).unwrap_err();
        assert!(e.0.contains("has shape [2, 2], expected [4]"), "{}", e.0);
        s.add("a.weight", DType::F32, &[2, 2], &bytes).unwrap();
        assert_eq!(s.take("a.weight", &[2, 2]).unwrap().data, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.take("b", &[2]).unwrap().data, vec![1.0, -2.0]);
        assert!(s.take("zzz", &[1]).unwrap_err().0.contains("missing tensor 'zzz'"));
    }

    /// `[n_out, n_in]` BF16 bytes of a pseudo-random weight, and the f32 values they hold.
    fn bf16_weight(n_out: usize, n_in: usize) -> (Vec<u8>, Vec<f32>) {
        let sign = |i: usize| ((i % 3 == 0) as u16) << 15;
        let bits: Vec<u16> = (0..n_out * n_in).map(|i| (0x3c00 + ((i * 7919) % 1500) as u16) | sign(i)).collect();
        let vals = bits.iter().map(|&b| f32::from_bits((b as u32) << 16)).collect();
        (bits.iter().flat_map(|b| b.to_le_bytes()).collect(), vals)
    }

    fn outputs(f: impl Fn(&[f32], &mut [f32], usize), n_in: usize, n_out: usize) -> Vec<f32> {
        let m = 3;
        let x: Vec<f32> = (0..m * n_in).map(|i| ((i * 37) % 17) as f32 * 0.125 - 1.0).collect();
        let mut y = vec![0.0; m * n_out];
        f(&x, &mut y, m);
        y
    }

    #[test]
    fn planned_tensors_are_packed_on_arrival_as_take_would_pack_them() {
        let (n_out, n_in) = (37, 20);
        let (bytes, w) = bf16_weight(n_out, n_in);
        let reference = Linear::new(&w, None, n_out, n_in).compact();
        let want = outputs(|x, y, m| reference.forward(x, y, m), n_in, n_out);
        let mut s = WeightStore::default();
        s.plan("p", Packing::Linear { bias: None });
        s.add("p", DType::BF16, &[n_out, n_in], &bytes).unwrap();
        s.add("u", DType::BF16, &[n_out, n_in], &bytes).unwrap();
        assert!(s.take("p", &[n_out, n_in]).unwrap_err().0.contains("packed as a linear weight"));
        let (p, u) = (s.take_linear("p", None, n_out, n_in).unwrap(), s.take_linear("u", None, n_out, n_in).unwrap());
        assert_eq!(p.weight_bytes(), n_out.div_ceil(16) * 16 * n_in * 2, "BF16 panels");
        assert_eq!(outputs(|x, y, m| p.forward(x, y, m), n_in, n_out), want);
        assert_eq!(outputs(|x, y, m| u.forward(x, y, m), n_in, n_out), want);

        // int8: the same quantisation whether planned or not
        let reference = LinearI8::new(&w, None, n_out, n_in);
        s.plan("q", Packing::LinearI8);
        s.add("q", DType::BF16, &[n_out, n_in], &bytes).unwrap();
        s.add("r", DType::BF16, &[n_out, n_in], &bytes).unwrap();
        for name in ["q", "r"] {
            let q = s.take_linear_i8(name, n_out, n_in).unwrap();
            for (c, i) in [(0, 0), (5, 19), (36, 7)] {
                assert_eq!(q.weight(c, i), reference.weight(c, i));
            }
        }

        // A planned name arriving with another rank is stored as it is: taking it names the shape.
        s.plan("v", Packing::Linear { bias: None });
        s.add("v", DType::BF16, &[n_in], &bytes[..2 * n_in]).unwrap();
        let err = s.take_linear("v", None, 1, n_in).err().expect("a shape error");
        assert!(err.0.contains("has shape [20], expected [1, 20]"), "{}", err.0);
    }

    #[test]
    fn biased_linears_and_bf16_tables_match_their_f32_forms() {
        let (n_out, n_in) = (18, 9);
        let (bytes, w) = bf16_weight(n_out, n_in);
        let b: Vec<f32> = (0..n_out).map(|i| i as f32 * 0.5).collect();
        let reference = Linear::new(&w, Some(&b), n_out, n_in);
        let mut s = WeightStore::default();
        s.add("l.weight", DType::BF16, &[n_out, n_in], &bytes).unwrap();
        s.insert("l.bias", Tensor { shape: vec![n_out], data: b.clone() });
        let l = s.take_linear("l.weight", Some("l.bias"), n_out, n_in).unwrap();
        assert!(!s.contains("l.bias"), "the bias is taken too");
        let want = outputs(|x, y, m| reference.forward(x, y, m), n_in, n_out);
        assert_eq!(outputs(|x, y, m| l.forward(x, y, m), n_in, n_out), want);
        // Planned: packed on arrival when the bias came first, else when taken; the same either way.
        for bias_first in [true, false] {
            s.plan("l.weight", Packing::Linear { bias: Some("l.bias".into()) });
            let bias = Tensor { shape: vec![n_out], data: b.clone() };
            if bias_first {
                s.insert("l.bias", bias.clone());
            }
            s.add("l.weight", DType::BF16, &[n_out, n_in], &bytes).unwrap();
            if bias_first {
                assert!(!s.contains("l.bias"), "the bias went in with the weight");
            } else {
                s.insert("l.bias", bias);
            }
            let l = s.take_linear("l.weight", Some("l.bias"), n_out, n_in).unwrap();
            assert!(!s.contains("l.bias") && !s.contains("l.weight"));
            assert_eq!(outputs(|x, y, m| l.forward(x, y, m), n_in, n_out), want);
        }

        s.add("t", DType::BF16, &[n_out, n_in], &bytes).unwrap();
        let t = s.take_table("t", &[n_out, n_in]).unwrap();
        assert_eq!(t.bytes(), n_out * n_in * 2);
        let mut row = vec![0.0; n_in];
        t.row_into(7, &mut row);
        assert_eq!(row, w[7 * n_in..8 * n_in]);
        let f: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
        s.add("f", DType::F32, &[n_out, n_in], &f).unwrap();
        assert_eq!(s.take_table("f", &[n_out, n_in]).unwrap().bytes(), n_out * n_in * 4);
    }
}
