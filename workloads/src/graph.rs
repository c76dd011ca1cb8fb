//! The op graph of one inference step, already placed on devices: each op is
//! compute shards (one kernel per device), transfers between endpoints, or a
//! kernel on the host CPU. This is the content of a step trace.

use isa::Dtype;
use models::fabric::Endpoint;
use serde::{Deserialize, Serialize};

/// The op graph of one step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepGraph {
    /// Ops in an order where every dependency comes first.
    pub ops: Vec<Op>,
    /// Devices (chiplets) the graph is placed on.
    pub devices: u32,
}

/// One op: what it is, what it waits for, and where it runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Hierarchical name, e.g. `l3.attn.q_a`.
    pub name: String,
    pub class: OpClass,
    /// Indices of ops this one needs finished first.
    pub deps: Vec<u32>,
    pub body: OpBody,
}

/// What kind of op, for breakdowns and traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpClass {
    Embedding,
    Norm,
    Gemm,
    Attention,
    Rotary,
    Activation,
    Router,
    Experts,
    Elementwise,
    LmHead,
    Sampling,
    Collective,
    HostIo,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpBody {
    /// The same kernel kind on several devices, each with its own sizes.
    Compute(Vec<Shard>),
    /// Point-to-point transfers, all free to proceed at once.
    Transfer(Vec<Transfer>),
    /// A kernel run by the leading host's CPU (the plan's `host_ops`), its
    /// inputs and outputs carried by transfers to and from `Host(0)`.
    Host(Kernel),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    pub device: u32,
    pub kernel: Kernel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    pub from: Endpoint,
    pub to: Endpoint,
    pub bytes: u64,
}

/// A computation on one device.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Kernel {
    /// For each entry `m` of `rows`, `y[m×n] = x[m×k] · W[k×n]` with its own
    /// weight matrix read from memory (one entry for a plain GEMM, one per
    /// expert or per head for grouped GEMMs). Entries of 0 rows are skipped
    /// and their weights not read.
    Gemm { rows: Vec<u32>, n: u32, k: u32, weight_dtype: Dtype, dtype: Dtype },
    /// Attention over a KV cache: per request, `queries` query tokens of
    /// `heads` heads against `context` cached tokens (causal: query `i` sees
    /// the first `context - queries + i + 1`). `kv_heads` distinct key/value
    /// heads are shared by the query heads; the cache holds
    /// `cache_bytes_per_token` per token (all of this shard's KV heads) and is
    /// read once per request. `new_cache_bytes` are appended per request.
    Attention {
        requests: u32,
        queries: u32,
        context: u32,
        heads: u32,
        kv_heads: u32,
        qk_dim: u32,
        v_dim: u32,
        cache_bytes_per_token: u64,
        new_cache_bytes: u64,
        dtype: Dtype,
    },
    /// Root-mean-square normalisation of `rows × cols`.
    RmsNorm { rows: u32, cols: u32, dtype: Dtype },
    /// Rotary position embedding applied to `rows × cols`.
    Rotary { rows: u32, cols: u32, dtype: Dtype },
    /// `silu(gate) * up` over `rows × cols`.
    SwiGlu { rows: u32, cols: u32, dtype: Dtype },
    /// Element-wise sum of `inputs` tensors of `elems` elements.
    Add { elems: u64, inputs: u32, dtype: Dtype },
    /// Router scoring (sigmoid) and top-`k` selection over `rows × cols`.
    TopK { rows: u32, cols: u32, k: u32, dtype: Dtype },
    /// Softmax over each of `rows` rows of `cols`.
    Softmax { rows: u32, cols: u32, dtype: Dtype },
    /// Sampling over logits: softmax pieces and the `top_k` candidates of each of `rows` rows of `cols`.
    Sample { rows: u32, cols: u32, top_k: u32, dtype: Dtype },
    /// Gather `rows` rows of `cols` elements from a table in memory.
    Embedding { rows: u32, cols: u32, dtype: Dtype },
}

/// The most bytes one transfer may move: 1 TiB, 16 M chunks of the
/// fabric's default 64 KiB.
pub const MAX_TRANSFER_BYTES: u64 = 1 << 40;

/// The most tiles ([`Kernel::smallest_tiles`]) a kernel may need: its
/// programs are held in memory whole, and 2^26 tiles take gigabytes.
pub const MAX_TILES: u64 = 1 << 26;

impl Kernel {
    /// Multiply-accumulates the kernel performs.
    pub fn macs(&self) -> u64 {
        match self {
            Kernel::Gemm { rows, n, k, .. } => rows.iter().map(|&m| m as u64).sum::<u64>() * *n as u64 * *k as u64,
            &Kernel::Attention { requests, queries, context, heads, qk_dim, v_dim, .. } => {
                requests as u64 * heads as u64 * visible_pairs(queries, context) * (qk_dim + v_dim) as u64
            }
            _ => 0,
        }
    }

    /// Tiles at the smallest tiling the lowering uses (64 x 64 x 128 for a
    /// GEMM, 64 rows by 64 keys for attention, 4,096 elements for the
    /// vector kernels): a measure of the programs lowering would hold, to
    /// refuse an absurd kernel before lowering it ([`MAX_TILES`]).
    pub fn smallest_tiles(&self) -> u64 {
        let elements = |rows: u32, cols: u32| (rows as u64 * cols as u64).div_ceil(4096);
        match *self {
            Kernel::Gemm { ref rows, n, k, .. } => rows
                .iter()
                .map(|&m| (m as u64).div_ceil(64).saturating_mul((n as u64).div_ceil(64)))
                .fold(0u64, |sum, t| sum.saturating_add(t))
                .saturating_mul((k as u64).div_ceil(128)),
            Kernel::Attention { requests, queries, context, heads, kv_heads, .. } => {
                let rows = queries as u64 * (heads as u64).div_ceil(kv_heads.max(1) as u64);
                (requests as u64 * kv_heads as u64)
                    .saturating_mul(rows.div_ceil(64))
                    .saturating_mul((context as u64).div_ceil(64))
            }
            Kernel::RmsNorm { rows, cols, .. }
            | Kernel::Rotary { rows, cols, .. }
            | Kernel::SwiGlu { rows, cols, .. }
            | Kernel::Softmax { rows, cols, .. }
            | Kernel::Embedding { rows, cols, .. }
            | Kernel::TopK { rows, cols, .. }
            | Kernel::Sample { rows, cols, .. } => elements(rows, cols),
            Kernel::Add { elems, inputs, .. } => elems.div_ceil(4096).saturating_mul(inputs.max(1) as u64),
        }
    }

    /// The first size that must be at least 1 but is 0, if any: lowering
    /// needs every dimension but a grouped GEMM's per-group rows.
    pub fn zero_dimension(&self) -> Option<&'static str> {
        let sizes: Vec<(&'static str, u64)> = match *self {
            Kernel::Gemm { n, k, .. } => vec![("n", n as u64), ("k", k as u64)],
            Kernel::Attention { requests, queries, context, heads, kv_heads, qk_dim, v_dim, .. } => vec![
                ("requests", requests as u64),
                ("queries", queries as u64),
                ("context", context as u64),
                ("heads", heads as u64),
                ("kv_heads", kv_heads as u64),
                ("qk_dim", qk_dim as u64),
                ("v_dim", v_dim as u64),
            ],
            Kernel::RmsNorm { rows, cols, .. }
            | Kernel::Rotary { rows, cols, .. }
            | Kernel::SwiGlu { rows, cols, .. }
            | Kernel::Softmax { rows, cols, .. }
            | Kernel::Embedding { rows, cols, .. } => vec![("rows", rows as u64), ("cols", cols as u64)],
            Kernel::TopK { rows, cols, k, .. } => vec![("rows", rows as u64), ("cols", cols as u64), ("k", k as u64)],
            Kernel::Sample { rows, cols, top_k, .. } => {
                vec![("rows", rows as u64), ("cols", cols as u64), ("top_k", top_k as u64)]
            }
            Kernel::Add { elems, .. } => vec![("elems", elems)],
        };
        sizes.iter().find(|(_, v)| *v == 0).map(|(name, _)| *name)
    }

    /// Bytes the kernel reads from memory beyond its inputs: weights, and the KV cache attention reads.
    pub fn memory_bytes(&self) -> u64 {
        match *self {
            Kernel::Attention { requests, context, cache_bytes_per_token, .. } => {
                requests as u64 * context as u64 * cache_bytes_per_token
            }
            _ => self.weight_bytes(),
        }
    }

    /// Weight bytes the kernel reads from memory.
    pub fn weight_bytes(&self) -> u64 {
        match self {
            Kernel::Gemm { rows, n, k, weight_dtype, .. } => {
                rows.iter().filter(|&&m| m > 0).count() as u64 * *n as u64 * *k as u64 * weight_dtype.bytes()
            }
            _ => 0,
        }
    }
}

impl Op {
    /// Floating-point operations of all shards: two per multiply-accumulate.
    pub fn flops(&self) -> u64 {
        match &self.body {
            OpBody::Compute(shards) => shards.iter().map(|s| 2 * s.kernel.macs()).sum(),
            OpBody::Host(kernel) => 2 * kernel.macs(),
            OpBody::Transfer(_) => 0,
        }
    }

    /// Bytes the op moves: what its kernels read from memory, or what its transfers carry.
    pub fn bytes(&self) -> u64 {
        match &self.body {
            OpBody::Compute(shards) => shards.iter().map(|s| s.kernel.memory_bytes()).sum(),
            OpBody::Host(kernel) => kernel.memory_bytes(),
            OpBody::Transfer(transfers) => transfers.iter().map(|t| t.bytes).sum(),
        }
    }
}

/// Query-key pairs a request computes: all of them without causality in
/// decode (queries see the whole cache); with `queries` new tokens at the end
/// of `context`, query `i` sees `context - queries + i + 1` keys.
pub fn visible_pairs(queries: u32, context: u32) -> u64 {
    let (q, c) = (queries as u64, context as u64);
    let before = c.saturating_sub(q);
    q * before + q * (q + 1) / 2
}
