//! Recording of intermediate outputs (for tests against golden data), shared by the Mimi decoder and encoder.

use crate::error::{CoreError, Result};
use crate::memory::zeros;

/// Copies of intermediate outputs of the last call (for tests against golden data). Buffers are allocated when
/// taps are enabled, sized for the state's largest call.
pub struct Taps {
    bufs: Vec<Vec<f32>>,
    lens: Vec<usize>,
}

impl Taps {
    /// Buffers for taps of `rows × channels` per unit (`shapes`), for calls of up to `units` units.
    pub fn new(shapes: &[(usize, usize)], units: usize) -> Result<Self> {
        let mut bufs = Vec::new();
        for &(rows, ch) in shapes {
            bufs.push(zeros(rows * ch * units)?);
        }
        Ok(Self { lens: vec![0; bufs.len()], bufs })
    }

    /// Records `data` as tap `id` (time-major `[T × C]`).
    pub fn put(&mut self, id: usize, data: &[f32]) {
        let n = data.len().min(self.bufs[id].len());
        self.bufs[id][..n].copy_from_slice(&data[..n]);
        self.lens[id] = n;
    }

    /// Tap `id` of the last call.
    pub fn get(&self, id: usize) -> Option<&[f32]> {
        Some(&self.bufs.get(id)?[..self.lens[id]])
    }
}

/// A stream state's taps, turned on (buffers for `shapes` × `units`) or off by the model part that created the state:
/// `owner` is (the part's id, the id the state was created by); `what` names the part in the error.
pub fn switch_taps(
    slot: &mut Option<Taps>,
    owner: (u32, u32),
    what: &str,
    shapes: &[(usize, usize)],
    units: usize,
    on: bool,
) -> Result<()> {
    if owner.0 != owner.1 {
        return Err(CoreError::new(format!("this {what} state belongs to another {what}")));
    }
    *slot = if on { Some(Taps::new(shapes, units)?) } else { None };
    Ok(())
}
