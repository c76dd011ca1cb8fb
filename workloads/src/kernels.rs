//! Lowering of one kernel to programs for the cores of a chiplet.
//!
//! Every kernel loads its inputs from device memory and stores its outputs
//! back (kernels are not fused); tensors are stored pre-tiled, so each tile is
//! one contiguous load. Tiles are sized so a double-buffered working set fits
//! in the scratchpad, and alternate between two buffers so that the DMA
//! engine loads the next tile while the matrix or vector engine works on this
//! one. [`describe`] says what was chosen.

use crate::graph::Kernel;
use isa::{BufId, Dtype, Instr, Program, VectorOp};
use models::npu::MatrixShape;
use models::spec::ChipletSpec;
use std::collections::HashMap;
use std::fmt::Write;

/// What lowering needs to know of a chiplet.
#[derive(Clone, Debug, PartialEq)]
pub struct CoreTarget {
    pub cores: u32,
    pub scratchpad: u64,
    pub matrix: MatrixShape,
    pub vector_lanes: u32,
    /// Each core's share of the chiplet's memory bandwidth, in bytes per core cycle.
    pub memory_bytes_per_cycle: f64,
}

impl CoreTarget {
    /// The target of `cores` cores (all when `None`) of a chiplet.
    pub fn for_chiplet(chiplet: &ChipletSpec, cores: Option<u32>) -> CoreTarget {
        let cores = cores.unwrap_or(chiplet.cores).max(1);
        CoreTarget {
            cores,
            scratchpad: chiplet.core.scratchpad.size.get(),
            matrix: MatrixShape::from_spec(&chiplet.core.matrix),
            vector_lanes: chiplet.core.vector.lanes,
            memory_bytes_per_cycle: chiplet.memory.peak_bandwidth().bytes_per_s()
                / chiplet.clock.hz() as f64
                / chiplet.cores as f64,
        }
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
    tiles: TileMemo,
}

impl KernelCompiler {
    pub fn new(target: CoreTarget) -> KernelCompiler {
        KernelCompiler { target, tiles: HashMap::new() }
    }

    pub fn target(&self) -> &CoreTarget {
        &self.target
    }

    /// Programs for the cores of the target that have work in `kernel`.
    pub fn lower(&mut self, kernel: &Kernel, at: Tensors) -> Result<CorePrograms, KernelError> {
        lower(kernel, &self.target, at, &mut self.tiles)
    }
}

/// A tiling: output block rows and columns, and the reduction tile.
type Tiling = (u64, u64, u64);

/// Tilings chosen, by core share `(m, n, k)`, weight dtype and activation bytes.
type TileMemo = HashMap<(u64, u64, u64, Dtype, u64), Tiling>;

fn lower(kernel: &Kernel, t: &CoreTarget, at: Tensors, memo: &mut TileMemo) -> Result<CorePrograms, KernelError> {
    match kernel {
        Kernel::Gemm { rows, n, k, weight_dtype, dtype } => {
            check(*weight_dtype, t)?;
            Ok(gemm(rows, *n, *k, *weight_dtype, *dtype, t, at, memo))
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
    let mut steps = steps.into_iter().peekable();
    if let Some(first) = steps.peek_mut() {
        for load in first.loads.drain(..) {
            program.push(load);
        }
    }
    while let Some(step) = steps.next() {
        if let Some(next) = steps.peek_mut() {
            for load in next.loads.drain(..) {
                program.push(load);
            }
        }
        for instr in step.compute.into_iter().chain(step.stores) {
            program.push(instr);
        }
    }
}

/// How a GEMM is spread over cores and tiled within each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmPlan {
    /// Cores along the rows and along the columns of the output.
    pub grid: (u32, u32),
    /// Output block a core computes at a time, and the reduction tile.
    pub block_m: u64,
    pub block_n: u64,
    pub tile_k: u64,
    /// Device-memory bytes one group's GEMM loads and stores, all cores together.
    pub traffic: u64,
}

/// Bytes of scratchpad a tiling needs: two input and two weight tiles, two
/// FP32 accumulator blocks (so a finished block stores while the next computes).
fn footprint(bm: u64, bn: u64, kt: u64, wb: u64, ab: u64) -> u64 {
    2 * bm * kt * ab + 2 * kt * bn * wb + 2 * bm * bn * 4
}

/// Device-memory traffic of one core's `mc × nc` share of a GEMM tiled
/// `bm × bn × kt`: the input is loaded once per column block unless a whole
/// row of it stays resident (`kt = k`), the weights once per row block.
#[allow(clippy::too_many_arguments)]
fn traffic(mc: u64, nc: u64, k: u64, bm: u64, bn: u64, kt: u64, wb: u64, ab: u64) -> u64 {
    let x = if kt == k { mc * k * ab } else { mc * k * ab * nc.div_ceil(bn) };
    x + k * nc * wb * mc.div_ceil(bm) + mc * nc * ab
}

/// Core cycles one instruction costs beyond its streaming when it cannot
/// overlap its neighbours: memory latency and the array's fill and drain.
const INSTRUCTION_LATENCY_CYCLES: u64 = 128;

/// Estimated core cycles of an `mc × nc × k` share tiled `bm × bn × kt`.
/// Memory is busy from the start, so a memory-bound share takes its loads
/// plus the last tile's compute; a compute-bound one its compute plus the
/// first tile's load. Every instruction adds its fill, drain and latency.
#[allow(clippy::too_many_arguments)]
fn estimate(mc: u64, nc: u64, k: u64, bm: u64, bn: u64, kt: u64, wd: Dtype, ab: u64, t: &CoreTarget) -> u64 {
    let wb = wd.bytes();
    let per_cycle = t.memory_bytes_per_cycle.max(1e-3);
    let load = (traffic(mc, nc, k, bm, bn, kt, wb, ab) as f64 / per_cycle) as u64;
    let Some(tile) = t.matrix.timing(bm as u32, bn as u32, kt as u32, wd) else { return u64::MAX };
    let instructions = mc.div_ceil(bm) * nc.div_ceil(bn) * k.div_ceil(kt);
    let compute = instructions * tile.streaming();
    let first_load = ((bm * kt * ab + kt * bn * wb) as f64 / per_cycle) as u64;
    let overhead = instructions * (tile.fill + tile.drain + INSTRUCTION_LATENCY_CYCLES);
    (load + tile.streaming()).max(first_load + compute) + overhead
}

/// Candidate sizes along a dimension: the whole of it, and multiples of `step` below it.
fn candidates(whole: u64, step: u64, limit: u64) -> Vec<u64> {
    let mut out = vec![whole];
    let mut v = step;
    while v < whole && v <= limit {
        out.push(v);
        v += step;
    }
    out
}

/// The tiling of an `mc × nc × k` share that fits the scratchpad and is
/// estimated fastest; fewer instructions break ties.
fn tile(mc: u64, nc: u64, k: u64, wd: Dtype, ab: u64, t: &CoreTarget) -> Tiling {
    let (rows, cols, rate, wb) = (t.rows(), t.cols(), t.matrix.rate(wd).max(1) as u64, wd.bytes());
    let mut best: Option<((u64, u64), Tiling)> = None;
    for &kt in &candidates(k, rows * rate * 2, 8192) {
        for &bm in &candidates(mc, 64, 2048) {
            for &bn in &candidates(nc, cols, 4096) {
                if footprint(bm, bn, kt, wb, ab) > t.scratchpad {
                    continue;
                }
                let cost =
                    (estimate(mc, nc, k, bm, bn, kt, wd, ab, t), mc.div_ceil(bm) * nc.div_ceil(bn) * k.div_ceil(kt));
                if best.is_none_or(|(c, _)| cost < c) {
                    best = Some((cost, (bm, bn, kt)));
                }
            }
        }
    }
    best.map_or((mc.min(16), cols.min(nc), (rows * rate).min(k)), |(_, b)| b)
}

/// Split `total` into `parts` runs, each a multiple of `align` but the last.
fn split(total: u64, parts: u64, align: u64) -> Vec<(u64, u64)> {
    let chunk = total.div_ceil(parts).div_ceil(align) * align;
    (0..parts).map(|i| (i * chunk, ((i + 1) * chunk).min(total))).filter(|(a, b)| a < b).collect()
}

/// The grid and tiling for one `m × n × k` group: the grid whose busiest
/// core is estimated fastest (see [`estimate`]); less total traffic breaks ties.
pub fn gemm_plan(m: u64, n: u64, k: u64, wd: Dtype, ad: Dtype, t: &CoreTarget) -> GemmPlan {
    let (wb, ab) = (wd.bytes(), ad.bytes());
    let mut best: Option<(u64, GemmPlan)> = None;
    for pm in 1..=t.cores as u64 {
        let pn = t.cores as u64 / pm;
        let rows = split(m, pm, 1);
        let cols = split(n, pn, t.cols());
        let (mc, nc) = (rows[0].1 - rows[0].0, cols[0].1 - cols[0].0);
        let (bm, bn, kt) = tile(mc, nc, k, wd, ab, t);
        let total: u64 = rows
            .iter()
            .flat_map(|r| cols.iter().map(move |c| (r.1 - r.0, c.1 - c.0)))
            .map(|(mc, nc)| traffic(mc, nc, k, bm, bn, kt, wb, ab))
            .sum();
        let busiest = estimate(mc, nc, k, bm, bn, kt, wd, ab, t);
        let plan = GemmPlan {
            grid: (rows.len() as u32, cols.len() as u32),
            block_m: bm,
            block_n: bn,
            tile_k: kt,
            traffic: total,
        };
        if best.is_none_or(|(b, p)| (busiest, total) < (b, p.traffic)) {
            best = Some((busiest, plan));
        }
    }
    best.map(|(_, p)| p).expect("at least one core")
}

/// A rectangle of one group's output that one core computes.
#[derive(Clone, Copy, Debug)]
struct Cell {
    group: u64,
    /// Rows of the group (its `m`).
    m: u64,
    rows: (u64, u64),
    cols: (u64, u64),
}

/// One weight matrix per entry of `rows`. With few rows (decode), the
/// columns of all active groups are dealt to cores in equal runs of whole
/// array widths, so grouped GEMMs of narrow groups still spread evenly. With
/// many rows, each group's output is spread over a grid of all the cores
/// ([`gemm_plan`]). Each core computes its cells block by block, streaming
/// the reduction in tiles.
#[allow(clippy::too_many_arguments)]
fn gemm(
    rows: &[u32],
    n: u32,
    k: u32,
    wd: Dtype,
    ad: Dtype,
    t: &CoreTarget,
    at: Tensors,
    memo: &mut TileMemo,
) -> CorePrograms {
    let (n64, k64, wb, ab) = (n as u64, k as u64, wd.bytes(), ad.bytes());
    let active: Vec<(u64, u64)> =
        rows.iter().enumerate().filter(|(_, m)| **m > 0).map(|(g, &m)| (g as u64, m as u64)).collect();
    let mut cells: Vec<Vec<Cell>> = vec![Vec::new(); t.cores as usize];
    let max_m = active.iter().map(|a| a.1).max().unwrap_or(0);
    if max_m <= 2 * t.rows() {
        let align = t.cols();
        let per_core = (active.len() as u64 * n64).div_ceil(t.cores as u64).div_ceil(align) * align;
        let (mut core, mut room) = (0usize, per_core);
        for &(group, m) in &active {
            let mut n0 = 0;
            while n0 < n64 {
                let take = room.min(n64 - n0);
                cells[core].push(Cell { group, m, rows: (0, m), cols: (n0, n0 + take) });
                n0 += take;
                room -= take;
                if room == 0 && core + 1 < cells.len() {
                    core += 1;
                    room = per_core;
                } else if room == 0 {
                    room = u64::MAX;
                }
            }
        }
    } else {
        for &(group, m) in &active {
            let plan = gemm_plan(m, n64, k64, wd, ad, t);
            let col_runs = split(n64, plan.grid.1 as u64, t.cols());
            for (i, &r) in split(m, plan.grid.0 as u64, 1).iter().enumerate() {
                for (j, &c) in col_runs.iter().enumerate() {
                    cells[i * col_runs.len() + j].push(Cell { group, m, rows: r, cols: c });
                }
            }
        }
    }
    let mut out = Vec::new();
    for (core, cells) in cells.into_iter().enumerate() {
        let Some(mc) = cells.iter().map(|c| c.rows.1 - c.rows.0).max() else { continue };
        let nc = cells.iter().map(|c| c.cols.1 - c.cols.0).max().unwrap_or(1);
        let (bm, bn, kt) = *memo.entry((mc, nc, k64, wd, ab)).or_insert_with(|| tile(mc, nc, k64, wd, ab, t));
        let mut p = Program::new();
        let x = [p.named_buffer("x0", bm * kt * ab), p.named_buffer("x1", bm * kt * ab)];
        let w = [p.named_buffer("w0", kt * bn * wb), p.named_buffer("w1", kt * bn * wb)];
        let y = [p.named_buffer("y0", bm * bn * 4), p.named_buffer("y1", bm * bn * 4)];
        let (mut xi, mut wi, mut yi) = (0, 0, 0);
        let mut steps = Vec::new();
        for cell in cells {
            let weights = at.weights + cell.group * k64 * n64 * wb;
            let inputs = at.activations + cell.group * cell.m * k64 * ab;
            let outputs = at.activations + (1 << 36) + cell.group * cell.m * n64 * ab;
            let ((m0, m1), (n0, n1)) = (cell.rows, cell.cols);
            for r0 in (m0..m1).step_by(bm as usize) {
                let mc = bm.min(m1 - r0);
                let mut x_resident = false;
                for c0 in (n0..n1).step_by(bn as usize) {
                    let nc = bn.min(n1 - c0);
                    yi ^= 1;
                    for k0 in (0..k64).step_by(kt as usize) {
                        let kc = kt.min(k64 - k0);
                        let mut step = Step::default();
                        if !(x_resident && kt == k64) {
                            xi ^= 1;
                            step.loads.push(Instr::load(x[xi], inputs + (r0 * k64 + k0 * mc) * ab, mc * kc * ab));
                            x_resident = true;
                        }
                        wi ^= 1;
                        step.loads.push(Instr::load(w[wi], weights + (c0 * k64 + k0 * nc) * wb, kc * nc * wb));
                        step.compute.push(Instr::MatMul {
                            c: y[yi],
                            a: x[xi],
                            b: w[wi],
                            m: mc as u32,
                            n: nc as u32,
                            k: kc as u32,
                            dtype: wd,
                            acc: Dtype::Fp32,
                            accumulate: k0 > 0,
                        });
                        if k0 + kc == k64 {
                            step.stores.push(Instr::store(y[yi], outputs + r0 * n64 * ab + c0 * mc * ab, mc * nc * ab));
                        }
                        steps.push(step);
                    }
                }
            }
        }
        emit(&mut p, steps);
        out.push((core as u32, p));
    }
    out
}

/// Attention in flash style: per unit of work (a request's KV head, split by
/// query tiles in prefill or by context chunks in decode), load the queries,
/// then per tile of the cache load keys and values, compute scores, the
/// softmax pieces, and accumulate the output.
fn attention(kernel: &Kernel, t: &CoreTarget, at: Tensors) -> Result<CorePrograms, KernelError> {
    let &Kernel::Attention {
        requests,
        queries,
        context,
        heads,
        kv_heads,
        qk_dim,
        v_dim,
        cache_bytes_per_token,
        new_cache_bytes,
        dtype,
    } = kernel
    else {
        unreachable!("attention() is called with attention kernels");
    };
    check(dtype, t)?;
    let ab = dtype.bytes();
    let kv = kv_heads.max(1) as u64;
    let group = (heads as u64).div_ceil(kv);
    let per_token = cache_bytes_per_token.div_ceil(kv);
    let (q, c) = (queries as u64, context as u64);
    let s = t.scratchpad;
    // Query tile: rows of (query, head) pairs that share a KV head.
    let q_t = q.min((256 / group).max(1));
    let q_tiles = q.div_ceil(q_t);
    let base_units = requests as u64 * kv * q_tiles;
    // In decode, split the context so every core has work.
    let chunks = if q == 1 { (t.cores as u64).div_ceil(base_units).max(1).min(c) } else { 1 };
    let chunk = c.div_ceil(chunks);
    let rows_max = q_t * group;
    let l_t = (s / 4 / per_token.max(1)).min(s / 8 / (rows_max * 4)).min(chunk).max(1);
    let units = base_units * chunks;
    let per_core = units.div_ceil(t.cores as u64);
    let mut out = Vec::new();
    for core in 0..t.cores as u64 {
        let first = core * per_core;
        let last = ((core + 1) * per_core).min(units);
        if first >= last {
            continue;
        }
        let mut p = Program::new();
        let qb = p.named_buffer("q", rows_max * qk_dim as u64 * ab);
        let kvb = [p.named_buffer("kv0", l_t * per_token), p.named_buffer("kv1", l_t * per_token)];
        let sc = [p.named_buffer("s0", rows_max * l_t * 4), p.named_buffer("s1", rows_max * l_t * 4)];
        let ob = p.named_buffer("o", rows_max * v_dim as u64 * 4);
        let (mut ki, mut si) = (0, 0);
        let mut steps: Vec<Step> = Vec::new();
        for unit in first..last {
            let part = unit % chunks;
            let rest = unit / chunks;
            let qt = rest % q_tiles;
            let head = rest / q_tiles; // request * kv + KV head
            let q0 = qt * q_t;
            let qc = q_t.min(q - q0);
            let rows = qc * group;
            // Keys visible to the last query of the tile (causal), within this context chunk.
            let visible = (c - q + q0 + qc).min(c);
            let (lo, hi) = (part * chunk, ((part + 1) * chunk).min(visible));
            let mut step = Step::default();
            step.loads.push(Instr::load(
                qb,
                at.activations + unit * rows_max * qk_dim as u64 * ab,
                rows * qk_dim as u64 * ab,
            ));
            let mut first_tile = true;
            for l0 in (lo..hi).step_by(l_t as usize) {
                let lc = l_t.min(hi - l0);
                ki ^= 1;
                si ^= 1;
                step.loads.push(Instr::load(kvb[ki], at.weights + (head * c + l0) * per_token, lc * per_token));
                step.compute.push(Instr::MatMul {
                    c: sc[si],
                    a: qb,
                    b: kvb[ki],
                    m: rows as u32,
                    n: lc as u32,
                    k: qk_dim,
                    dtype,
                    acc: Dtype::Fp32,
                    accumulate: false,
                });
                for op in [VectorOp::Max, VectorOp::Exp, VectorOp::Sum] {
                    step.compute.push(Instr::Vector {
                        op,
                        dst: sc[si],
                        src: sc[si],
                        src2: None,
                        elems: rows * lc,
                        dtype: Dtype::Fp32,
                    });
                }
                step.compute.push(Instr::MatMul {
                    c: ob,
                    a: sc[si],
                    b: kvb[ki],
                    m: rows as u32,
                    n: v_dim,
                    k: lc as u32,
                    dtype,
                    acc: Dtype::Fp32,
                    accumulate: !first_tile,
                });
                first_tile = false;
                steps.push(std::mem::take(&mut step));
            }
            step.stores.push(Instr::store(
                ob,
                at.activations + (1 << 36) + unit * rows_max * v_dim as u64 * ab,
                rows * v_dim as u64 * ab,
            ));
            if part == 0 && qt == 0 && head % kv == 0 && new_cache_bytes > 0 {
                let bytes = new_cache_bytes.min(rows_max * qk_dim as u64 * ab);
                step.stores.push(Instr::store(qb, at.weights + (head * c + c - q) * per_token, bytes));
            }
            match steps.last_mut() {
                Some(last) if !first_tile => last.stores.append(&mut step.stores),
                _ => steps.push(step),
            }
        }
        emit(&mut p, steps);
        out.push((core as u32, p));
    }
    Ok(out)
}

/// An element-wise kernel over `elems` elements: load `inputs` operands,
/// apply `ops` in turn (each `(op, 1)` over every element, `(op, 0)` once per
/// row), store the result. Elements are dealt to cores in equal runs.
fn vector(
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
                    "; largest m={m}: cores {} x {} (rows x columns), blocks {} x {}, k tile {}, {} of scratchpad, {:.2} MB of device memory traffic",
                    p.grid.0,
                    p.grid.1,
                    p.block_m,
                    p.block_n,
                    p.tile_k,
                    footprint(p.block_m, p.block_n, p.tile_k, weight_dtype.bytes(), dtype.bytes()),
                    p.traffic as f64 / 1e6
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
        ] {
            let kernel = Kernel::Gemm { rows: rows.clone(), n, k, weight_dtype: Dtype::Fp8, dtype: Dtype::Bf16 };
            let programs = KernelCompiler::new(t.clone()).lower(&kernel, at).unwrap();
            let (macs, loaded) = totals(&programs);
            assert_eq!(macs, kernel.macs(), "{rows:?} {n} {k}");
            assert!(loaded >= kernel.weight_bytes());
            for (_, p) in &programs {
                p.check(t.scratchpad).unwrap();
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
