//! Attention lowered flash style: the KV cache streamed once in tiles.

use super::{CorePrograms, CoreTarget, KernelError, Step, Tensors, check, emit};
use crate::graph::Kernel;
use isa::{Dtype, Instr, MemRef, Program, Shape, VectorOp};

/// Attention in flash style: per unit of work (a request's KV head, split by
/// query tiles in prefill or by context chunks in decode, and by tiles of
/// its query heads where they do not fit at once), load the queries,
/// then per tile of the cache load keys and values, compute scores, the
/// softmax pieces, and accumulate the output.
pub(super) fn attention(kernel: &Kernel, t: &CoreTarget, at: Tensors) -> Result<CorePrograms, KernelError> {
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
    let (q_t, h_t, l_t, place) = tiles(q, group, c, qk_dim as u64 * ab, v_dim as u64, per_token, t);
    let (q_tiles, h_tiles) = (q.div_ceil(q_t), group.div_ceil(h_t));
    let base_units = requests as u64 * kv * h_tiles * q_tiles;
    // In decode, split the context so every core has work.
    let chunks = if q == 1 { (t.cores as u64).div_ceil(base_units).max(1).min(c) } else { 1 };
    let chunk = c.div_ceil(chunks);
    let l_t = l_t.min(chunk);
    let rows_max = q_t * h_t;
    let units = base_units * chunks;
    let layout = Units { chunks, chunk, q_tiles, h_tiles, q_t, h_t, queries: q, context: c, group };
    let unit_of = |unit: u64| layout.unit(unit);
    let o_bytes = rows_max * v_dim as u64 * 4;
    let group_work = |u: u64| unit_of(layout.group(u)).work();
    let dealt = deal(units, t.cores as u64, |u| (group_work(u), layout.group(u)));
    let shared = SharedTiles::new(&dealt, units, &layout, place.kv_buffers as u64 * l_t * per_token, t.shared_sram);
    let mut out = Vec::new();
    for (core, owned) in dealt.into_iter().enumerate() {
        if owned.is_empty() {
            continue;
        }
        let mut p = Program::new();
        let qb = p.named_buffer("q", rows_max * qk_dim as u64 * ab);
        let kvb: Vec<_> = (0..place.kv_buffers).map(|i| p.named_buffer(format!("kv{i}"), l_t * per_token)).collect();
        let ob = if place.output_in_accumulators {
            p.buffer_at("o", t.scratchpad, o_bytes)
        } else {
            p.named_buffer("o", o_bytes)
        };
        let s_bytes = rows_max * l_t * 4;
        let sc = if place.scores_in_accumulators {
            let at = t.scratchpad + o_bytes;
            [p.buffer_at("s0", at, s_bytes), p.buffer_at("s1", at + s_bytes, s_bytes)]
        } else {
            [p.named_buffer("s0", s_bytes), p.named_buffer("s1", s_bytes)]
        };
        let (mut ki, mut si) = (0, 0);
        let mut steps: Vec<Step> = Vec::new();
        for &unit in &owned {
            let Unit { part, qt, ht, head, rows, lo, hi } = unit_of(unit);
            let mut step = Step::default();
            step.loads.push(Instr::load(
                qb,
                at.activations + unit * rows_max * qk_dim as u64 * ab,
                rows * qk_dim as u64 * ab,
            ));
            let mut first_tile = true;
            // Software-pipelined as FlashAttention-3: a tile's scores go
            // ahead of the previous tile's values, so the array computes
            // while the vector engine takes the softmax.
            let mut values: Option<Instr> = None;
            let leader = shared.leader(unit);
            for (tile, l0) in (lo..hi).step_by(l_t as usize).enumerate() {
                let lc = l_t.min(hi - l0);
                ki = (ki + 1) % place.kv_buffers;
                si ^= 1;
                let src = match leader {
                    // The leader has read this tile from device memory just now: it is in the shared SRAM.
                    Some((core, leader_hi)) if l0 + lc <= leader_hi => {
                        let slot = core * place.kv_buffers as u64 + tile as u64 % place.kv_buffers as u64;
                        MemRef::Shared(slot * l_t * per_token)
                    }
                    _ => MemRef::Hbm(at.weights + (head * c + l0) * per_token),
                };
                step.loads.push(Instr::Load { dst: kvb[ki], src, shape: Shape::contiguous(lc * per_token) });
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
                step.compute.extend(values.take());
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
                values = Some(Instr::MatMul {
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
            if let Some(last) = steps.last_mut() {
                last.compute.extend(values.take());
            }
            step.stores.push(Instr::store(
                ob,
                at.activations + (1 << 36) + unit * rows_max * v_dim as u64 * ab,
                rows * v_dim as u64 * ab,
            ));
            if part == 0 && qt == 0 && ht == 0 && head % kv == 0 && new_cache_bytes > 0 {
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

/// Most key and value tiles a core cycles through ([`Placement::kv_buffers`]).
const MAX_KV_BUFFERS: usize = 3;

/// One unit of attention work: a context chunk of a query tile of a head
/// tile of a request's KV head, and the keys its queries see.
#[derive(Clone, Copy, Debug)]
struct Unit {
    part: u64,
    qt: u64,
    ht: u64,
    /// request * kv_heads + KV head
    head: u64,
    /// (query, head) rows
    rows: u64,
    /// Keys of the context chunk it reads: `lo..hi`.
    lo: u64,
    hi: u64,
}

/// How a kernel's work splits into units: context chunks, query tiles and
/// head tiles, numbered chunk fastest, then query tile, head tile and head.
#[derive(Clone, Copy, Debug)]
struct Units {
    chunks: u64,
    chunk: u64,
    q_tiles: u64,
    h_tiles: u64,
    q_t: u64,
    h_t: u64,
    queries: u64,
    context: u64,
    /// Query heads per KV head.
    group: u64,
}

impl Units {
    /// The group of units that read the same keys, and run side by side,
    /// named by its first unit: a context chunk of a KV head, its head
    /// tiles and (where the queries are few, as in decode, so that every
    /// query tile sees nearly every key) its query tiles.
    fn group(&self, unit: u64) -> u64 {
        let (part, rest) = (unit % self.chunks, unit / self.chunks);
        let (qt, head) = (rest % self.q_tiles, rest / self.q_tiles / self.h_tiles);
        let qt = if self.queries <= FEW_QUERIES { 0 } else { qt };
        part + self.chunks * (qt + self.q_tiles * self.h_tiles * head)
    }

    fn unit(&self, unit: u64) -> Unit {
        let part = unit % self.chunks;
        let rest = unit / self.chunks;
        let qt = rest % self.q_tiles;
        let ht = rest / self.q_tiles % self.h_tiles;
        let head = rest / self.q_tiles / self.h_tiles;
        let q0 = qt * self.q_t;
        let qc = self.q_t.min(self.queries - q0);
        let rows = qc * self.h_t.min(self.group - ht * self.h_t);
        // Keys visible to the last query of the tile (causal), within this context chunk.
        let visible = (self.context - self.queries + q0 + qc).min(self.context);
        let (lo, hi) = (part * self.chunk, ((part + 1) * self.chunk).min(visible));
        Unit { part, qt, ht, head, rows, lo, hi }
    }
}

impl Unit {
    /// Score elements it computes: what its time goes with.
    fn work(&self) -> u64 {
        self.rows * self.hi.saturating_sub(self.lo)
    }
}

/// Queries per request up to which every query tile of a request sees
/// nearly all its keys (decode, and the verification of drafts), so that the
/// query tiles share their key tiles as the head tiles do.
const FEW_QUERIES: u64 = 16;

/// Units that read the same keys as another running beside them (a group,
/// [`Units::group`]). On a GPU the first to read a key tile brings it into
/// the L2 and the others, running at the same time, hit there (as
/// FlashMLA's two blocks of 64 heads do for 128 heads). Here, of a group's
/// units at the same place in their cores' lists, the first (the reader)
/// reads device memory and the others read its tiles from the shared SRAM,
/// where the readers' key tiles in flight fit there together.
struct SharedTiles {
    /// Per unit: the reader whose tiles it takes, and that reader's core.
    reader: Vec<Option<(u64, u64)>>,
    layout: Units,
}

impl SharedTiles {
    fn new(dealt: &[Vec<u64>], units: u64, layout: &Units, in_flight_per_core: u64, shared_sram: u64) -> SharedTiles {
        let mut reader = vec![None; units as usize];
        if dealt.len() as u64 * in_flight_per_core <= shared_sram {
            let mut at = vec![(0u64, 0usize); units as usize];
            for (core, owned) in dealt.iter().enumerate() {
                for (i, &u) in owned.iter().enumerate() {
                    at[u as usize] = (core as u64, i);
                }
            }
            let mut first = std::collections::HashMap::new();
            for u in 0..units {
                let (core, place) = at[u as usize];
                let (r, r_core) = *first.entry((layout.group(u), place)).or_insert((u, core));
                if r != u && r_core != core {
                    reader[u as usize] = Some((r, r_core));
                }
            }
        }
        SharedTiles { reader, layout: *layout }
    }

    /// The reader whose key tiles `unit` takes from the shared SRAM: its
    /// core and the end of the keys it reads; `None` where `unit` reads
    /// device memory.
    fn leader(&self, unit: u64) -> Option<(u64, u64)> {
        self.reader[unit as usize].map(|(r, core)| (core, self.layout.unit(r).hi))
    }
}

/// Units dealt to cores so that their work is even: the largest first, each
/// to the core with the least so far (the lowest index on a tie), as a
/// causal prefill's later query tiles see more keys than its first.
/// `work` gives a unit's work and its group: units of equal work go group
/// by group, so that a group's units run side by side on neighbouring
/// cores. Each core runs its units in index order.
fn deal(units: u64, cores: u64, work: impl Fn(u64) -> (u64, u64)) -> Vec<Vec<u64>> {
    let mut order: Vec<(u64, u64, u64)> = (0..units)
        .map(|u| {
            let (w, g) = work(u);
            (w, g, u)
        })
        .collect();
    order.sort_by_key(|&(w, g, u)| (std::cmp::Reverse(w), g, u));
    let mut load = std::collections::BinaryHeap::new();
    load.extend((0..cores).map(|core| std::cmp::Reverse((0u64, core))));
    let mut owned = vec![Vec::new(); cores as usize];
    for (w, _, u) in order {
        let std::cmp::Reverse((sum, core)) = load.pop().expect("at least one core");
        owned[core as usize].push(u);
        load.push(std::cmp::Reverse((sum + w.max(1), core)));
    }
    owned.iter_mut().for_each(|units| units.sort_unstable());
    owned
}

/// Where a unit's buffers go: the FP32 output, and the FP32 scores, in
/// the accumulator storage or in the scratchpad.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Placement {
    output_in_accumulators: bool,
    scores_in_accumulators: bool,
    /// Key and value tiles a core cycles through: with three, one loads
    /// while one has its scores computed and one its values (the pipeline
    /// above); two where three do not fit.
    kv_buffers: usize,
}

/// Query tile, head tile, key tile and placement: up to 256 (query, head)
/// rows that share a KV head, fewer queries and then fewer heads where the
/// queries, the output, and three (else two) key tiles of at least 64 keys with their
/// scores do not fit; the output and then the scores go in the
/// accumulators where they fit there, as a GPU keeps them in registers.
/// The key tile is then as long as the space allows (a quarter of the
/// scratchpad at most).
fn tiles(
    q: u64,
    group: u64,
    c: u64,
    q_row: u64,
    v_dim: u64,
    per_token: u64,
    t: &CoreTarget,
) -> (u64, u64, u64, Placement) {
    let (mut q_t, mut h_t) = (q.min((256 / group).max(1)), group);
    let min_keys = c.min(64);
    let room = |rows: u64| -> Option<(u64, Placement)> {
        let o = rows * v_dim * 4;
        let spad_after_q = t.scratchpad.checked_sub(rows * q_row)?;
        let keys = |place: Placement| -> u64 {
            let acc = u64::from(place.output_in_accumulators) * o;
            let spad = o - acc;
            let acc_keys =
                if place.scores_in_accumulators { t.accumulators.saturating_sub(acc) / (8 * rows) } else { u64::MAX };
            let per_key = place.kv_buffers as u64 * per_token + if place.scores_in_accumulators { 0 } else { 8 * rows };
            (spad_after_q.saturating_sub(spad) / per_key).min(acc_keys)
        };
        let options: &[(bool, bool)] =
            if o <= t.accumulators { &[(true, true), (true, false), (false, false)] } else { &[(false, false)] };
        (2..=MAX_KV_BUFFERS)
            .rev()
            .flat_map(|kv_buffers| {
                options.iter().map(move |&(output_in_accumulators, scores_in_accumulators)| Placement {
                    output_in_accumulators,
                    scores_in_accumulators,
                    kv_buffers,
                })
            })
            .map(|place| (keys(place), place))
            .find(|&(k, _)| k >= min_keys)
    };
    loop {
        if let Some((keys, place)) = room(q_t * h_t) {
            return (q_t, h_t, keys.min(t.scratchpad / 4 / per_token.max(1)).max(min_keys), place);
        }
        if q_t > 1 {
            q_t = q_t.div_ceil(2);
        } else if h_t > 1 {
            h_t = h_t.div_ceil(2);
        } else {
            let place = Placement { output_in_accumulators: false, scores_in_accumulators: false, kv_buffers: 2 };
            return (1, 1, min_keys.max(1), place);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::deal;

    #[test]
    fn dealt_work_is_even_across_cores() {
        // A causal prefill's query tiles: tile i sees i + 1 key tiles. Dealt
        // in runs of consecutive tiles, the last core would get 1.9x the
        // mean; dealt by work, every core is within 5 % of it.
        let (units, cores) = (256u64, 32u64);
        let work = |u: u64| u % 32 + 1;
        let dealt = deal(units, cores, |u| (work(u), u));
        assert_eq!(dealt.iter().map(Vec::len).sum::<usize>(), units as usize, "every unit once");
        let loads: Vec<u64> = dealt.iter().map(|us| us.iter().map(|&u| work(u)).sum()).collect();
        let mean = loads.iter().sum::<u64>() as f64 / cores as f64;
        let busiest = *loads.iter().max().unwrap() as f64;
        assert!(busiest <= 1.05 * mean, "busiest core {busiest} against a mean of {mean}");
        let runs = (0..cores).map(|c| (c * 8..c * 8 + 8).map(work).sum::<u64>()).max().unwrap() as f64;
        assert!(runs > 1.5 * mean, "consecutive runs are uneven: {runs} against {mean}");
    }
}
