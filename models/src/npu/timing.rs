//! Engine timing: how many cycles a matrix or vector instruction occupies
//! its engine. Pure functions of the instruction and the engine's shape, so
//! they can be checked against closed forms.

use crate::spec::Dataflow;
use isa::{Dtype, VectorOp};

/// The shape and rates of a core's matrix engines.
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixShape {
    pub engines: u32,
    pub rows: u32,
    pub cols: u32,
    pub dataflow: Dataflow,
    /// MACs per processing element per cycle, indexed by `Dtype as usize`; 0 = unsupported.
    pub macs_per_pe: [u32; 6],
}

impl MatrixShape {
    pub fn rate(&self, dtype: Dtype) -> u32 {
        self.macs_per_pe[dtype as usize]
    }

    /// Cycles one matrix engine group takes for `m × k · k × n`.
    ///
    /// With `R` rows, `C` columns, `r` MACs per element per cycle (an element
    /// then covers `r` consecutive reduction indices) and `E` engines sharing
    /// the tiles:
    ///
    /// - weight-stationary: a tile holds an `R·r × C` block of the `k × n`
    ///   operand; the `m` rows stream through it, one per cycle. Loading the
    ///   next tile's weights (`R` cycles) overlaps streaming, so a tile costs
    ///   `max(m, R)`; the first load (`R`) and the last tile's skew through the
    ///   array (`R + C - 2`) do not overlap anything.
    /// - input-stationary: the same with the `m × k` operand held and the `n`
    ///   columns streaming.
    /// - output-stationary: a tile holds an `R × C` block of the output; the
    ///   reduction streams through in `ceil(k / r)` cycles plus the skew
    ///   `R + C - 2` to fill and drain, and unloading overlaps the next tile.
    ///
    /// Returns `None` if the engine does not support `dtype`.
    pub fn cycles(&self, m: u32, n: u32, k: u32, dtype: Dtype) -> Option<u64> {
        let r = self.rate(dtype) as u64;
        if r == 0 {
            return None;
        }
        let (m, n, k) = (m as u64, n as u64, k as u64);
        if m == 0 || n == 0 || k == 0 {
            return Some(0);
        }
        let (rows, cols, engines) = (self.rows as u64, self.cols as u64, self.engines as u64);
        let skew = rows + cols - 2;
        Some(match self.dataflow {
            Dataflow::WeightStationary => {
                let tiles = k.div_ceil(rows * r) * n.div_ceil(cols);
                rows + tiles.div_ceil(engines) * m.max(rows) + skew
            }
            Dataflow::InputStationary => {
                let tiles = k.div_ceil(rows * r) * m.div_ceil(cols);
                rows + tiles.div_ceil(engines) * n.max(rows) + skew
            }
            Dataflow::OutputStationary => {
                let tiles = m.div_ceil(rows) * n.div_ceil(cols);
                tiles.div_ceil(engines) * (k.div_ceil(r) + skew)
            }
        })
    }
}

/// The shape of a core's vector engine.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorShape {
    pub lanes: u32,
    pub transcendental_cycles: u32,
    pub pipeline_cycles: u32,
}

impl VectorShape {
    /// Cycles for `op` over `elems` elements: one element per lane per cycle,
    /// transcendental ops costing more per element, plus the pipeline depth.
    pub fn cycles(&self, op: VectorOp, elems: u64) -> u64 {
        let per_element = if op.is_transcendental() { self.transcendental_cycles as u64 } else { 1 };
        (elems * per_element).div_ceil(self.lanes as u64) + self.pipeline_cycles as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws() -> MatrixShape {
        MatrixShape {
            engines: 1,
            rows: 64,
            cols: 64,
            dataflow: Dataflow::WeightStationary,
            macs_per_pe: [2, 2, 1, 1, 0, 0],
        }
    }

    #[test]
    fn weight_stationary_decode_is_weight_load_bound() {
        // m = 2 rows stream in 2 cycles, but each tile needs 64 cycles of weights.
        let tiles = (7168u64).div_ceil(128) * (7168u64).div_ceil(64);
        assert_eq!(ws().cycles(2, 7168, 7168, Dtype::Fp8), Some(64 + tiles * 64 + 126));
    }

    #[test]
    fn large_gemms_approach_the_peak_rate() {
        let (m, n, k) = (4096u64, 4096u64, 4096u64);
        let cycles = ws().cycles(m as u32, n as u32, k as u32, Dtype::Fp8).unwrap();
        let ideal = m * n * k / (64 * 64 * 2);
        assert!(cycles >= ideal);
        assert!((cycles as f64) < ideal as f64 * 1.01);
    }

    #[test]
    fn unsupported_dtypes_are_refused() {
        assert_eq!(ws().cycles(1, 1, 1, Dtype::Fp32), None);
    }
}
