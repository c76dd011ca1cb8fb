//! One GEMM, lowered as in a model run, measured on one chiplet.

use super::programs::{ProgramRun, core_target, run_programs};
use crate::graph::Kernel;
use crate::kernels::{self, GemmPlan, KernelCompiler, Tensors};
use isa::Dtype;
use models::spec::SystemSpec;
use serde::Serialize;

/// A GEMM to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmBench {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub dtype: Dtype,
    /// Cores of the chiplet to use; all when `None`.
    pub cores: Option<u32>,
    pub compute_only: bool,
}

/// What a GEMM did on a chiplet.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GemmRun {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub dtype: Dtype,
    pub plan: GemmPlanFigures,
    /// Bytes a GEMM must move to and from device memory at the least: each
    /// input, weight and output element once.
    pub compulsory_bytes: u64,
    /// Device-memory bytes moved over the compulsory bytes.
    pub memory_traffic_ratio: f64,
    pub achieved_flops: f64,
    pub peak_flops: f64,
    /// Achieved over peak FLOP/s of the cores used.
    pub utilization: f64,
    #[serde(flatten)]
    pub run: ProgramRun,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GemmPlanFigures {
    pub grid: (u32, u32),
    pub block_m: u64,
    pub block_n: u64,
    pub tile_k: u64,
    /// The operands staged once in the shared SRAM: "nothing", "inputs", "weights" or "inputs and weights".
    pub staged: String,
}

/// Lower a GEMM as a model run would, run it on chiplet 0, and measure it.
pub fn gemm(spec: &SystemSpec, bench: GemmBench) -> Result<GemmRun, String> {
    let target = core_target(spec, bench.cores)?;
    if target.matrix.rate(bench.dtype) == 0 {
        return Err(format!("the matrix engine of `{}` does not support {}", spec.name, bench.dtype));
    }
    if bench.m == 0 || bench.n == 0 || bench.k == 0 {
        return Err("m, n and k must be at least 1".to_string());
    }
    let kernel =
        Kernel::Gemm { rows: vec![bench.m], n: bench.n, k: bench.k, weight_dtype: bench.dtype, dtype: bench.dtype };
    super::programs::within_tiles(&kernel, "m x n x k")?;
    let programs = KernelCompiler::new(target.clone())
        .lower(&kernel, Tensors { weights: 0, activations: 1 << 40 })
        .map_err(|e| format!("{e:?}"))?;
    let plan: GemmPlan =
        kernels::gemm_plan(bench.m as u64, bench.n as u64, bench.k as u64, bench.dtype, bench.dtype, &target);
    let run = run_programs(spec, &programs, bench.compute_only)?;
    let card = spec.node.card.as_ref().ok_or("no card")?;
    let peak = card.chiplet.peak_flops(bench.dtype) * target.cores as f64 / card.chiplet.cores as f64;
    let flops = 2.0 * bench.m as f64 * bench.n as f64 * bench.k as f64;
    let achieved = if run.seconds > 0.0 { flops / run.seconds } else { 0.0 };
    let (m, n, k, b) = (bench.m as u64, bench.n as u64, bench.k as u64, bench.dtype.bytes());
    let compulsory = (m * k + k * n + m * n) * b;
    Ok(GemmRun {
        m: bench.m,
        n: bench.n,
        k: bench.k,
        dtype: bench.dtype,
        plan: GemmPlanFigures {
            grid: plan.grid,
            block_m: plan.block_m,
            block_n: plan.block_n,
            tile_k: plan.tile_k,
            staged: plan.staging.to_string(),
        },
        compulsory_bytes: compulsory,
        memory_traffic_ratio: (run.memory_read_bytes + run.memory_write_bytes) as f64 / compulsory as f64,
        achieved_flops: achieved,
        peak_flops: peak,
        utilization: achieved / peak,
        run,
    })
}
