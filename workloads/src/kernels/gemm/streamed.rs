//! GEMMs whose re-read operands do not fit in the shared SRAM together,
//! streamed through it as a GPU's L2 serves a large GEMM: every core walks
//! its blocks in the same order, so at any time the cores of a grid row
//! share one block row of the inputs and the cores of a grid column one
//! block column of the weights. Each such round's operand panels pass
//! through the shared SRAM in slices along the reduction (K phases),
//! double-buffered: while the cores compute on one slice they copy their
//! share of the next from device memory, and a barrier between slices makes
//! the next one visible and frees the last. Device memory sees each input
//! block row once per column block of a core's share, not once per core.

use super::pair::{self, Exchange, Pair};
use super::{Layout, STAGING_SHARE, Tiles, Tiling, load, stages};
use crate::kernels::{CorePrograms, CoreTarget, Step, Tensors, emit, emit_ahead};
use isa::{Dtype, Instr, MemRef, Program, Shape};

/// How a grid's rounds pass through the shared SRAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Stream {
    /// Reduction elements per slice.
    pub phase_k: u64,
    pub phases: u64,
    /// Block offsets `(row block, column block)` within each core's share, in the order all cores walk them.
    rounds: Vec<(u64, u64)>,
    /// Bytes of the larger half of the double buffer.
    half: u64,
    /// Device-memory bytes staged over the whole GEMM, all cores together.
    pub staged_bytes: u64,
    /// Bytes of the first slice, staged before any core computes.
    pub first_slice: u64,
    /// Bytes of each operand a core's share reads over the whole GEMM: `(inputs, weights)`.
    reads: (u64, u64),
}

/// The extent of block `b` of size `size` within `run`, if the run reaches it.
fn block(run: (u64, u64), b: u64, size: u64) -> Option<(u64, u64)> {
    let start = run.0 + b * size;
    (start < run.1).then(|| (start, size.min(run.1 - start)))
}

impl Stream {
    /// The stream of a grid with row runs `rows` and column runs `cols`
    /// tiled `tiling`, if a double-buffered slice of at least one reduction
    /// tile fits in the shared SRAM and the scratchpad holds staging buffers.
    pub fn of(
        rows: &[(u64, u64)],
        cols: &[(u64, u64)],
        k: u64,
        tiling: Tiling,
        (wb, ab): (u64, u64),
        t: &CoreTarget,
    ) -> Option<Stream> {
        let (bm, bn, kt) = tiling;
        if t.scratchpad / STAGING_SHARE / 2 < 4096 {
            return None;
        }
        let row_blocks = rows.iter().map(|r| (r.1 - r.0).div_ceil(bm)).max()?;
        let col_blocks = cols.iter().map(|c| (c.1 - c.0).div_ceil(bn)).max()?;
        let rounds: Vec<(u64, u64)> = (0..row_blocks).flat_map(|rb| (0..col_blocks).map(move |cb| (rb, cb))).collect();
        let per_k = |&(rb, cb): &(u64, u64)| -> u64 {
            let x: u64 = rows.iter().filter_map(|&r| block(r, rb, bm)).map(|(_, len)| len * ab).sum();
            let w: u64 = cols.iter().filter_map(|&c| block(c, cb, bn)).map(|(_, len)| len * wb).sum();
            x + w
        };
        let widest = rounds.iter().map(per_k).max()?;
        let fits = t.shared_sram / 2 / widest.max(1) / kt * kt;
        if fits == 0 {
            return None;
        }
        let phases = k.div_ceil(fits);
        let phase_k = k.div_ceil(phases).div_ceil(kt) * kt;
        let staged_bytes = rounds.iter().map(per_k).sum::<u64>() * k;
        let reads = (rounds.len() as u64 * bm * k * ab, rounds.len() as u64 * bn * k * wb);
        Some(Stream {
            phase_k,
            phases: k.div_ceil(phase_k),
            first_slice: per_k(&rounds[0]) * phase_k.min(k),
            half: widest * phase_k,
            rounds,
            staged_bytes,
            reads,
        })
    }

    /// Bytes a core loads from the shared SRAM, half of the `shared` operand when paired.
    pub fn core_reads(&self, shared: Option<Shared>) -> u64 {
        let (x, w) = self.reads;
        match shared {
            None => x + w,
            Some(Shared::Inputs) => x.div_ceil(2) + w,
            Some(Shared::Weights) => x + w.div_ceil(2),
        }
    }

    /// Barriers each core passes: one after every slice but the last, and one after the prologue.
    pub fn syncs(&self) -> u64 {
        self.rounds.len() as u64 * self.phases
    }

    /// Where slice `s`'s operand blocks lie (by grid row, then by grid
    /// column, offsets within the slice), and the copies that stage it.
    #[allow(clippy::too_many_arguments)]
    fn slice(
        &self,
        s: u64,
        rows: &[(u64, u64)],
        cols: &[(u64, u64)],
        k: u64,
        tiling: Tiling,
        sizes: (u64, u64),
        at: Tensors,
    ) -> Slice {
        let ((bm, bn, _), (wb, ab)) = (tiling, sizes);
        let (rb, cb) = self.rounds[(s / self.phases) as usize];
        let k0 = (s % self.phases) * self.phase_k;
        let kc = self.phase_k.min(k - k0);
        let mut layout = Layout::default();
        let inputs = rows
            .iter()
            .map(|&r| {
                block(r, rb, bm).map(|(r0, mc)| layout.stage(at.activations + (r0 * k + k0 * mc) * ab, mc * kc * ab))
            })
            .collect();
        let weights = cols
            .iter()
            .map(|&c| block(c, cb, bn).map(|(c0, nc)| layout.stage(at.weights + (c0 * k + k0 * nc) * wb, kc * nc * wb)))
            .collect();
        Slice { base: (s % 2) * self.half, k0, kc, inputs, weights, layout }
    }
}

/// One slice of a stream.
struct Slice {
    /// Where its half of the double buffer starts in the shared SRAM.
    base: u64,
    k0: u64,
    kc: u64,
    inputs: Vec<Option<u64>>,
    weights: Vec<Option<u64>>,
    layout: Layout,
}

/// Which operand a grid's paired cores share ([`pair`](super::pair)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shared {
    Inputs,
    Weights,
}

/// Partners of the cores of a grid (core `i * cols + j` for row run `i` and
/// column run `j`) where the chiplet multicasts and the GEMM has the rows
/// that tuned libraries multicast from, and the operand they share: the
/// cores of a grid column read the same weight blocks and pair with the
/// next row's core where their row runs are equally long; those of a grid
/// row read the same input blocks and pair with the next column's. Of the
/// two, the one that halves more bytes per round.
pub(super) fn grid_pairs(
    rows: &[(u64, u64)],
    cols: &[(u64, u64)],
    (bm, bn): (u64, u64),
    (wb, ab): (u64, u64),
    t: &CoreTarget,
) -> (Shared, Vec<Option<u16>>) {
    let m = rows.last().map_or(0, |r| r.1);
    let (nr, nc) = (rows.len(), cols.len());
    let mut partners = vec![None; nr * nc];
    if !pair::multicasts(t, m) {
        return (Shared::Inputs, partners);
    }
    let len = |r: (u64, u64)| r.1 - r.0;
    let row_pairs: Vec<usize> = (0..nr / 2).map(|q| 2 * q).filter(|&i| len(rows[i]) == len(rows[i + 1])).collect();
    let col_pairs: Vec<usize> = (0..nc / 2).map(|q| 2 * q).filter(|&j| len(cols[j]) == len(cols[j + 1])).collect();
    let weights_saved = (row_pairs.len() * nc) as u64 * bn * wb;
    let inputs_saved = (col_pairs.len() * nr) as u64 * bm * ab;
    let mut link = |a: usize, b: usize| {
        partners[a] = Some(b as u16);
        partners[b] = Some(a as u16);
    };
    if weights_saved >= inputs_saved {
        for &i in &row_pairs {
            (0..nc).for_each(|j| link(i * nc + j, (i + 1) * nc + j));
        }
        (Shared::Weights, partners)
    } else {
        for &j in &col_pairs {
            (0..nr).for_each(|i| link(i * nc + j, i * nc + j + 1));
        }
        (Shared::Inputs, partners)
    }
}

/// Programs for every core of the grid: a prologue stages the first slice;
/// then, slice by slice, the core computes its block's reduction tiles of
/// the slice from the shared SRAM while it stages its share of the next,
/// and waits at a barrier. A finished block stores after the barrier that
/// follows it, so no core waits at a barrier on its own store.
#[allow(clippy::too_many_arguments)]
pub(super) fn programs(
    stream: &Stream,
    rows: &[(u64, u64)],
    cols: &[(u64, u64)],
    (n, k): (u64, u64),
    tiling: Tiling,
    (wd, ab): (Dtype, u64),
    t: &CoreTarget,
    at: Tensors,
) -> CorePrograms {
    let (bm, bn, kt) = tiling;
    let wb = wd.bytes();
    let slices = stream.rounds.len() as u64 * stream.phases;
    let layouts: Vec<Slice> = (0..slices).map(|s| stream.slice(s, rows, cols, k, tiling, (wb, ab), at)).collect();
    let cores = (rows.len() * cols.len()) as u64;
    let chunk = t.scratchpad / STAGING_SHARE / 2;
    let stages = stages(tiling.0, tiling.1, tiling.2, (wb, ab), t, t.scratchpad - t.scratchpad / STAGING_SHARE);
    let outputs = at.activations + (1 << 36);
    let (shared, partners) = grid_pairs(rows, cols, (bm, bn), (wb, ab), t);
    let mut out = Vec::new();
    for (i, &row_run) in rows.iter().enumerate() {
        for (j, &col_run) in cols.iter().enumerate() {
            let core = (i * cols.len() + j) as u64;
            let pair = Pair::of(core as usize, partners[core as usize]);
            let mut p = Program::new();
            let stage = [p.named_buffer("stage0", chunk), p.named_buffer("stage1", chunk)];
            let tiles = Tiles::new(&mut p, tiling, (wd, ab), stages, t);
            let copies = |s: &Slice| -> Vec<(u64, u64, u64)> {
                s.layout.share(core, cores, chunk).into_iter().map(|(from, to, len)| (from, s.base + to, len)).collect()
            };
            let staging_steps = |copies: Vec<(u64, u64, u64)>, steps: &mut Vec<Step>| {
                for (c, (from, to, len)) in copies.into_iter().enumerate() {
                    if c == steps.len() {
                        steps.push(Step::default());
                    }
                    let buf = stage[c % 2];
                    steps[c].loads.push(load(buf, MemRef::Hbm(from), len));
                    steps[c].stores.push(Instr::Store {
                        src: buf,
                        dst: MemRef::Shared(to),
                        shape: Shape::contiguous(len),
                    });
                }
            };
            let mut prologue = Vec::new();
            staging_steps(copies(&layouts[0]), &mut prologue);
            emit(&mut p, prologue);
            p.push(Instr::Barrier);
            let (mut xi, mut wi, mut yi) = (0, 0, 0);
            let mut pending: Option<Instr> = None;
            for (s, slice) in layouts.iter().enumerate() {
                let (rb, cb) = stream.rounds[s / stream.phases as usize];
                if slice.k0 == 0 {
                    yi ^= 1;
                }
                // The block finished in the last slice stores now, after the barrier.
                let carried = pending.take();
                let mut steps = Vec::new();
                let mut exchange = Exchange::default();
                if let (Some((r0, mc)), Some((c0, nc))) = (block(row_run, rb, bm), block(col_run, cb, bn)) {
                    let (xs, ws) = (slice.inputs[i].unwrap_or(0), slice.weights[j].unwrap_or(0));
                    for k0 in (slice.k0..slice.k0 + slice.kc).step_by(kt as usize) {
                        let kc = kt.min(slice.k0 + slice.kc - k0);
                        let offset = k0 - slice.k0;
                        (xi, wi) = ((xi + 1) % stages as usize, (wi + 1) % stages as usize);
                        let mut step = Step::default();
                        let from = |at: u64| move |within: u64| MemRef::Shared(slice.base + at + within);
                        let (x, w) = (from(xs + offset * mc * ab), from(ws + offset * nc * wb));
                        let (x_bytes, w_bytes) = (mc * kc * ab, kc * nc * wb);
                        let here = steps.len();
                        match shared {
                            Shared::Inputs => {
                                exchange.load(&p, &mut step, here, tiles.x[xi], x, x_bytes, pair);
                                step.loads.push(load(tiles.w[wi], w(0), w_bytes));
                            }
                            Shared::Weights => {
                                step.loads.push(load(tiles.x[xi], x(0), x_bytes));
                                exchange.load(&p, &mut step, here, tiles.w[wi], w, w_bytes, pair);
                            }
                        }
                        step.compute.push(tiles.matmul((xi, wi, yi), (mc, nc, kc), k0 > 0));
                        steps.push(step);
                        if k0 + kc == k {
                            pending =
                                Some(Instr::store(tiles.y[yi], outputs + r0 * n * ab + c0 * mc * ab, mc * nc * ab));
                        }
                    }
                }
                // Slices end at a barrier, so each slice's exchange stands alone.
                exchange.schedule(&mut steps, pair, stages as usize);
                if let Some(next) = layouts.get(s + 1) {
                    staging_steps(copies(next), &mut steps);
                }
                if let Some(store) = carried {
                    match steps.first_mut() {
                        Some(first) => first.stores.insert(0, store),
                        None => {
                            p.push(store);
                        }
                    }
                }
                emit_ahead(&mut p, steps, stages as usize - 1);
                if s + 1 < layouts.len() {
                    p.push(Instr::Barrier);
                }
            }
            if let Some(store) = pending.take() {
                p.push(store);
            }
            out.push((core as u32, p));
        }
    }
    out
}
