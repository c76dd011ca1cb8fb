//! One attention kernel, lowered as in a model run, measured on one chiplet:
//! decode or prefill, multi-head or MLA's absorbed form (one latent KV head
//! that keys and values share).

use super::programs::{ProgramRun, core_target, run_programs};
use crate::graph::Kernel;
use crate::kernels::{KernelCompiler, Tensors};
use isa::Dtype;
use models::spec::SystemSpec;
use serde::Serialize;

/// The shape of an attention kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AttentionShape {
    pub requests: u32,
    /// Queries per request: 1 (or the draft tokens) in decode, the prompt in prefill (causal).
    pub queries: u32,
    /// Keys per request, the queries included.
    pub context: u32,
    pub heads: u32,
    pub kv_heads: u32,
    pub qk_dim: u32,
    pub v_dim: u32,
    /// Bytes of cache per token, all KV heads together.
    pub cache_bytes_per_token: u64,
    pub dtype: Dtype,
}

/// An attention kernel to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionBench {
    pub shape: AttentionShape,
    pub cores: Option<u32>,
    pub compute_only: bool,
}

impl AttentionBench {
    /// MLA's absorbed decode as FlashMLA runs it: one latent head of 512
    /// plus 64 rotary dimensions that keys and values share, in `dtype`.
    pub fn mla_decode(requests: u32, heads: u32, context: u32, dtype: Dtype) -> AttentionBench {
        let shape = AttentionShape {
            requests,
            queries: 1,
            context,
            heads,
            kv_heads: 1,
            qk_dim: 576,
            v_dim: 512,
            cache_bytes_per_token: 576 * dtype.bytes(),
            dtype,
        };
        AttentionBench { shape, cores: None, compute_only: false }
    }

    /// Multi-head (or grouped-query) attention of `queries` per request over
    /// `context` keys, `kv_heads` heads of `head_dim` cached per token.
    pub fn mha(
        requests: u32,
        queries: u32,
        context: u32,
        (heads, kv_heads, head_dim): (u32, u32, u32),
        dtype: Dtype,
    ) -> AttentionBench {
        let shape = AttentionShape {
            requests,
            queries,
            context,
            heads,
            kv_heads,
            qk_dim: head_dim,
            v_dim: head_dim,
            cache_bytes_per_token: 2 * kv_heads as u64 * head_dim as u64 * dtype.bytes(),
            dtype,
        };
        AttentionBench { shape, cores: None, compute_only: false }
    }
}

/// What an attention kernel did on a chiplet.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttentionRun {
    #[serde(flatten)]
    pub shape: AttentionShape,
    /// Bytes attention must move at the least: the KV cache read once, the
    /// queries read and the outputs written once.
    pub compulsory_bytes: u64,
    /// Device-memory bytes moved over the compulsory bytes.
    pub memory_traffic_ratio: f64,
    /// Compulsory bytes per second, as FlashMLA reports its bandwidth.
    pub achieved_bytes_per_s: f64,
    pub achieved_flops: f64,
    pub peak_flops: f64,
    #[serde(flatten)]
    pub run: ProgramRun,
}

/// Lower an attention kernel as a model run would, run it on chiplet 0, and measure it.
pub fn attention(spec: &SystemSpec, bench: AttentionBench) -> Result<AttentionRun, String> {
    let (b, target) = (bench.shape, core_target(spec, bench.cores)?);
    if target.matrix.rate(b.dtype) == 0 {
        return Err(format!("the matrix engine of `{}` does not support {}", spec.name, b.dtype));
    }
    if b.queries > b.context {
        return Err(format!("queries {} exceed the context {}: the keys include the queries", b.queries, b.context));
    }
    if b.kv_heads == 0 || !b.heads.is_multiple_of(b.kv_heads) {
        return Err(format!("heads {} must be a multiple of the KV heads {}", b.heads, b.kv_heads));
    }
    let kernel = Kernel::Attention {
        requests: b.requests,
        queries: b.queries,
        context: b.context,
        heads: b.heads,
        kv_heads: b.kv_heads,
        qk_dim: b.qk_dim,
        v_dim: b.v_dim,
        cache_bytes_per_token: b.cache_bytes_per_token,
        new_cache_bytes: 0,
        dtype: b.dtype,
    };
    if let Some(zero) = kernel.zero_dimension() {
        return Err(format!("{zero} must be at least 1"));
    }
    super::programs::within_tiles(&kernel, "requests x queries x heads x context")?;
    let programs = KernelCompiler::new(target.clone())
        .lower(&kernel, Tensors { weights: 0, activations: 1 << 40 })
        .map_err(|e| format!("{e:?}"))?;
    let run = run_programs(spec, &programs, bench.compute_only)?;
    let card = spec.node.card.as_ref().ok_or("no card")?;
    let peak = card.chiplet.peak_flops(b.dtype) * target.cores as f64 / card.chiplet.cores as f64;
    let rows = b.requests as u64 * b.queries as u64 * b.heads as u64;
    let compulsory = kernel.memory_bytes() + rows * (b.qk_dim as u64 + b.v_dim as u64) * b.dtype.bytes();
    let per_s = |x: f64| if run.seconds > 0.0 { x / run.seconds } else { 0.0 };
    Ok(AttentionRun {
        shape: b,
        compulsory_bytes: compulsory,
        memory_traffic_ratio: (run.memory_read_bytes + run.memory_write_bytes) as f64 / compulsory as f64,
        achieved_bytes_per_s: per_s(compulsory as f64),
        achieved_flops: per_s(2.0 * kernel.macs() as f64),
        peak_flops: peak,
        run,
    })
}
