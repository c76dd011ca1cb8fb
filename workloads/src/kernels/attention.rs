//! Attention lowered flash style: the KV cache streamed once in tiles.

use super::{CorePrograms, CoreTarget, KernelError, Step, Tensors, check, emit};
use crate::graph::Kernel;
use isa::{Dtype, Instr, Program, VectorOp};

/// Attention in flash style: per unit of work (a request's KV head, split by
/// query tiles in prefill or by context chunks in decode), load the queries,
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
