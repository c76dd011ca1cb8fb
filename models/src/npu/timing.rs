//! Engine timing: how long a matrix or vector instruction occupies its
//! engine, as pure functions of the instruction and the engine's shape, so
//! they can be checked against closed forms.
//!
//! An instruction occupies its engine's input stage for `tiles × period`
//! cycles. It may start streaming no earlier than `fill` cycles after it
//! became ready (loading the first stationary operands), and no earlier than
//! the previous instruction's streaming ended; so when instructions follow
//! back to back, each one's fill overlaps the one before. Its results are
//! visible `drain` cycles after its streaming ends. A run of `N` instructions
//! that never wait therefore takes `fill + Σ tiles·period + drain` cycles.

use crate::spec::Dataflow;
use isa::{Dtype, VectorOp};

/// Cycle counts of one instruction on an engine (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StageTiming {
    /// Tiles each engine of the group streams (the busiest engine's share).
    pub tiles: u64,
    /// Cycles each tile occupies the input stage.
    pub period: u64,
    /// Cycles from readiness to the first tile streaming (stationary operands loading).
    pub fill: u64,
    /// Cycles from the end of streaming to the last result.
    pub drain: u64,
}

impl StageTiming {
    /// Cycles the input stage is occupied.
    pub fn streaming(&self) -> u64 {
        self.tiles * self.period
    }
}

/// The shape and rates of a core's matrix engines.
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixShape {
    pub engines: u32,
    pub rows: u32,
    pub cols: u32,
    pub dataflow: Dataflow,
    /// MACs per processing element per cycle, indexed by `Dtype as usize`; 0 = unsupported.
    pub macs_per_pe: [u32; 6],
    /// Rows and columns of the output block whose operands an instruction
    /// reads once and broadcasts; `None`: each array tile streams its own.
    pub operand_block: Option<(u32, u32)>,
}

impl MatrixShape {
    pub fn from_spec(spec: &crate::spec::MatrixSpec) -> MatrixShape {
        let mut macs_per_pe = [0u32; 6];
        for (dtype, rate) in &spec.macs_per_pe {
            macs_per_pe[*dtype as usize] = *rate;
        }
        MatrixShape {
            engines: spec.engines,
            rows: spec.rows,
            cols: spec.cols,
            dataflow: spec.dataflow,
            macs_per_pe,
            operand_block: spec.operand_block.map(|b| (b.rows, b.cols)),
        }
    }

    pub fn rate(&self, dtype: Dtype) -> u32 {
        self.macs_per_pe[dtype as usize]
    }

    /// The timing of `m × k · k × n` on an `R × C` systolic array whose
    /// elements each complete `r` MACs per cycle (covering `r` consecutive
    /// reduction indices), with `E` arrays sharing the tiles. Derivation:
    ///
    /// - **Weight-stationary.** A tile holds an `R·r × C` block of the `k × n`
    ///   operand. Weights shift in over `R` cycles (`fill`); the `m` rows of
    ///   the other operand then stream through, one per cycle, while the next
    ///   tile's weights shift into the shadow registers, so a tile occupies the
    ///   array for `max(m, R)` cycles (`period`): decode-sized `m < R` is bound
    ///   by loading weights. The last row leaves the array after the skew of
    ///   the reduction down `R` rows and across `C` columns: `R + C − 2`
    ///   cycles (`drain`). Tiles: `⌈k / R·r⌉ · ⌈n / C⌉`.
    /// - **Input-stationary.** The same with the `m × k` operand held (its `m`
    ///   along the columns) and the `n` columns of the other streaming:
    ///   period `max(n, R)`, fill `R`, drain `R + C − 2`, tiles `⌈k / R·r⌉ · ⌈m / C⌉`.
    /// - **Output-stationary.** A tile holds an `R × C` block of the output;
    ///   both operands stream in along the reduction, `⌈k / r⌉` cycles, and the
    ///   previous tile's `R` rows of results shift out meanwhile: period
    ///   `max(⌈k / r⌉, R)`. Nothing is preloaded (fill 0); after the last
    ///   operands enter, the skew `R + C − 2` and the unloading of the last
    ///   results, `R`, remain: drain `2R + C − 2`. Tiles: `⌈m / R⌉ · ⌈n / C⌉`.
    ///
    /// With `E` arrays the tiles are dealt round robin: `⌈tiles / E⌉` each.
    /// `None` if the engine does not support `dtype`.
    pub fn timing(&self, m: u32, n: u32, k: u32, dtype: Dtype) -> Option<StageTiming> {
        let r = self.rate(dtype) as u64;
        if r == 0 {
            return None;
        }
        let (m, n, k) = (m as u64, n as u64, k as u64);
        let (rows, cols, engines) = (self.rows as u64, self.cols as u64, self.engines.max(1) as u64);
        let skew = rows + cols - 2;
        let (tiles, period, fill, drain) = match self.dataflow {
            Dataflow::WeightStationary => (k.div_ceil(rows * r) * n.div_ceil(cols), m.max(rows), rows, skew),
            Dataflow::InputStationary => (k.div_ceil(rows * r) * m.div_ceil(cols), n.max(rows), rows, skew),
            Dataflow::OutputStationary => {
                (m.div_ceil(rows) * n.div_ceil(cols), k.div_ceil(r).max(rows), 0, skew + rows)
            }
        };
        Some(StageTiming { tiles: tiles.div_ceil(engines), period, fill, drain })
    }

    /// Cycles of one instruction on an idle engine: `fill + tiles·period + drain`.
    pub fn cycles(&self, m: u32, n: u32, k: u32, dtype: Dtype) -> Option<u64> {
        self.timing(m, n, k, dtype).map(|t| t.fill + t.streaming() + t.drain)
    }

    /// Bytes the array reads from and writes to the scratchpad for one
    /// instruction. Each operand is read once per block of the other
    /// dimension that reuses it: with an operand block `Bm × Bn`, the `m × k`
    /// operand once per `Bn` columns and the `k × n` one once per `Bm` rows;
    /// without one, per array tile (weight-stationary holds the `k × n`
    /// operand and streams the other once per `C` columns; input-stationary
    /// the reverse; output-stationary streams both, once per `C` columns and
    /// once per `R` rows). Partial sums held in the scratchpad
    /// (`partials_in_scratchpad`) are written once per reduction pass and read
    /// back when accumulating.
    /// Bytes of the `m × k` operand and of the `k × n` one that an
    /// instruction streams (see [`Self::scratchpad_bytes`]).
    pub fn operand_bytes(&self, m: u32, n: u32, k: u32, dtype: Dtype) -> (u64, u64) {
        let (m, n, k) = (m as u64, n as u64, k as u64);
        let (rows, cols, b) = (self.rows as u64, self.cols as u64, dtype.bytes());
        let (per_m, per_n) = match (self.operand_block, self.dataflow) {
            (Some((bm, bn)), _) => (bm as u64, bn as u64),
            (None, Dataflow::WeightStationary) => (m.max(1), cols),
            (None, Dataflow::InputStationary) => (cols, n.max(1)),
            (None, Dataflow::OutputStationary) => (rows, cols),
        };
        (m * k * b * n.div_ceil(per_n.max(1)), k * n * b * m.div_ceil(per_m.max(1)))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn scratchpad_bytes(
        &self,
        m: u32,
        n: u32,
        k: u32,
        dtype: Dtype,
        acc: Dtype,
        accumulate: bool,
        partials_in_scratchpad: bool,
    ) -> u64 {
        let (a, b) = self.operand_bytes(m, n, k, dtype);
        let operands = a + b;
        let (m, n, k) = (m as u64, n as u64, k as u64);
        let (rows, r, ab) = (self.rows as u64, self.rate(dtype).max(1) as u64, acc.bytes());
        if !partials_in_scratchpad {
            return operands;
        }
        let passes = match self.dataflow {
            Dataflow::OutputStationary => 1,
            _ => k.div_ceil(rows * r),
        };
        operands + m * n * ab * (passes + u64::from(accumulate))
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
    /// One element per lane per cycle (transcendental ops costing more per
    /// element) in one pass; results `pipeline_cycles` after the last element enters.
    pub fn timing(&self, op: VectorOp, elems: u64) -> StageTiming {
        let per_element = if op.is_transcendental() { self.transcendental_cycles as u64 } else { 1 };
        StageTiming {
            tiles: 1,
            period: (elems * per_element).div_ceil(self.lanes.max(1) as u64),
            fill: 0,
            drain: self.pipeline_cycles as u64,
        }
    }

    /// Cycles of one instruction on an idle engine.
    pub fn cycles(&self, op: VectorOp, elems: u64) -> u64 {
        let t = self.timing(op, elems);
        t.fill + t.streaming() + t.drain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(dataflow: Dataflow) -> MatrixShape {
        MatrixShape { engines: 1, rows: 64, cols: 64, dataflow, macs_per_pe: [2, 2, 1, 1, 0, 0], operand_block: None }
    }

    #[test]
    fn weight_stationary_decode_is_weight_load_bound() {
        // m = 2 rows stream in 2 cycles, but each tile needs 64 cycles of weights.
        let t = shape(Dataflow::WeightStationary).timing(2, 7168, 7168, Dtype::Fp8).unwrap();
        assert_eq!(t, StageTiming { tiles: 56 * 112, period: 64, fill: 64, drain: 126 });
    }

    #[test]
    fn large_gemms_approach_the_peak_rate_in_every_dataflow() {
        for dataflow in [Dataflow::WeightStationary, Dataflow::InputStationary, Dataflow::OutputStationary] {
            let cycles = shape(dataflow).cycles(4096, 4096, 4096, Dtype::Fp8).unwrap();
            let ideal = 4096u64.pow(3) / (64 * 64 * 2);
            assert!(cycles >= ideal && (cycles as f64) < ideal as f64 * 1.01, "{dataflow:?}: {cycles} vs {ideal}");
        }
    }

    #[test]
    fn an_operand_block_reads_each_operand_once_per_block() {
        let mut s = shape(Dataflow::OutputStationary);
        // Per 64 x 64 array tile: the inputs once per 64 columns, the weights once per 64 rows, partials twice.
        let tiled = 128 * 128 * 4 + 128 * 256 * 2 + 128 * 256 * 4 * 2;
        assert_eq!(s.scratchpad_bytes(128, 256, 128, Dtype::Fp8, Dtype::Fp32, true, true), tiled);
        // A 64 x 256 operand block (Hopper's warpgroup MMA), accumulators in registers.
        s.operand_block = Some((64, 256));
        assert_eq!(s.scratchpad_bytes(128, 256, 128, Dtype::Fp8, Dtype::Fp32, true, false), 128 * 128 + 128 * 256 * 2);
    }

    #[test]
    fn engines_share_tiles_and_dtypes_can_be_unsupported() {
        let mut s = shape(Dataflow::OutputStationary);
        s.engines = 4;
        assert_eq!(s.timing(128, 128, 64, Dtype::Bf16).unwrap().tiles, 1);
        assert_eq!(s.timing(1, 1, 1, Dtype::Fp32), None);
    }
}
