//! GEMM lowering. The output is dealt to cores (a grid of row and column
//! runs, or, with few rows, the columns of every group in equal runs); each
//! core computes its blocks one after another over the whole reduction, its
//! tiles double-buffered.
//!
//! An operand that several cores read (the inputs, shared by the cores of a
//! grid row or by every core when the columns are dealt; the weights, shared
//! by the cores of a grid column) is staged once in the chiplet's shared
//! SRAM when it fits: in a prologue each core copies its share of it from
//! device memory through its scratchpad, a barrier follows, and the cores
//! then load their tiles of it from the shared SRAM. Device memory sees a
//! staged operand once. The grid, what is staged and the tiles are chosen by
//! an estimate of the busiest core's time with each level's bandwidth and
//! capacity ([`estimate`]).

mod pair;
mod streamed;

use super::{CorePrograms, CoreTarget, Step, Tensors, emit, emit_ahead};
use isa::{BufId, Dtype, Instr, MemRef, Program, Shape};
use pair::{Exchange, Pair};
use std::collections::HashMap;
use std::fmt;

/// Which operands of a GEMM are staged in the shared SRAM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Staging {
    pub inputs: bool,
    pub weights: bool,
    /// Both operands pass through the shared SRAM a slice at a time, for
    /// operands too large to stage whole ([`streamed`]).
    pub streamed: bool,
}

impl Staging {
    const NONE: Staging = Staging { inputs: false, weights: false, streamed: false };
    const BOTH: Staging = Staging { inputs: true, weights: true, streamed: false };

    fn any(self) -> bool {
        self.inputs || self.weights
    }
}

impl fmt::Display for Staging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.streamed {
            return f.write_str("inputs and weights, streamed in K phases");
        }
        f.write_str(match (self.inputs, self.weights) {
            (false, false) => "nothing",
            (true, false) => "inputs",
            (false, true) => "weights",
            (true, true) => "inputs and weights",
        })
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
    pub staging: Staging,
    /// Reduction elements per phase when streamed, else 0.
    pub phase_k: u64,
    /// Device-memory bytes one group's GEMM loads and stores, all cores
    /// together, the staging included.
    pub traffic: u64,
    /// Bytes the cores load from the shared SRAM.
    pub shared_traffic: u64,
}

/// A tiling: output block rows and columns, and the reduction tile.
type Tiling = (u64, u64, u64);

/// Tilings chosen, by core share `(m, n, k)`, weight dtype, activation bytes and staging.
pub(super) type TileMemo = HashMap<(u64, u64, u64, Dtype, u64, Staging), Tiling>;

/// Core cycles one instruction costs beyond its streaming when it cannot
/// overlap its neighbours: memory latency and the array's fill and drain.
const INSTRUCTION_LATENCY_CYCLES: u64 = 128;

/// Core cycles a staging prologue costs beyond moving its bytes: a load's and
/// a store's latency and the barrier's round trip.
const STAGING_LATENCY_CYCLES: u64 = 4 * INSTRUCTION_LATENCY_CYCLES;

/// The share of the scratchpad a staging core keeps for its two staging buffers.
const STAGING_SHARE: u64 = 8;

/// Bytes one core's `mc × nc` share of a GEMM tiled `bm × bn × kt` loads and
/// stores: the inputs once per column block unless a whole row of them stays
/// resident (`kt = k`), the weights once per row block, the outputs once.
#[derive(Clone, Copy, Debug)]
struct Traffic {
    inputs: u64,
    weights: u64,
    outputs: u64,
}

impl Traffic {
    fn of(mc: u64, nc: u64, k: u64, (bm, bn, kt): Tiling, wb: u64, ab: u64) -> Traffic {
        let inputs = if kt == k { mc * k * ab } else { mc * k * ab * nc.div_ceil(bn) };
        Traffic { inputs, weights: k * nc * wb * mc.div_ceil(bm), outputs: mc * nc * ab }
    }

    /// Bytes to and from device memory.
    fn memory(&self, s: Staging) -> u64 {
        self.outputs + u64::from(!s.inputs) * self.inputs + u64::from(!s.weights) * self.weights
    }

    /// Bytes loaded from the shared SRAM.
    fn shared(&self, s: Staging) -> u64 {
        u64::from(s.inputs) * self.inputs + u64::from(s.weights) * self.weights
    }
}

/// Whether two FP32 accumulator blocks of `bm × bn` fit the core's accumulators.
fn accumulators_fit(bm: u64, bn: u64, t: &CoreTarget) -> bool {
    2 * bm * bn * 4 <= t.accumulators
}

/// Scratchpad bytes a tiling needs: two input and two weight tiles, and two
/// FP32 accumulator blocks (a finished block stores while the next
/// computes) unless the accumulators hold them.
fn footprint(bm: u64, bn: u64, kt: u64, wb: u64, ab: u64, t: &CoreTarget) -> u64 {
    let tiles = 2 * bm * kt * ab + 2 * kt * bn * wb;
    if accumulators_fit(bm, bn, t) { tiles } else { tiles + 2 * bm * bn * 4 }
}

/// Most buffers of each operand a core pipelines (DeepGEMM's Hopper
/// kernels run four to eight stages; four hide a loaded L2's latency here).
const MAX_STAGES: u64 = 4;

/// Buffers of each operand a tiling pipelines in `budget` bytes: as many as
/// fit, two to [`MAX_STAGES`]; more let a load issue further ahead of the
/// tile that needs it.
fn stages(bm: u64, bn: u64, kt: u64, (wb, ab): (u64, u64), t: &CoreTarget, budget: u64) -> u64 {
    let per_stage = bm * kt * ab + kt * bn * wb;
    let fixed = footprint(bm, bn, kt, wb, ab, t) - 2 * per_stage;
    (budget.saturating_sub(fixed) / per_stage.max(1)).clamp(2, MAX_STAGES)
}

/// Scratchpad bytes left for tiles when a core also stages.
fn tile_budget(t: &CoreTarget, staging: Staging) -> u64 {
    if staging.any() { t.scratchpad - t.scratchpad / STAGING_SHARE } else { t.scratchpad }
}

/// Estimated core cycles of an `mc × nc × k` share tiled `bm × bn × kt`.
/// Device memory and the shared SRAM are busy from the start, so a
/// memory-bound share takes its loads plus the last tile's compute; a
/// compute-bound one its compute plus the first tile's load. An
/// instruction takes the longer of its streaming and its traffic through
/// the scratchpad's ports, plus its fill, drain and latency.
#[allow(clippy::too_many_arguments)]
fn estimate(mc: u64, nc: u64, k: u64, tiling: Tiling, wd: Dtype, ab: u64, s: Staging, t: &CoreTarget) -> u64 {
    let traffic = Traffic::of(mc, nc, k, tiling, wd.bytes(), ab);
    let stages = stages(tiling.0, tiling.1, tiling.2, (wd.bytes(), ab), t, tile_budget(t, s));
    estimate_moving(mc, nc, k, tiling, wd, ab, (traffic.memory(s), traffic.shared(s)), stages, t)
}

/// [`estimate`] of a share that moves `memory` bytes to and from device
/// memory and `shared` bytes to and from the shared SRAM, pipelining
/// `stages` buffers of each operand: what of a tile's load latency the
/// `stages - 1` tiles in flight do not cover stalls every tile.
#[allow(clippy::too_many_arguments)]
fn estimate_moving(
    mc: u64,
    nc: u64,
    k: u64,
    tiling: Tiling,
    wd: Dtype,
    ab: u64,
    (memory, shared): (u64, u64),
    stages: u64,
    t: &CoreTarget,
) -> u64 {
    let (bm, bn, kt) = tiling;
    let wb = wd.bytes();
    let memory_rate = t.memory_bytes_per_cycle.max(1e-3);
    let load = (memory as f64 / memory_rate).max(shared as f64 / t.shared_bytes_per_cycle.max(1e-3)) as u64;
    let Some(tile) = t.matrix.timing(bm as u32, bn as u32, kt as u32, wd) else { return u64::MAX };
    let port_bytes =
        t.matrix.scratchpad_bytes(bm as u32, bn as u32, kt as u32, wd, Dtype::Fp32, true, !accumulators_fit(bm, bn, t));
    let per_instruction = tile.streaming().max(port_bytes.div_ceil(t.port_bytes_per_cycle.max(1)));
    let instructions = mc.div_ceil(bm) * nc.div_ceil(bn) * k.div_ceil(kt);
    let compute = instructions * per_instruction;
    let first_load = ((bm * kt * ab + kt * bn * wb) as f64 / memory_rate) as u64;
    let overhead = instructions * (tile.fill + tile.drain + INSTRUCTION_LATENCY_CYCLES);
    // A tile is ready a latency (and its own transfer through the core's
    // port) after its load issues; the tiles in flight meanwhile each take
    // the longer of their compute and their share of the bandwidth.
    let tile_bytes = bm * kt * ab + kt * bn * wb;
    let latency = t.load_latency_cycles + tile_bytes.div_ceil(t.port_bytes_per_cycle.max(1));
    let step = per_instruction.max(load / instructions.max(1));
    let exposed = instructions * latency.saturating_sub((stages - 1) * step);
    (load + latency + per_instruction).max(first_load + compute + exposed) + overhead
}

/// Core cycles of a prologue staging `bytes` over `cores` cores: each core
/// loads its share from device memory and stores it in the shared SRAM.
fn prologue(bytes: u64, cores: u64, t: &CoreTarget) -> u64 {
    if bytes == 0 {
        return 0;
    }
    let per_core = bytes.div_ceil(cores.max(1)) as f64;
    let rate = t.memory_bytes_per_cycle.min(t.shared_bytes_per_cycle).max(1e-3);
    (per_core / rate) as u64 + STAGING_LATENCY_CYCLES
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

/// The tiling of an `mc × nc × k` share that fits the scratchpad (and the
/// accumulators) and is estimated fastest; fewer instructions break ties.
fn tile(mc: u64, nc: u64, k: u64, wd: Dtype, ab: u64, s: Staging, t: &CoreTarget) -> Tiling {
    let (rows, cols, rate, wb) = (t.rows(), t.matrix.cols as u64, t.matrix.rate(wd).max(1) as u64, wd.bytes());
    let budget = tile_budget(t, s);
    let mut best: Option<((u64, u64), Tiling)> = None;
    for &kt in &candidates(k, rows * rate * 2, 8192) {
        for &bm in &candidates(mc, 64, 2048) {
            for &bn in &candidates(nc, cols, 4096) {
                if footprint(bm, bn, kt, wb, ab, t) > budget {
                    continue;
                }
                let instructions = mc.div_ceil(bm) * nc.div_ceil(bn) * k.div_ceil(kt);
                let cost = (estimate(mc, nc, k, (bm, bn, kt), wd, ab, s, t), instructions);
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

/// What to stage, and its bytes: of the operands read more than once (bytes
/// and reads each, all cores together), every one that fits in the shared SRAM, or the one
/// whose re-reads cost more when only one fits; nothing when the re-reads
/// it saves would take device memory less time than staging's latency.
fn choose_staging(inputs: Option<(u64, u64)>, weights: Option<(u64, u64)>, t: &CoreTarget) -> (Staging, u64) {
    let none = (Staging::NONE, 0);
    if t.scratchpad / STAGING_SHARE / 2 < 4096 {
        return none;
    }
    let shared = |o: Option<(u64, u64)>| o.filter(|&(bytes, readers)| readers > 1 && bytes <= t.shared_sram);
    let (x, w) = (shared(inputs), shared(weights));
    let saved = |o: Option<(u64, u64)>| o.map_or(0, |(bytes, readers)| bytes * (readers - 1));
    let bytes = |o: Option<(u64, u64)>| o.map_or(0, |(b, _)| b);
    let (choice, staged, saved) = match (x, w) {
        (None, None) => return none,
        _ if bytes(x) + bytes(w) <= t.shared_sram => (
            Staging { inputs: x.is_some(), weights: w.is_some(), streamed: false },
            bytes(x) + bytes(w),
            saved(x) + saved(w),
        ),
        _ if saved(x) >= saved(w) => (Staging { inputs: true, ..Staging::NONE }, bytes(x), saved(x)),
        _ => (Staging { weights: true, ..Staging::NONE }, bytes(w), saved(w)),
    };
    let saved_cycles = saved as f64 / (t.memory_bytes_per_cycle * t.cores as f64).max(1e-3);
    if saved_cycles < STAGING_LATENCY_CYCLES as f64 { none } else { (choice, staged) }
}

/// The grid, staging and tiling for one `m × n × k` group: the grid whose
/// busiest core is estimated fastest (see [`estimate`]), its staging
/// prologue included, staging what [`choose_staging`] stages; less
/// device-memory traffic breaks ties. Grids use at least seven eighths of
/// the cores.
pub fn gemm_plan(m: u64, n: u64, k: u64, wd: Dtype, ad: Dtype, t: &CoreTarget) -> GemmPlan {
    plan(m, n, k, wd, ad, t, Reuse::Stream, &mut TileMemo::default())
}

/// How far a plan may go to reuse operands on chip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reuse {
    /// Load every tile from device memory.
    None,
    /// Stage whole operands in the shared SRAM where they fit.
    Stage,
    /// Also stream operands too large to stage through it ([`streamed`]).
    Stream,
}

#[allow(clippy::too_many_arguments)]
fn plan(m: u64, n: u64, k: u64, wd: Dtype, ad: Dtype, t: &CoreTarget, reuse: Reuse, memo: &mut TileMemo) -> GemmPlan {
    let (wb, ab) = (wd.bytes(), ad.bytes());
    let cores = t.cores as u64;
    let mut best: Option<(u64, GemmPlan)> = None;
    for pm in 1..=cores {
        let pn = cores / pm;
        if pm * pn * 8 < cores * 7 && pm != cores {
            continue;
        }
        let rows = split(m, pm, 1);
        let cols = split(n, pn, t.cols());
        let (mc, nc) = (rows[0].1 - rows[0].0, cols[0].1 - cols[0].0);
        let shares: Vec<(u64, u64)> =
            rows.iter().flat_map(|r| cols.iter().map(move |c| (r.1 - r.0, c.1 - c.0))).collect();
        let mut tiling_for =
            |s: Staging| *memo.entry((mc, nc, k, wd, ab, s)).or_insert_with(|| tile(mc, nc, k, wd, ab, s, t));
        // What to stage follows from how often each operand's bytes are read
        // under a tiling, and the tiling from what is staged: start from none, twice over.
        let (mut s, mut staged) = (Staging::NONE, 0);
        for _ in 0..if reuse == Reuse::None { 0 } else { 2 } {
            let tiling = tiling_for(s);
            let (x, w) = shares
                .iter()
                .map(|&(mc, nc)| Traffic::of(mc, nc, k, tiling, wb, ab))
                .fold((0, 0), |(x, w), tr| (x + tr.inputs, w + tr.weights));
            let (xb, wbytes) = (m * k * ab, k * n * wb);
            let (more, _) = choose_staging(Some((xb, x.div_ceil(xb))), Some((wbytes, w.div_ceil(wbytes))), t);
            let more = Staging { inputs: more.inputs || s.inputs, weights: more.weights || s.weights, streamed: false };
            let both = u64::from(more.inputs) * xb + u64::from(more.weights) * wbytes;
            if more == s || both > t.shared_sram {
                break;
            }
            (s, staged) = (more, both);
        }
        let tiling = tiling_for(s);
        let (traffic, shared) = shares
            .iter()
            .map(|&(mc, nc)| Traffic::of(mc, nc, k, tiling, wb, ab))
            .fold((staged, 0), |(d, sh), tr| (d + tr.memory(s), sh + tr.shared(s)));
        let busiest = estimate(mc, nc, k, tiling, wd, ab, s, t) + prologue(staged, cores, t);
        let grid = (rows.len() as u32, cols.len() as u32);
        let mut options = vec![(
            busiest,
            GemmPlan {
                grid,
                block_m: tiling.0,
                block_n: tiling.1,
                tile_k: tiling.2,
                staging: s,
                phase_k: 0,
                traffic,
                shared_traffic: shared,
            },
        )];
        // Streaming pays where an operand is still re-read from device memory.
        let compulsory = m * k * ab + k * n * wb + m * n * ab;
        if reuse == Reuse::Stream && traffic * 8 > compulsory * 9 {
            let tiling = tiling_for(Staging::BOTH);
            if let Some(stream) = streamed::Stream::of(&rows, &cols, k, tiling, (wb, ab), t) {
                let copied = stream.staged_bytes.div_ceil(cores);
                let outputs = mc * nc * ab;
                let (shared_op, partners) = streamed::grid_pairs(&rows, &cols, (tiling.0, tiling.1), (wb, ab), t);
                let reads = stream.core_reads(partners[0].map(|_| shared_op));
                let moving = (outputs + copied, reads + copied);
                let stages = stages(tiling.0, tiling.1, tiling.2, (wb, ab), t, tile_budget(t, Staging::BOTH));
                let busiest = estimate_moving(mc, nc, k, tiling, wd, ab, moving, stages, t)
                    + stream.syncs() * STAGING_LATENCY_CYCLES
                    + prologue(stream.first_slice, cores, t);
                let staging = Staging { streamed: true, ..Staging::BOTH };
                let traffic = stream.staged_bytes + m * n * ab;
                let shared_traffic = shares
                    .iter()
                    .map(|&(mc, nc)| Traffic::of(mc, nc, k, tiling, wb, ab))
                    .map(|tr| tr.shared(Staging::BOTH))
                    .sum();
                let (block_m, block_n, tile_k) = tiling;
                options.push((
                    busiest,
                    GemmPlan {
                        grid,
                        block_m,
                        block_n,
                        tile_k,
                        staging,
                        phase_k: stream.phase_k,
                        traffic,
                        shared_traffic,
                    },
                ));
            }
        }
        for (busiest, plan) in options {
            if best.is_none_or(|(b, p)| (busiest, plan.traffic) < (b, p.traffic)) {
                best = Some((busiest, plan));
            }
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

/// Where each group's staged operands lie in the shared SRAM, and the
/// copies (device-memory address, shared address, bytes) that stage them.
#[derive(Debug, Default)]
struct Layout {
    inputs: HashMap<u64, u64>,
    weights: HashMap<u64, u64>,
    copies: Vec<(u64, u64, u64)>,
    bytes: u64,
}

impl Layout {
    fn stage(&mut self, from: u64, bytes: u64) -> u64 {
        let at = self.bytes;
        self.copies.push((from, at, bytes));
        self.bytes += bytes;
        at
    }

    /// Core `core`'s share of the copies, of `cores`, in pieces of at most `chunk` bytes.
    fn share(&self, core: u64, cores: u64, chunk: u64) -> Vec<(u64, u64, u64)> {
        let per_core = self.bytes.div_ceil(cores).div_ceil(256) * 256;
        let (lo, hi) = (core * per_core, ((core + 1) * per_core).min(self.bytes));
        let mut out = Vec::new();
        for &(from, at, bytes) in &self.copies {
            let (a, b) = (at.max(lo), (at + bytes).min(hi));
            let mut x = a;
            while x < b {
                let len = chunk.min(b - x);
                out.push((from + x - at, x, len));
                x += len;
            }
        }
        out
    }
}

/// Where one tile of an operand comes from: device memory, or its staged copy.
fn source(staged: Option<&u64>, hbm: u64, offset: u64) -> MemRef {
    match staged {
        Some(&at) => MemRef::Shared(at + offset),
        None => MemRef::Hbm(hbm + offset),
    }
}

/// One weight matrix per entry of `rows`. With few rows (decode), the
/// columns of all active groups are dealt to cores in equal runs of whole
/// array widths, so grouped GEMMs of narrow groups still spread evenly, and
/// the inputs, which every core reads, are staged when that is estimated
/// faster. With many rows, each group's output is spread over a grid of all
/// the cores ([`gemm_plan`]), staging what its plan stages as long as all
/// groups' staged operands fit together. Each core computes its cells block
/// by block, streaming the reduction in tiles.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
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
    let mut staging: HashMap<u64, Staging> = HashMap::new();
    let max_m = active.iter().map(|a| a.1).max().unwrap_or(0);
    if max_m <= 2 * t.rows() {
        deal_columns(&active, n64, t, &mut cells);
        let busy = cells.iter().filter(|c| !c.is_empty()).count() as u64;
        let inputs: u64 = active.iter().map(|&(_, m)| m * k64 * ab).sum();
        let (s, _) = choose_staging(Some((inputs, busy)), None, t);
        staging.extend(active.iter().map(|&(g, _)| (g, s)));
    } else {
        let reuse = if active.len() == 1 { Reuse::Stream } else { Reuse::Stage };
        let mut plans: Vec<(u64, u64, GemmPlan)> =
            active.iter().map(|&(g, m)| (g, m, plan(m, n64, k64, wd, ad, t, reuse, memo))).collect();
        if let [(_, m, p)] = plans[..]
            && p.staging.streamed
        {
            let rows = split(m, p.grid.0 as u64, 1);
            let cols = split(n64, p.grid.1 as u64, t.cols());
            let tiling = (p.block_m, p.block_n, p.tile_k);
            let stream = streamed::Stream::of(&rows, &cols, k64, tiling, (wb, ab), t).expect("the plan streams");
            return streamed::programs(&stream, &rows, &cols, (n64, k64), tiling, (wd, ab), t, at);
        }
        let staged: u64 = plans
            .iter()
            .map(|(_, m, p)| u64::from(p.staging.inputs) * m * k64 * ab + u64::from(p.staging.weights) * k64 * n64 * wb)
            .sum();
        // Groups may instead share the cores out, each planned on cores of
        // its own and its share of the shared SRAM: where their staged
        // operands do not fit together (each then still reads its weights
        // about once, as a grouped GEMM's thread blocks of one group, running
        // together, hit their weights in the L2), and wherever that moves
        // fewer bytes of device memory (many small groups, each spread thin
        // over all the cores, re-read their operands per row of cores).
        if staged > t.shared_sram {
            plans = active.iter().map(|&(g, m)| (g, m, plan(m, n64, k64, wd, ad, t, Reuse::None, memo))).collect();
        }
        let mut first_core = vec![0; active.len()];
        if let Some(shares) = core_shares(&active, t.cores) {
            let mut apart = Vec::with_capacity(active.len());
            for (&(g, m), &cores) in active.iter().zip(&shares) {
                let sub = CoreTarget { cores, shared_sram: t.shared_sram * cores as u64 / t.cores as u64, ..t.clone() };
                apart.push((g, m, plan(m, n64, k64, wd, ad, &sub, Reuse::Stage, memo)));
            }
            let traffic = |plans: &[(u64, u64, GemmPlan)]| plans.iter().map(|p| p.2.traffic).sum::<u64>();
            if traffic(&apart) < traffic(&plans) {
                plans = apart;
                first_core = shares.iter().scan(0, |at, &c| Some(std::mem::replace(at, *at + c as usize))).collect();
            }
        }
        for (i, (group, m, plan)) in plans.into_iter().enumerate() {
            staging.insert(group, plan.staging);
            let col_runs = split(n64, plan.grid.1 as u64, t.cols());
            for (r_i, &r) in split(m, plan.grid.0 as u64, 1).iter().enumerate() {
                for (j, &c) in col_runs.iter().enumerate() {
                    cells[first_core[i] + r_i * col_runs.len() + j].push(Cell { group, m, rows: r, cols: c });
                }
            }
        }
    }
    let mut layout = Layout::default();
    for &(group, m) in &active {
        let s = staging.get(&group).copied().unwrap_or_default();
        if s.inputs {
            let at = layout.stage(at.activations + group * m * k64 * ab, m * k64 * ab);
            layout.inputs.insert(group, at);
        }
        if s.weights {
            let at = layout.stage(at.weights + group * k64 * n64 * wb, k64 * n64 * wb);
            layout.weights.insert(group, at);
        }
    }
    let stagers = cells.iter().filter(|c| !c.is_empty()).count() as u64;
    let partners =
        if pair::multicasts(t, max_m) && max_m > 2 * t.rows() { pairs(&cells) } else { vec![None; cells.len()] };
    let mut out = Vec::new();
    for (core, cells) in cells.into_iter().enumerate() {
        let Some(mc) = cells.iter().map(|c| c.rows.1 - c.rows.0).max() else { continue };
        let nc = cells.iter().map(|c| c.cols.1 - c.cols.0).max().unwrap_or(1);
        let s = staging.get(&cells[0].group).copied().unwrap_or_default();
        let s = Staging { inputs: s.inputs || layout.bytes > 0, ..s };
        let tiling = *memo.entry((mc, nc, k64, wd, ab, s)).or_insert_with(|| tile(mc, nc, k64, wd, ab, s, t));
        let mut p = Program::new();
        if layout.bytes > 0 {
            let chunk = t.scratchpad / STAGING_SHARE / 2;
            let bufs = [p.named_buffer("stage0", chunk), p.named_buffer("stage1", chunk)];
            let mut prologue = Vec::new();
            for (i, (from, to, bytes)) in layout.share(core as u64, stagers, chunk).into_iter().enumerate() {
                let b = bufs[i % 2];
                let shape = Shape::contiguous(bytes);
                prologue.push(Step {
                    loads: vec![Instr::Load { dst: b, src: MemRef::Hbm(from), shape }],
                    compute: Vec::new(),
                    stores: vec![Instr::Store { src: b, dst: MemRef::Shared(to), shape }],
                });
            }
            emit(&mut p, prologue);
            p.push(Instr::Barrier);
        }
        let pair = Pair::of(core, partners[core]);
        let budget = tile_budget(t, s);
        let (steps, stages) = block_steps(&mut p, &cells, (k64, n64), tiling, (wd, ab), at, &layout, t, pair, budget);
        emit_ahead(&mut p, steps, stages - 1);
        out.push((core as u32, p));
    }
    out
}

/// Cores for each active group in proportion to its rows (at least one
/// each, largest remainders first), where there are cores enough to give
/// every group its own; `None` otherwise.
fn core_shares(active: &[(u64, u64)], cores: u32) -> Option<Vec<u32>> {
    let (groups, rows) = (active.len() as u64, active.iter().map(|a| a.1).sum::<u64>());
    if groups < 2 || groups > cores as u64 || rows == 0 {
        return None;
    }
    let spare = cores as u64 - groups;
    let mut shares: Vec<u64> = active.iter().map(|&(_, m)| 1 + spare * m / rows).collect();
    // Rounding down leaves fewer cores than groups over.
    let left = cores as u64 - shares.iter().sum::<u64>();
    let mut by_remainder: Vec<usize> = (0..active.len()).collect();
    by_remainder.sort_by_key(|&i| (std::cmp::Reverse(spare * active[i].1 % rows), i));
    for &i in &by_remainder[..left as usize] {
        shares[i] += 1;
    }
    Some(shares.into_iter().map(|c| c as u32).collect())
}

/// Cores paired to share their input tiles ([`pair`]): neighbours whose
/// cells cover the same rows of the same groups with runs of columns of the
/// same widths (so their steps match one for one).
fn pairs(cells: &[Vec<Cell>]) -> Vec<Option<u16>> {
    let same = |a: &[Cell], b: &[Cell]| {
        !a.is_empty()
            && a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                (x.group, x.m, x.rows) == (y.group, y.m, y.rows) && x.cols.1 - x.cols.0 == y.cols.1 - y.cols.0
            })
    };
    let mut out = vec![None; cells.len()];
    let mut c = 0;
    while c + 1 < cells.len() {
        if same(&cells[c], &cells[c + 1]) {
            out[c] = Some((c + 1) as u16);
            out[c + 1] = Some(c as u16);
            c += 2;
        } else {
            c += 1;
        }
    }
    out
}

/// Deal the columns of every active group to the cores in equal runs of whole array widths.
fn deal_columns(active: &[(u64, u64)], n: u64, t: &CoreTarget, cells: &mut [Vec<Cell>]) {
    let align = t.cols();
    let per_core = (active.len() as u64 * n).div_ceil(t.cores as u64).div_ceil(align) * align;
    let (mut core, mut room) = (0usize, per_core);
    for &(group, m) in active {
        let mut n0 = 0;
        while n0 < n {
            let take = room.min(n - n0);
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
}

/// A core's double-buffered GEMM tiles: inputs, weights, and FP32 output
/// blocks, in the accumulator storage when it holds two.
struct Tiles {
    x: Vec<BufId>,
    w: Vec<BufId>,
    y: [BufId; 2],
    dtype: Dtype,
}

impl Tiles {
    fn new(p: &mut Program, (bm, bn, kt): Tiling, (wd, ab): (Dtype, u64), stages: u64, t: &CoreTarget) -> Tiles {
        let wb = wd.bytes();
        let x = (0..stages).map(|i| p.named_buffer(format!("x{i}"), bm * kt * ab)).collect();
        let w = (0..stages).map(|i| p.named_buffer(format!("w{i}"), kt * bn * wb)).collect();
        let block = bm * bn * 4;
        let y = if accumulators_fit(bm, bn, t) {
            [p.buffer_at("y0", t.scratchpad, block), p.buffer_at("y1", t.scratchpad + block, block)]
        } else {
            [p.named_buffer("y0", block), p.named_buffer("y1", block)]
        };
        Tiles { x, w, y, dtype: wd }
    }

    /// `y[yi] (+)= x[xi] · w[wi]` over an `m × n × k` tile.
    fn matmul(&self, (xi, wi, yi): (usize, usize, usize), (m, n, k): (u64, u64, u64), accumulate: bool) -> Instr {
        Instr::MatMul {
            c: self.y[yi],
            a: self.x[xi],
            b: self.w[wi],
            m: m as u32,
            n: n as u32,
            k: k as u32,
            dtype: self.dtype,
            acc: Dtype::Fp32,
            accumulate,
        }
    }
}

/// A contiguous load of `bytes` into `dst`.
fn load(dst: BufId, src: MemRef, bytes: u64) -> Instr {
    Instr::Load { dst, src, shape: Shape::contiguous(bytes) }
}

/// The software-pipelined steps of one core's cells, and the buffers of
/// each operand they cycle through: per output block, the reduction in
/// tiles (inputs and weights loaded from device memory or their staged
/// copies), the block stored when complete. Accumulators go in the
/// accumulator storage when it holds two blocks. A paired core shares its
/// input tiles with its partner ([`pair`]).
#[allow(clippy::too_many_arguments)]
fn block_steps(
    p: &mut Program,
    cells: &[Cell],
    (k, n): (u64, u64),
    (bm, bn, kt): Tiling,
    (wd, ab): (Dtype, u64),
    at: Tensors,
    layout: &Layout,
    t: &CoreTarget,
    pair: Option<Pair>,
    budget: u64,
) -> (Vec<Step>, usize) {
    let wb = wd.bytes();
    let stages = stages(bm, bn, kt, (wb, ab), t, budget);
    let tiles = Tiles::new(p, (bm, bn, kt), (wd, ab), stages, t);
    let stages = stages as usize;
    let (mut xi, mut wi, mut yi) = (0, 0, 0);
    let mut steps: Vec<Step> = Vec::new();
    let mut exchange = Exchange::default();
    for cell in cells {
        let weights = at.weights + cell.group * k * n * wb;
        let inputs = at.activations + cell.group * cell.m * k * ab;
        let outputs = at.activations + (1 << 36) + cell.group * cell.m * n * ab;
        let (staged_x, staged_w) = (layout.inputs.get(&cell.group), layout.weights.get(&cell.group));
        let ((m0, m1), (n0, n1)) = (cell.rows, cell.cols);
        for r0 in (m0..m1).step_by(bm as usize) {
            let mc = bm.min(m1 - r0);
            let mut x_resident = false;
            for c0 in (n0..n1).step_by(bn as usize) {
                let nc = bn.min(n1 - c0);
                yi ^= 1;
                for k0 in (0..k).step_by(kt as usize) {
                    let kc = kt.min(k - k0);
                    let mut step = Step::default();
                    if !(x_resident && kt == k) {
                        xi = (xi + 1) % stages;
                        let at_x = (r0 * k + k0 * mc) * ab;
                        let src = |offset| source(staged_x, inputs, at_x + offset);
                        exchange.load(p, &mut step, steps.len(), tiles.x[xi], src, mc * kc * ab, pair);
                        x_resident = true;
                    }
                    wi = (wi + 1) % stages;
                    step.loads.push(load(
                        tiles.w[wi],
                        source(staged_w, weights, (c0 * k + k0 * nc) * wb),
                        kc * nc * wb,
                    ));
                    step.compute.push(tiles.matmul((xi, wi, yi), (mc, nc, kc), k0 > 0));
                    exchange.used_in(steps.len());
                    if k0 + kc == k {
                        step.stores.push(Instr::store(tiles.y[yi], outputs + r0 * n * ab + c0 * mc * ab, mc * nc * ab));
                    }
                    steps.push(step);
                }
            }
        }
    }
    exchange.schedule(&mut steps, pair, stages);
    (steps, stages)
}
