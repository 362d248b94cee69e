//! The weight store: every tensor of a checkpoint, by name, widened to f32, in this instance's memory.
//!
//! TS copies each tensor's raw bytes into a staging buffer and calls `weights_add`; model constructors then
//! `take` the tensors they need (checking shapes, so a mismatched checkpoint is a clear error), packing linear
//! weights as they go. Tensors wait here in their file precision (BF16 stays 2 bytes a value) and are widened to
//! f32 only when taken; taking removes the tensor, and the packed copy reuses the memory it leaves, so peak memory
//! stays near one copy of the weights in their file precision plus what the model keeps.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::error::{CoreError, Result};
use crate::kernels::bf16::{bf16_to_f32, f16_to_f32};

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

/// A tensor as it waits in the store: f32, or the 16-bit patterns of a BF16/F16 file.
enum Stored {
    F32(Vec<f32>),
    Half(DType, Vec<u16>),
}

impl Stored {
    fn widen(self) -> Vec<f32> {
        match self {
            Stored::F32(v) => v,
            Stored::Half(dtype, h) => {
                let mut out = vec![0.0f32; h.len()];
                if dtype == DType::BF16 {
                    bf16_to_f32(&h, &mut out)
                } else {
                    f16_to_f32(&h, &mut out)
                }
                out
            }
        }
    }
}

/// Named tensors awaiting their model part.
#[derive(Default)]
pub struct WeightStore {
    tensors: HashMap<String, (Vec<usize>, Stored)>,
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
        let stored = match dtype {
            DType::F32 => Stored::F32(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            DType::BF16 | DType::F16 => Stored::Half(
                dtype,
                bytes
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect(),
            ),
        };
        self.tensors
            .insert(name.to_string(), (shape.to_vec(), stored));
        Ok(())
    }

    pub fn insert(&mut self, name: &str, t: Tensor) {
        self.tensors
            .insert(name.to_string(), (t.shape, Stored::F32(t.data)));
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Shape of a stored tensor, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|(shape, _)| shape.as_slice())
    }

    /// Checks that `name` is present with exactly `shape`.
    pub fn check_shape(&self, name: &str, shape: &[usize]) -> Result<()> {
        match self.tensors.get(name) {
            None => Err(CoreError::new(format!(
                "missing tensor '{name}' (expected shape {shape:?})"
            ))),
            Some((have, _)) if have != shape => Err(CoreError::new(format!(
                "tensor '{name}' has shape {have:?}, expected {shape:?}"
            ))),
            _ => Ok(()),
        }
    }

    /// Checks every `(name, shape)` before a model part takes any, so a checkpoint that does not fit leaves the
    /// store untouched.
    pub fn check_shapes(&self, expected: &[(String, Vec<usize>)]) -> Result<()> {
        expected
            .iter()
            .try_for_each(|(name, shape)| self.check_shape(name, shape))
    }

    /// Removes and returns `name`, which must have exactly `shape`.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.check_shape(name, shape)?;
        let (shape, stored) = self.tensors.remove(name).expect("checked above");
        Ok(Tensor {
            shape,
            data: stored.widen(),
        })
    }

    /// Removes and returns `name` if present (optional tensors such as biases).
    pub fn take_optional(&mut self, name: &str, shape: &[usize]) -> Result<Option<Tensor>> {
        if self.contains(name) {
            self.take(name, shape).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Names still in the store (e.g. to report unused tensors).
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.tensors.keys().cloned().collect();
        v.sort();
        v
    }

    pub fn clear(&mut self) {
        self.tensors.clear();
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
        let bytes: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        s.add("a.weight", DType::F32, &[2, 2], &bytes).unwrap();
        s.add("b", DType::BF16, &[2], &[0x80, 0x3f, 0x00, 0xc0])
            .unwrap();
        assert!(s.add("c", DType::F32, &[3], &bytes).is_err());
        let e = s.take("a.weight", &[4]).unwrap_err();
        assert!(e.0.contains("has shape [2, 2], expected [4]"), "{}", e.0);
        s.add("a.weight", DType::F32, &[2, 2], &bytes).unwrap();
        assert_eq!(
            s.take("a.weight", &[2, 2]).unwrap().data,
            vec![1.0, 2.0, 3.0, 4.0]
        );
        assert_eq!(s.take("b", &[2]).unwrap().data, vec![1.0, -2.0]);
        assert!(
            s.take("zzz", &[1])
                .unwrap_err()
                .0
                .contains("missing tensor 'zzz'")
        );
    }
}
