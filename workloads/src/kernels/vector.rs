//! Element-wise kernels dealt to cores in equal runs.

use super::{CorePrograms, CoreTarget, Step, Tensors, emit};
use isa::{BufId, Dtype, Instr, Program, VectorOp};

/// An element-wise kernel over `elems` elements: load `inputs` operands,
/// apply `ops` in turn (each `(op, 1)` over every element, `(op, 0)` once per
/// row), store the result. Elements are dealt to cores in equal runs.
pub(super) fn vector(
    elems: u64,
    dtype: Dtype,
    inputs: u32,
    ops: &[(VectorOp, u32)],
    rows: u32,
    t: &CoreTarget,
    at: Tensors,
) -> CorePrograms {
    if elems == 0 {
        return Vec::new();
    }
    let b = dtype.bytes();
    // No core gets fewer than 64 elements per lane: smaller runs cost more in launch than they save.
    let min_run = t.vector_lanes as u64 * 64;
    let cores = (elems.div_ceil(min_run)).clamp(1, t.cores as u64);
    let per_core = elems.div_ceil(cores);
    let chunk = per_core.min(t.scratchpad / 4 / (b * (inputs as u64 + 1)).max(1)).max(1);
    let rows_per_elem = rows as f64 / elems as f64;
    let mut out = Vec::new();
    for core in 0..cores {
        let first = core * per_core;
        let last = ((core + 1) * per_core).min(elems);
        if first >= last {
            continue;
        }
        let mut p = Program::new();
        let bufs: Vec<[BufId; 2]> = (0..inputs.max(1))
            .map(|j| [p.named_buffer(format!("in{j}a"), chunk * b), p.named_buffer(format!("in{j}b"), chunk * b)])
            .collect();
        let mut i = 0;
        let mut steps = Vec::new();
        for e0 in (first..last).step_by(chunk as usize) {
            let n = chunk.min(last - e0);
            i ^= 1;
            let mut step = Step::default();
            for (j, pair) in bufs.iter().enumerate() {
                step.loads.push(Instr::load(pair[i], at.activations + (j as u64) * (1 << 32) + e0 * b, n * b));
            }
            for &(op, per_element) in ops {
                let count = if per_element == 1 { n } else { ((n as f64 * rows_per_elem).ceil() as u64).max(1) };
                let src2 = (bufs.len() > 1).then(|| bufs[1][i]);
                let count = match op {
                    VectorOp::TopK { k } => count.max(k as u64),
                    _ => count,
                };
                step.compute.push(Instr::Vector {
                    op,
                    dst: bufs[0][i],
                    src: bufs[0][i],
                    src2,
                    elems: count.min(n),
                    dtype,
                });
            }
            step.stores.push(Instr::store(bufs[0][i], at.activations + (1 << 36) + e0 * b, n * b));
            steps.push(step);
        }
        emit(&mut p, steps);
        out.push((core as u32, p));
    }
    out
}
