//! Microbenchmarks an architect holds against other simulators: one GEMM,
//! hand-written programs, the memory system, the mesh and the collectives,
//! each on the smallest part of a system that shows it.

mod attention;
mod collective;
mod cpu;
mod driver;
mod gemm;
mod memory;
mod noc;
mod programs;

pub use attention::{AttentionBench, AttentionRun, AttentionShape, attention};
pub use collective::{CollectiveBench, CollectiveRun, LinkUse, collective};
pub use cpu::{CpuBench, CpuRun, cpu};
pub use gemm::{GemmBench, GemmPlanFigures, GemmRun, gemm};
pub use memory::{MemoryBench, MemoryRun, Pattern, PatternRequests, RequestSource, memory};
pub use noc::{LatencyCycles, NocBench, NocPattern, NocPoint, NocRun, noc};
pub use programs::{EngineFigures, ProgramError, ProgramRun, core_target, run_programs};
