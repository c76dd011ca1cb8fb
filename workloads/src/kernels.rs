//! Lowering of one kernel to programs for the cores of a chiplet.
//!
//! Every kernel loads its inputs from device memory and stores its outputs
//! back (kernels are not fused); tensors are stored pre-tiled, so each tile is
//! one contiguous load. Tiles are sized so a double-buffered working set fits
//! in the scratchpad, and alternate between two buffers so that the DMA engine
//! loads the next tile while the matrix or vector engine works on this one.

use crate::graph::Kernel;
use isa::{BufId, Dtype, Instr, Program, VectorOp};

/// What lowering needs to know of a chiplet.
#[derive(Clone, Debug, PartialEq)]
pub struct CoreTarget {
    pub cores: u32,
    pub scratchpad: u64,
    pub array_rows: u32,
    pub array_cols: u32,
    /// MACs per processing element per cycle, indexed by `Dtype as usize`; 0 = unsupported.
    pub macs_per_pe: [u32; 6],
    pub vector_lanes: u32,
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

pub fn lower(kernel: &Kernel, t: &CoreTarget, at: Tensors) -> Result<CorePrograms, KernelError> {
    match kernel {
        Kernel::Gemm { rows, n, k, weight_dtype, dtype } => gemm(rows, *n, *k, *weight_dtype, *dtype, t, at),
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
        &Kernel::TopK { rows, cols, dtype, .. } => {
            Ok(vector(rows as u64 * cols as u64, dtype, 1, &[(VectorOp::Sigmoid, 1), (VectorOp::TopK, 1)], rows, t, at))
        }
        &Kernel::Embedding { rows, cols, dtype } => Ok(vector(rows as u64 * cols as u64, dtype, 1, &[], 0, t, at)),
    }
}

fn check(dtype: Dtype, t: &CoreTarget) -> Result<u32, KernelError> {
    match t.macs_per_pe[dtype as usize] {
        0 => Err(KernelError::UnsupportedDtype(dtype)),
        r => Ok(r),
    }
}

fn round_down(value: u64, multiple: u64) -> u64 {
    if value >= multiple { value / multiple * multiple } else { value.max(1) }
}

/// GEMM tiles `(m_t, n_t, k_t)`. Of the scratchpad, each of the two X
/// buffers gets a sixteenth, each W buffer five, each FP32 accumulator one:
/// fourteen sixteenths in all.
fn gemm_tiles(m: u64, n: u64, k: u64, wb: u64, ab: u64, t: &CoreTarget, rate: u64) -> (u64, u64, u64) {
    let s = t.scratchpad;
    let m_t = m.min(256);
    let k_t = round_down(k.min(s / 16 / (m_t * ab)), t.array_rows as u64 * rate).min(k);
    let n_cap = (s * 5 / 16 / (k_t * wb)).min(s / 16 / (m_t * 4));
    let n_t = round_down(n.min(n_cap), t.array_cols as u64).min(n);
    (m_t, n_t.max(1), k_t.max(1))
}

/// One weight matrix per entry of `rows`; columns of all active matrices are
/// dealt to cores in contiguous runs of whole array widths.
fn gemm(
    rows: &[u32],
    n: u32,
    k: u32,
    wd: Dtype,
    ad: Dtype,
    t: &CoreTarget,
    at: Tensors,
) -> Result<CorePrograms, KernelError> {
    let rate = check(wd, t)? as u64;
    let (n64, k64) = (n as u64, k as u64);
    let active: Vec<(u64, u64)> =
        rows.iter().enumerate().filter(|(_, m)| **m > 0).map(|(g, &m)| (g as u64, m as u64)).collect();
    if active.is_empty() {
        return Ok(Vec::new());
    }
    let total_cols = active.len() as u64 * n64;
    let align = t.array_cols as u64;
    let per_core = total_cols.div_ceil(t.cores as u64).div_ceil(align) * align;
    // Deal (group, n0, n1) column runs to cores.
    let mut work: Vec<Vec<(u64, u64, u64, u64)>> = vec![Vec::new(); t.cores as usize];
    let (mut core, mut room) = (0usize, per_core);
    for &(g, m) in &active {
        let mut n0 = 0;
        while n0 < n64 {
            let take = room.min(n64 - n0);
            work[core].push((g, m, n0, n0 + take));
            n0 += take;
            room -= take;
            if room == 0 && core + 1 < work.len() {
                core += 1;
                room = per_core;
            } else if room == 0 {
                room = u64::MAX;
            }
        }
    }
    let (wb, ab) = (wd.bytes(), ad.bytes());
    let max_m = active.iter().map(|a| a.1).max().unwrap_or(1);
    let (m_t, n_t, k_t) = gemm_tiles(max_m, per_core.min(n64), k64, wb, ab, t, rate);
    // The accumulator spans a core's whole column run when it fits, so each
    // run of columns is stored once; otherwise it is stored per column tile.
    let run_cols = per_core.min(n64);
    let y_cols = if m_t * run_cols * 4 <= t.scratchpad / 16 { run_cols } else { n_t };
    let mut out = Vec::new();
    for (c, items) in work.into_iter().enumerate() {
        if items.is_empty() {
            continue;
        }
        let mut p = Program::new();
        let x = [p.buffer(m_t * k_t * ab), p.buffer(m_t * k_t * ab)];
        let w = [p.buffer(k_t * n_t * wb), p.buffer(k_t * n_t * wb)];
        let y = [p.buffer(m_t * y_cols * 4), p.buffer(m_t * y_cols * 4)];
        let (mut xi, mut wi, mut yi) = (0, 0, 0);
        for (g, m, n0, n1) in items {
            let weights = at.weights + g * k64 * n64 * wb;
            let inputs = at.activations + g * m * k64 * ab;
            for m0 in (0..m).step_by(m_t as usize) {
                let mc = m_t.min(m - m0);
                let mut x_loaded = false;
                for y0 in (n0..n1).step_by(y_cols as usize) {
                    let y1 = (y0 + y_cols).min(n1);
                    yi ^= 1;
                    for c0 in (y0..y1).step_by(n_t as usize) {
                        let nc = n_t.min(y1 - c0);
                        for k0 in (0..k64).step_by(k_t as usize) {
                            let kc = k_t.min(k64 - k0);
                            if !x_loaded || k_t < k64 {
                                xi ^= 1;
                                p.push(Instr::Load {
                                    dst: x[xi],
                                    addr: inputs + (m0 * k64 + k0 * mc) * ab,
                                    bytes: mc * kc * ab,
                                });
                                x_loaded = true;
                            }
                            wi ^= 1;
                            p.push(Instr::Load {
                                dst: w[wi],
                                addr: weights + (c0 * k64 + k0 * nc) * wb,
                                bytes: kc * nc * wb,
                            });
                            p.push(Instr::MatMul {
                                a: x[xi],
                                b: w[wi],
                                c: y[yi],
                                m: mc as u32,
                                n: nc as u32,
                                k: kc as u32,
                                dtype: wd,
                                acc: Dtype::Fp32,
                                accumulate: k0 > 0 || c0 > y0,
                            });
                        }
                    }
                    let out_addr = at.activations + (1 << 36) + (g * m + m0) * n64 * ab + y0 * mc * ab;
                    p.push(Instr::Store { src: y[yi], addr: out_addr, bytes: mc * (y1 - y0) * ab });
                }
            }
        }
        out.push((c as u32, p));
    }
    Ok(out)
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
        let qb = p.buffer(rows_max * qk_dim as u64 * ab);
        let kvb = [p.buffer(l_t * per_token), p.buffer(l_t * per_token)];
        let sc = [p.buffer(rows_max * l_t * 4), p.buffer(rows_max * l_t * 4)];
        let ob = p.buffer(rows_max * v_dim as u64 * 4);
        let (mut ki, mut si) = (0, 0);
        for unit in first..last {
            let part = unit % chunks;
            let rest = unit / chunks;
            let qt = rest % q_tiles;
            let head = rest / q_tiles; // request * kv + KV head
            let request = head / kv;
            let q0 = qt * q_t;
            let qc = q_t.min(q - q0);
            let rows = qc * group;
            // Keys visible to the last query of the tile (causal), within this context chunk.
            let visible = (c - q + q0 + qc).min(c);
            let (lo, hi) = (part * chunk, ((part + 1) * chunk).min(visible));
            p.push(Instr::Load {
                dst: qb,
                addr: at.activations + unit * rows_max * qk_dim as u64 * ab,
                bytes: rows * qk_dim as u64 * ab,
            });
            let mut first_tile = true;
            for l0 in (lo..hi).step_by(l_t as usize) {
                let lc = l_t.min(hi - l0);
                ki ^= 1;
                si ^= 1;
                let cache_addr = at.weights + (head * c + l0) * per_token;
                p.push(Instr::Load { dst: kvb[ki], addr: cache_addr, bytes: lc * per_token });
                p.push(Instr::MatMul {
                    a: qb,
                    b: kvb[ki],
                    c: sc[si],
                    m: rows as u32,
                    n: lc as u32,
                    k: qk_dim,
                    dtype,
                    acc: Dtype::Fp32,
                    accumulate: false,
                });
                for op in [VectorOp::Max, VectorOp::Exp, VectorOp::Sum] {
                    p.push(Instr::Vector {
                        op,
                        src: sc[si],
                        src2: None,
                        dst: sc[si],
                        elems: rows * lc,
                        dtype: Dtype::Fp32,
                    });
                }
                p.push(Instr::MatMul {
                    a: sc[si],
                    b: kvb[ki],
                    c: ob,
                    m: rows as u32,
                    n: v_dim,
                    k: lc as u32,
                    dtype,
                    acc: Dtype::Fp32,
                    accumulate: !first_tile,
                });
                first_tile = false;
            }
            p.push(Instr::Store {
                src: ob,
                addr: at.activations + (1 << 36) + unit * rows_max * v_dim as u64 * ab,
                bytes: rows * v_dim as u64 * ab,
            });
            if part == 0 && qt == 0 && head % kv == 0 && new_cache_bytes > 0 {
                p.push(Instr::Store {
                    src: qb,
                    addr: at.weights + (request * kv * c + c - q) * per_token,
                    bytes: new_cache_bytes.min(p.buffers[qb.0 as usize].bytes),
                });
            }
        }
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
        let bufs: Vec<[BufId; 2]> = (0..inputs.max(1)).map(|_| [p.buffer(chunk * b), p.buffer(chunk * b)]).collect();
        let mut i = 0;
        for e0 in (first..last).step_by(chunk as usize) {
            let n = chunk.min(last - e0);
            i ^= 1;
            for (j, pair) in bufs.iter().enumerate() {
                p.push(Instr::Load {
                    dst: pair[i],
                    addr: at.activations + (j as u64) * (1 << 32) + e0 * b,
                    bytes: n * b,
                });
            }
            for &(op, per_element) in ops {
                let count = if per_element == 1 { n } else { ((n as f64 * rows_per_elem).ceil() as u64).max(1) };
                let src2 = (bufs.len() > 1).then(|| bufs[1][i]);
                p.push(Instr::Vector { op, src: bufs[0][i], src2, dst: bufs[0][i], elems: count, dtype });
            }
            p.push(Instr::Store { src: bufs[0][i], addr: at.activations + (1 << 36) + e0 * b, bytes: n * b });
        }
        out.push((core as u32, p));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> CoreTarget {
        CoreTarget {
            cores: 16,
            scratchpad: 4 << 20,
            array_rows: 64,
            array_cols: 64,
            macs_per_pe: [2, 2, 1, 1, 0, 0],
            vector_lanes: 128,
        }
    }

    fn totals(programs: &CorePrograms) -> (u64, u64) {
        let mut macs = 0;
        let mut loaded = 0;
        for (_, p) in programs {
            for i in &p.instrs {
                macs += i.macs();
                if let Instr::Load { bytes, .. } = i {
                    loaded += bytes;
                }
            }
        }
        (macs, loaded)
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
        ] {
            let kernel = Kernel::Gemm { rows: rows.clone(), n, k, weight_dtype: Dtype::Fp8, dtype: Dtype::Bf16 };
            let programs = lower(&kernel, &t, at).unwrap();
            let (macs, loaded) = totals(&programs);
            assert_eq!(macs, kernel.macs(), "{rows:?} {n} {k}");
            assert!(loaded >= kernel.weight_bytes());
            for (_, p) in &programs {
                p.check(t.scratchpad).unwrap();
            }
        }
    }

    #[test]
    fn decode_weights_are_read_exactly_once() {
        let kernel = Kernel::Gemm { rows: vec![2], n: 12288, k: 1536, weight_dtype: Dtype::Fp8, dtype: Dtype::Bf16 };
        let programs = lower(&kernel, &target(), Tensors { weights: 0, activations: 1 << 40 }).unwrap();
        let weight_loads: u64 = programs
            .iter()
            .flat_map(|(_, p)| &p.instrs)
            .filter_map(|i| match i {
                Instr::Load { addr, bytes, .. } if *addr < 1 << 40 => Some(*bytes),
                _ => None,
            })
            .sum();
        assert_eq!(weight_loads, 12288 * 1536);
        assert_eq!(programs.len(), 16);
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
        let programs = lower(&kernel, &target(), Tensors { weights: 0, activations: 1 << 40 }).unwrap();
        let (macs, _) = totals(&programs);
        assert_eq!(macs, kernel.macs());
        let cache: u64 = programs
            .iter()
            .flat_map(|(_, p)| &p.instrs)
            .filter_map(|i| match i {
                Instr::Load { addr, bytes, .. } if *addr < 1 << 40 => Some(*bytes),
                _ => None,
            })
            .sum();
        assert_eq!(cache, 2 * 2049 * 1152);
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
        let programs = lower(&kernel, &target(), Tensors { weights: 0, activations: 1 << 40 }).unwrap();
        let (macs, _) = totals(&programs);
        // Tiles cover whole key tiles up to the causal limit: at least the exact pairs, at most all of them.
        assert!(macs >= kernel.macs());
        assert!(macs <= 512 * 512 * 8 * 320);
    }

    #[test]
    fn unsupported_dtypes_are_refused() {
        let mut t = target();
        t.macs_per_pe = [0, 4, 1, 1, 0, 0];
        let kernel = Kernel::Gemm { rows: vec![1], n: 64, k: 64, weight_dtype: Dtype::Fp8, dtype: Dtype::Bf16 };
        assert_eq!(
            lower(&kernel, &t, Tensors { weights: 0, activations: 0 }),
            Err(KernelError::UnsupportedDtype(Dtype::Fp8))
        );
    }
}
