//! Lowering of one kernel to programs for the cores of a chiplet.
//!
//! Every kernel loads its inputs from device memory and stores its outputs
//! back (kernels are not fused); tensors are stored pre-tiled, so each tile is
//! one contiguous load. Tiles are sized so a double-buffered working set fits
//! in the scratchpad, and alternate between two buffers so that the DMA
//! engine loads the next tile while the matrix or vector engine works on this
//! one. A GEMM operand that several cores read is staged once in the
//! chiplet's shared SRAM ([`gemm`]). [`describe`] says what was chosen.

mod attention;
mod gemm;
mod vector;

use crate::graph::Kernel;
use attention::attention;
pub use gemm::{GemmPlan, Staging, gemm_plan};
use isa::{Dtype, Instr, Program, VectorOp};
use models::npu::MatrixShape;
use models::spec::ChipletSpec;
use std::fmt::Write;
use vector::vector;

/// What lowering needs to know of a chiplet.
#[derive(Clone, Debug, PartialEq)]
pub struct CoreTarget {
    pub cores: u32,
    pub scratchpad: u64,
    /// Accumulator storage beside the scratchpad (0: accumulators live in it).
    pub accumulators: u64,
    /// Bytes the scratchpad's ports move per core cycle.
    pub port_bytes_per_cycle: u64,
    pub matrix: MatrixShape,
    pub vector_lanes: u32,
    /// Each core's share of the chiplet's memory bandwidth, in bytes per core cycle.
    pub memory_bytes_per_cycle: f64,
    /// Bytes of the chiplet's shared SRAM.
    pub shared_sram: u64,
    /// Each core's share of the shared SRAM's bandwidth, in bytes per core cycle.
    pub shared_bytes_per_cycle: f64,
    /// Cores one load can feed (`core.dma.multicast`).
    pub multicast: u32,
    /// Core cycles from a load's issue to its first bytes from the shared SRAM, unloaded.
    pub load_latency_cycles: u64,
}

impl CoreTarget {
    /// The target of `cores` cores (all when `None`) of a chiplet.
    pub fn for_chiplet(chiplet: &ChipletSpec, cores: Option<u32>) -> CoreTarget {
        let cores = cores.unwrap_or(chiplet.cores).max(1);
        let per_core_cycle = |bytes_per_s: f64| bytes_per_s / chiplet.clock.hz() as f64 / chiplet.cores as f64;
        let scratchpad = &chiplet.core.scratchpad;
        CoreTarget {
            cores,
            scratchpad: scratchpad.size.get(),
            accumulators: chiplet.core.matrix.accumulators.map_or(0, |a| a.get()),
            port_bytes_per_cycle: scratchpad.banks as u64 * scratchpad.bank_width.get(),
            matrix: MatrixShape::from_spec(&chiplet.core.matrix),
            vector_lanes: chiplet.core.vector.lanes,
            memory_bytes_per_cycle: per_core_cycle(chiplet.memory.peak_bandwidth().bytes_per_s()),
            shared_sram: chiplet.shared_sram.size.get(),
            shared_bytes_per_cycle: per_core_cycle(chiplet.shared_sram.bandwidth.bytes_per_s()),
            multicast: chiplet.core.dma.multicast,
            load_latency_cycles: (chiplet.shared_sram.latency.time().as_secs_f64() * chiplet.clock.hz() as f64).ceil()
                as u64,
        }
    }

    /// Bytes a program's buffers may span: the scratchpad, then the accumulators.
    pub fn local_bytes(&self) -> u64 {
        self.scratchpad + self.accumulators
    }

    pub fn rows(&self) -> u64 {
        self.matrix.rows as u64
    }
    fn cols(&self) -> u64 {
        self.matrix.cols as u64
    }
}

/// Why a kernel cannot run on the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelError {
    UnsupportedDtype(Dtype),
}

/// Base addresses of a kernel's tensors in device memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tensors {
    pub weights: u64,
    pub activations: u64,
}

/// Programs, one per core that has work, by core index.
pub type CorePrograms = Vec<(u32, Program)>;

/// Lowers kernels for one target, remembering the tilings it has chosen
/// (the search is the costly part, and shapes recur across cores and layers).
#[derive(Debug, Clone)]
pub struct KernelCompiler {
    target: CoreTarget,
    tiles: gemm::TileMemo,
}

impl KernelCompiler {
    pub fn new(target: CoreTarget) -> KernelCompiler {
        KernelCompiler { target, tiles: gemm::TileMemo::default() }
    }

    pub fn target(&self) -> &CoreTarget {
        &self.target
    }

    /// Programs for the cores of the target that have work in `kernel`.
    pub fn lower(&mut self, kernel: &Kernel, at: Tensors) -> Result<CorePrograms, KernelError> {
        lower(kernel, &self.target, at, &mut self.tiles)
    }
}

fn lower(kernel: &Kernel, t: &CoreTarget, at: Tensors, memo: &mut gemm::TileMemo) -> Result<CorePrograms, KernelError> {
    match kernel {
        Kernel::Gemm { rows, n, k, weight_dtype, dtype } => {
            check(*weight_dtype, t)?;
            Ok(gemm::gemm(rows, *n, *k, *weight_dtype, *dtype, t, at, memo))
        }
        Kernel::Attention { .. } => attention(kernel, t, at),
        &Kernel::RmsNorm { rows, cols, dtype } => Ok(vector(
            rows as u64 * cols as u64,
            dtype,
            1,
            &[(VectorOp::Mul, 1), (VectorOp::Sum, 1), (VectorOp::Rsqrt, 0), (VectorOp::Mul, 1), (VectorOp::Mul, 1)],
            rows,
            t,
            at,
        )),
        &Kernel::Rotary { rows, cols, dtype } => Ok(vector(
            rows as u64 * cols as u64,
            dtype,
            1,
            &[(VectorOp::Mul, 1), (VectorOp::Mul, 1), (VectorOp::Add, 1)],
            rows,
            t,
            at,
        )),
        &Kernel::SwiGlu { rows, cols, dtype } => {
            Ok(vector(rows as u64 * cols as u64, dtype, 2, &[(VectorOp::Silu, 1), (VectorOp::Mul, 1)], rows, t, at))
        }
        &Kernel::Add { elems, inputs, dtype } => {
            let adds: Vec<(VectorOp, u32)> = (1..inputs.max(2)).map(|_| (VectorOp::Add, 1)).collect();
            Ok(vector(elems, dtype, inputs.max(1), &adds, 0, t, at))
        }
        &Kernel::Softmax { rows, cols, dtype } => Ok(vector(
            rows as u64 * cols as u64,
            dtype,
            1,
            &[(VectorOp::Max, 1), (VectorOp::Exp, 1), (VectorOp::Sum, 1), (VectorOp::Mul, 1)],
            rows,
            t,
            at,
        )),
        &Kernel::TopK { rows, cols, k, dtype } => Ok(vector(
            rows as u64 * cols as u64,
            dtype,
            1,
            &[(VectorOp::Sigmoid, 1), (VectorOp::TopK { k }, 1)],
            rows,
            t,
            at,
        )),
        &Kernel::Sample { rows, cols, top_k, dtype } => Ok(vector(
            rows as u64 * cols as u64,
            dtype,
            1,
            &[(VectorOp::Max, 1), (VectorOp::Exp, 1), (VectorOp::Sum, 1), (VectorOp::TopK { k: top_k }, 1)],
            rows,
            t,
            at,
        )),
        &Kernel::Embedding { rows, cols, dtype } => Ok(vector(rows as u64 * cols as u64, dtype, 1, &[], 0, t, at)),
    }
}

fn check(dtype: Dtype, t: &CoreTarget) -> Result<u32, KernelError> {
    match t.matrix.rate(dtype) {
        0 => Err(KernelError::UnsupportedDtype(dtype)),
        r => Ok(r),
    }
}

/// One step of a software-pipelined loop: the loads it needs, its compute,
/// and the stores that follow.
#[derive(Debug, Default)]
struct Step {
    loads: Vec<Instr>,
    compute: Vec<Instr>,
    stores: Vec<Instr>,
}

/// Emit `steps` software-pipelined: each step's loads go ahead of the
/// previous step's compute and stores, so that the in-order DMA queue fetches
/// the next tile while this one computes, and a store waiting on a result
/// never holds up the next tile's loads.
fn emit(program: &mut Program, steps: Vec<Step>) {
    emit_ahead(program, steps, 1);
}

/// [`emit`] with each step's loads `ahead` steps ahead of its compute (a
/// pipeline of `ahead + 1` buffers of each operand).
fn emit_ahead(program: &mut Program, mut steps: Vec<Step>, ahead: usize) {
    let ahead = ahead.max(1);
    for step in steps.iter_mut().take(ahead) {
        program.instrs.append(&mut step.loads);
    }
    for i in 0..steps.len() {
        if let Some(next) = steps.get_mut(i + ahead) {
            program.instrs.append(&mut next.loads);
        }
        let step = &mut steps[i];
        program.instrs.append(&mut step.compute);
        program.instrs.append(&mut step.stores);
    }
}

/// A one-paragraph account of how a kernel is lowered on `t`.
pub fn describe(kernel: &Kernel, t: &CoreTarget) -> String {
    let mut s = String::new();
    match kernel {
        Kernel::Gemm { rows, n, k, weight_dtype, dtype } => {
            let active: Vec<&u32> = rows.iter().filter(|m| **m > 0).collect();
            let _ = write!(
                s,
                "GEMM of {} weight matrices ({} active), n={n} k={k}, weights {weight_dtype}, activations {dtype}",
                rows.len(),
                active.len()
            );
            if let Some(&&m) = active.iter().max() {
                let p = gemm_plan(m as u64, *n as u64, *k as u64, *weight_dtype, *dtype, t);
                let _ = write!(
                    s,
                    "; largest m={m}: cores {} x {} (rows x columns), blocks {} x {}, k tile {}, staged in shared SRAM: {}, {:.2} MB of device memory traffic, {:.2} MB read from shared SRAM",
                    p.grid.0,
                    p.grid.1,
                    p.block_m,
                    p.block_n,
                    p.tile_k,
                    p.staging,
                    p.traffic as f64 / 1e6,
                    p.shared_traffic as f64 / 1e6
                );
            }
        }
        Kernel::Attention { requests, queries, context, heads, kv_heads, .. } => {
            let _ = write!(
                s,
                "attention: {requests} requests x {queries} queries x {context} keys, {heads} heads over {kv_heads} KV heads, flash-style tiles of the KV cache"
            );
        }
        other => {
            let _ = write!(s, "element-wise {other:?}, split over up to {} cores", t.cores);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> CoreTarget {
        let spec = models::presets::load_preset("rebel-quad").unwrap();
        CoreTarget::for_chiplet(&spec.node.card.unwrap().chiplet, None)
    }

    fn totals(programs: &CorePrograms) -> (u64, u64) {
        let mut macs = 0;
        let mut loaded = 0;
        for (_, p) in programs {
            for i in &p.instrs {
                macs += i.macs();
                if let Instr::Load { shape, .. } = i {
                    loaded += shape.bytes();
                }
            }
        }
        (macs, loaded)
    }

    fn weight_loads(programs: &CorePrograms) -> u64 {
        programs
            .iter()
            .flat_map(|(_, p)| &p.instrs)
            .filter_map(|i| match i {
                Instr::Load { src: isa::MemRef::Hbm(addr), shape, .. } if *addr < 1 << 40 => Some(shape.bytes()),
                _ => None,
            })
            .sum()
    }

    #[test]
    fn gemm_programs_do_all_the_work_and_fit() {
        let t = target();
        let at = Tensors { weights: 0, activations: 1 << 40 };
        for (rows, n, k) in [
            (vec![2], 1536, 7168),
            (vec![64], 7168, 8192),
            (vec![3, 0, 5, 1], 4096, 7168),
            (vec![2048], 4096, 7168),
            (vec![1; 64], 512, 128),
            (vec![4096], 4096, 4096),
            (vec![4096], 7168, 16384),
        ] {
            let kernel = Kernel::Gemm { rows: rows.clone(), n, k, weight_dtype: Dtype::Fp8, dtype: Dtype::Bf16 };
            let programs = KernelCompiler::new(t.clone()).lower(&kernel, at).unwrap();
            let (macs, loaded) = totals(&programs);
            assert_eq!(macs, kernel.macs(), "{rows:?} {n} {k}");
            assert!(loaded >= kernel.weight_bytes());
            for (_, p) in &programs {
                p.check(t.local_bytes()).unwrap();
            }
        }
    }

    #[test]
    fn decode_weights_are_read_exactly_once_by_all_cores() {
        let kernel = Kernel::Gemm { rows: vec![2], n: 12288, k: 1536, weight_dtype: Dtype::Fp8, dtype: Dtype::Bf16 };
        let programs =
            KernelCompiler::new(target()).lower(&kernel, Tensors { weights: 0, activations: 1 << 40 }).unwrap();
        assert_eq!(weight_loads(&programs), 12288 * 1536);
        assert_eq!(programs.len(), 16);
    }

    #[test]
    fn grouped_gemms_give_groups_cores_of_their_own_where_that_reads_less() {
        // DeepSeek-V3's decode on an H100 at 256 requests: 8 experts of 297
        // rows each; their 235 MB of weights do not fit the 50 MB L2. Spread
        // each over all the cores, every expert read its weights once per row
        // of cores (8x in all). On 16 or 17 cores of its own, twice: once per
        // row block, as 297 rows of BF16 inputs do not fit a core's
        // scratchpad at once (DeepGEMM's blocks of one expert, running
        // together, share the second read through the L2, which npusim
        // models only for staged operands).
        let spec = models::presets::load_preset("h100-node").unwrap();
        let t = CoreTarget::for_chiplet(&spec.node.card.unwrap().chiplet, None);
        let kernel =
            Kernel::Gemm { rows: vec![297; 8], n: 4096, k: 7168, weight_dtype: Dtype::Fp8, dtype: Dtype::Bf16 };
        let programs =
            KernelCompiler::new(t.clone()).lower(&kernel, Tensors { weights: 0, activations: 1 << 40 }).unwrap();
        let (macs, _) = totals(&programs);
        assert_eq!(macs, kernel.macs());
        let ratio = weight_loads(&programs) as f64 / kernel.weight_bytes() as f64;
        assert!(ratio <= 2.05, "{ratio:.2}x the weights");
        assert!(programs.len() as u32 >= t.cores * 7 / 8, "{} of {} cores", programs.len(), t.cores);
        // MLA's absorbed query projection: 128 heads' small matrices over 256
        // rows of FP8 inputs. Spread thin over all the cores, each head re-read
        // its weights per row of cores (about 10x); a core or so each, once.
        let kernel = Kernel::Gemm { rows: vec![256; 128], n: 512, k: 128, weight_dtype: Dtype::Fp8, dtype: Dtype::Fp8 };
        let programs = KernelCompiler::new(t).lower(&kernel, Tensors { weights: 0, activations: 1 << 40 }).unwrap();
        assert_eq!(totals(&programs).0, kernel.macs());
        let ratio = weight_loads(&programs) as f64 / kernel.weight_bytes() as f64;
        assert!(ratio <= 1.05, "absorbed projection: {ratio:.2}x the weights");
    }

    #[test]
    fn streamed_gemms_move_what_their_plan_says() {
        // 4096 x 7168 x 16384: 64 + 117 MB of operands do not fit the 64 MB shared SRAM together.
        let t = target();
        let p = gemm_plan(4096, 7168, 16384, Dtype::Fp8, Dtype::Fp8, &t);
        assert!(p.staging.streamed, "{p:?}");
        let kernel = Kernel::Gemm { rows: vec![4096], n: 7168, k: 16384, weight_dtype: Dtype::Fp8, dtype: Dtype::Fp8 };
        let programs = KernelCompiler::new(t).lower(&kernel, Tensors { weights: 0, activations: 1 << 40 }).unwrap();
        let device: u64 = programs
            .iter()
            .flat_map(|(_, p)| &p.instrs)
            .map(|i| match i {
                Instr::Load { src: isa::MemRef::Hbm(_), shape, .. }
                | Instr::Store { dst: isa::MemRef::Hbm(_), shape, .. } => shape.bytes(),
                _ => 0,
            })
            .sum();
        assert_eq!(device, p.traffic);
        let barriers: Vec<usize> =
            programs.iter().map(|(_, p)| p.instrs.iter().filter(|i| matches!(i, Instr::Barrier)).count()).collect();
        assert!(barriers.iter().all(|&b| b == barriers[0]), "every core passes the same barriers");
    }

    #[test]
    fn paired_cores_share_streamed_tiles() {
        // On Hopper (TMA multicast) the paired cores of a streamed GEMM each
        // load half of every shared tile from the shared SRAM and send it to
        // the other: what they load plus what they send is what unpaired
        // cores load, and the pairs load less.
        let spec = models::presets::load_preset("h100-node").unwrap();
        let paired = CoreTarget::for_chiplet(&spec.node.card.unwrap().chiplet, None);
        let alone = CoreTarget { multicast: 1, ..paired.clone() };
        let kernel = Kernel::Gemm { rows: vec![4096], n: 7168, k: 16384, weight_dtype: Dtype::Fp8, dtype: Dtype::Fp8 };
        let at = Tensors { weights: 0, activations: 1 << 40 };
        let moved = |t: &CoreTarget| {
            assert!(gemm_plan(4096, 7168, 16384, Dtype::Fp8, Dtype::Fp8, t).staging.streamed);
            let programs = KernelCompiler::new(t.clone()).lower(&kernel, at).unwrap();
            for (_, p) in &programs {
                p.check(t.local_bytes()).unwrap();
            }
            let instrs = programs.iter().flat_map(|(_, p)| &p.instrs);
            let shared: u64 = instrs
                .clone()
                .map(|i| match i {
                    Instr::Load { src: isa::MemRef::Shared(_), shape, .. } => shape.bytes(),
                    _ => 0,
                })
                .sum();
            let sent: u64 = instrs.map(|i| if let Instr::Send { bytes, .. } = i { *bytes } else { 0 }).sum();
            (shared, sent)
        };
        let ((shared, sent), (alone_shared, alone_sent)) = (moved(&paired), moved(&alone));
        assert_eq!(alone_sent, 0);
        assert!(sent > 0 && shared < alone_shared, "{shared} {sent} {alone_shared}");
        assert_eq!(shared + sent, alone_shared);
    }

    #[test]
    fn large_gemms_reuse_tiles() {
        // 4096^3 in FP8 moves 48 MB at the least (each operand once); the plan stays within 6x of that.
        let p = gemm_plan(4096, 4096, 4096, Dtype::Fp8, Dtype::Fp8, &target());
        assert!(p.traffic < 6 * 3 * 4096 * 4096, "{p:?}");
        assert_eq!(p.grid.0 * p.grid.1, 16);
    }

    #[test]
    fn attention_reads_the_cache_once_and_computes_every_pair() {
        let kernel = Kernel::Attention {
            requests: 2,
            queries: 1,
            context: 2049,
            heads: 64,
            kv_heads: 1,
            qk_dim: 576,
            v_dim: 512,
            cache_bytes_per_token: 1152,
            new_cache_bytes: 1152,
            dtype: Dtype::Bf16,
        };
        let programs =
            KernelCompiler::new(target()).lower(&kernel, Tensors { weights: 0, activations: 1 << 40 }).unwrap();
        let (macs, _) = totals(&programs);
        assert_eq!(macs, kernel.macs());
        assert_eq!(weight_loads(&programs), 2 * 2049 * 1152);
    }

    #[test]
    fn prefill_attention_is_causal() {
        let kernel = Kernel::Attention {
            requests: 1,
            queries: 512,
            context: 512,
            heads: 8,
            kv_heads: 8,
            qk_dim: 192,
            v_dim: 128,
            cache_bytes_per_token: 8 * 320 * 2,
            new_cache_bytes: 0,
            dtype: Dtype::Bf16,
        };
        let programs =
            KernelCompiler::new(target()).lower(&kernel, Tensors { weights: 0, activations: 1 << 40 }).unwrap();
        let (macs, _) = totals(&programs);
        // Tiles cover whole key tiles up to the causal limit: at least the exact pairs, at most all of them.
        assert!(macs >= kernel.macs());
        assert!(macs <= 512 * 512 * 8 * 320);
    }

    #[test]
    fn unsupported_dtypes_are_refused() {
        let mut t = target();
        t.matrix.macs_per_pe = [0, 4, 1, 1, 0, 0];
        let kernel = Kernel::Gemm { rows: vec![1], n: 64, k: 64, weight_dtype: Dtype::Fp8, dtype: Dtype::Bf16 };
        assert_eq!(
            KernelCompiler::new(t).lower(&kernel, Tensors { weights: 0, activations: 0 }),
            Err(KernelError::UnsupportedDtype(Dtype::Fp8))
        );
    }
}
