//! Builds the op graph of one step from the model, the scenario, the
//! placement of the model on devices, and the requests' state.
//!
//! Placement: devices are split into data-parallel replicas of
//! `attention_tensor_parallel` consecutive devices; each replica serves a
//! share of the requests and splits attention and dense MLPs by heads and
//! columns. Routed experts are spread round-robin over groups of
//! `expert_parallel` devices; a token's hidden state travels to each device
//! holding one of its experts (once per device) and back ([`moe`]). The LM
//! head is split by vocabulary over all devices, after the last hidden
//! states are gathered to all of them, or, where the replicas step on their
//! own, over each replica's devices; logits go to the leading host
//! ([`head`]). Where the model lives is [`Placement`].

use crate::graph::{Kernel, Op, OpBody, OpClass, Shard, StepGraph, Transfer};
use crate::model::{Attention, ModelConfig};
use crate::routing::Router;
use crate::workload::{HostOp, Scenario};
use isa::Dtype;
use models::fabric::Endpoint;

mod head;
mod moe;

use crate::placement::{Placement, replica_of};

/// Queries per request up to which MLA attends in the absorbed form (over
/// the latent cache, as decode does): decode and the verification of drafts.
const ABSORBED_QUERIES: u32 = 16;

/// One layer's attention as one device computes it: its heads, head sizes,
/// and the cache bytes per token it reads and appends.
#[derive(Clone, Copy, Debug)]
struct AttentionDims {
    heads: u32,
    kv_heads: u32,
    qk_dim: u32,
    v_dim: u32,
    cache_per_token: u64,
    new_per_token: u64,
}

/// Requests grouped by their lengths, so that each attention kernel has one
/// shape: (queries, context, requests), in order of first appearance.
fn attention_shapes<'a>(requests: impl IntoIterator<Item = &'a RequestStep>) -> Vec<(u32, u32, u32)> {
    let mut shapes: Vec<(u32, u32, u32)> = Vec::new();
    for q in requests {
        let key = (q.new_tokens, q.cached + q.new_tokens);
        match shapes.iter_mut().find(|(n, c, _)| (*n, *c) == key) {
            Some(s) => s.2 += 1,
            None => shapes.push((key.0, key.1, 1)),
        }
    }
    shapes
}

/// One request's part in a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestStep {
    /// Tokens already in the KV cache before this step.
    pub cached: u32,
    /// Tokens this step computes (the prompt in prefill, 1 in decode, 1 +
    /// the drafts when verifying multi-token-prediction drafts).
    pub new_tokens: u32,
    /// Positions whose logits the step computes: 1, or 1 + the drafts when verifying them.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub logits: u32,
    /// The data-parallel replica that holds the request's KV cache, as the
    /// scheduler placed it; absent: dealt by position ([`replica_of`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<u32>,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

struct Builder<'a> {
    model: &'a ModelConfig,
    s: &'a Scenario,
    p: &'a Placement,
    ops: Vec<Op>,
    /// The pipeline stage the ops being built run on.
    stage: u32,
    /// Put before every op's name: the micro-batch, when there are several.
    prefix: String,
    /// Per replica: its requests in the micro-batch being built.
    replica_requests: Vec<Vec<RequestStep>>,
}

/// The graph of one step. Each micro-batch passes through the stages in
/// order, its hidden states sent from each stage's devices to their
/// counterparts in the next. A stage takes the micro-batches one at a time,
/// in order (each waits for the one before to leave the stage), so it starts
/// the next while later stages work on the one before.
pub fn build_step(
    model: &ModelConfig,
    scenario: &Scenario,
    placement: &Placement,
    requests: &[RequestStep],
    router: &mut Router,
) -> StepGraph {
    let replicas = placement.replicas();
    let mut per_replica = vec![Vec::new(); replicas as usize];
    for (i, r) in requests.iter().enumerate() {
        let replica = r.replica.map_or_else(|| replica_of(i, requests.len(), replicas), |x| x as usize);
        per_replica[replica % replicas as usize].push(*r);
    }
    let micro_batches = placement.micro_batches.max(1) as usize;
    // Per stage: the last op of the micro-batch before on it.
    let mut stage_tail: Vec<Option<u32>> = vec![None; placement.stages as usize];
    let mut b = Builder {
        model,
        s: scenario,
        p: placement,
        ops: Vec::new(),
        stage: 0,
        prefix: String::new(),
        replica_requests: Vec::new(),
    };
    for m in 0..micro_batches {
        // Each replica's requests cut into consecutive runs, one per micro-batch.
        b.replica_requests = per_replica
            .iter()
            .map(|reqs| reqs[m * reqs.len() / micro_batches..(m + 1) * reqs.len() / micro_batches].to_vec())
            .collect();
        if b.replica_requests.iter().all(Vec::is_empty) {
            continue;
        }
        b.stage = 0;
        b.prefix = if micro_batches > 1 { format!("mb{m}.") } else { String::new() };
        let mut last = b.inputs(stage_tail[0]);
        for stage in 0..placement.stages {
            if stage > 0 {
                stage_tail[stage as usize - 1] = Some(last);
                last = b.next_stage(last, stage_tail[stage as usize]);
            }
            for layer in placement.stage_layers(stage, model.layers) {
                last = b.layer(&format!("l{layer}"), layer, last, router);
            }
        }
        let head = b.head(last);
        if let Some(mtp) = scenario.mtp {
            b.drafts(mtp.draft_tokens, last, head, router);
        }
        stage_tail[placement.stages as usize - 1] = Some(b.ops.len() as u32 - 1);
    }
    StepGraph { ops: b.ops, devices: placement.devices }
}

impl Builder<'_> {
    /// The devices of replica `r` in the current stage.
    fn replica_devices(&self, r: u32) -> std::ops::Range<u32> {
        self.p.replica_devices(self.stage, r)
    }

    /// The devices of the current stage.
    fn stage_devices(&self) -> std::ops::Range<u32> {
        let n = self.p.stage_devices();
        self.stage * n..(self.stage + 1) * n
    }

    fn push(&mut self, name: String, class: OpClass, deps: Vec<u32>, body: OpBody) -> u32 {
        let name = if self.prefix.is_empty() { name } else { format!("{}{name}", self.prefix) };
        self.ops.push(Op { name, class, deps, body });
        (self.ops.len() - 1) as u32
    }

    fn tokens(&self, replica: u32) -> u32 {
        self.replica_requests[replica as usize].iter().map(|r| r.new_tokens).sum()
    }

    /// One shard per device of every replica with tokens, made by `kernel(replica tokens)`.
    fn replicated(&mut self, name: String, class: OpClass, deps: Vec<u32>, kernel: impl Fn(u32) -> Kernel) -> u32 {
        let mut shards = Vec::new();
        for r in 0..self.p.replicas() {
            let t = self.tokens(r);
            if t == 0 {
                continue;
            }
            for d in self.replica_devices(r) {
                shards.push(Shard { device: d, kernel: kernel(t) });
            }
        }
        self.push(name, class, deps, OpBody::Compute(shards))
    }

    fn gemm(&mut self, name: String, deps: Vec<u32>, groups: u32, n: u32, k: u32, weight_dtype: Dtype) -> u32 {
        let dtype = self.s.gemm_dtype();
        self.replicated(name, OpClass::Gemm, deps, |t| Kernel::Gemm {
            rows: vec![t; groups as usize],
            n,
            k,
            weight_dtype,
            dtype,
        })
    }

    fn norm(&mut self, name: String, deps: Vec<u32>, cols: u32) -> u32 {
        let dtype = self.s.activation_dtype;
        self.replicated(name, OpClass::Norm, deps, |rows| Kernel::RmsNorm { rows, cols, dtype })
    }

    fn add(&mut self, name: String, deps: Vec<u32>, inputs: u32) -> u32 {
        let (dtype, hidden) = (self.s.activation_dtype, self.model.hidden as u64);
        self.replicated(name, OpClass::Elementwise, deps, |t| Kernel::Add { elems: t as u64 * hidden, inputs, dtype })
    }

    /// Token ids from the host to every device of the first stage (once
    /// `after` is done there), then the embedding lookup.
    fn inputs(&mut self, after: Option<u32>) -> u32 {
        let mut transfers = Vec::new();
        for r in 0..self.p.replicas() {
            let t = self.tokens(r);
            if t > 0 {
                for d in self.replica_devices(r) {
                    transfers.push(Transfer { from: Endpoint::Host(0), to: Endpoint::Device(d), bytes: t as u64 * 4 });
                }
            }
        }
        let input =
            self.push("input_ids".into(), OpClass::HostIo, after.into_iter().collect(), OpBody::Transfer(transfers));
        let (dtype, cols) = (self.s.activation_dtype, self.model.hidden);
        self.replicated("embed".into(), OpClass::Embedding, vec![input], |rows| Kernel::Embedding { rows, cols, dtype })
    }

    /// The hidden states of the current stage's replicas, each device's to
    /// its counterpart in the next stage, which the following ops run on.
    fn next_stage(&mut self, dep: u32, after: Option<u32>) -> u32 {
        let row = self.model.hidden as u64 * self.s.activation_dtype.bytes();
        let shift = self.p.stage_devices();
        let mut transfers = Vec::new();
        for r in 0..self.p.replicas() {
            let bytes = self.tokens(r) as u64 * row;
            for d in self.replica_devices(r) {
                if bytes > 0 {
                    transfers.push(Transfer { from: Endpoint::Device(d), to: Endpoint::Device(d + shift), bytes });
                }
            }
        }
        self.stage += 1;
        let deps = std::iter::once(dep).chain(after).collect();
        self.push(format!("stage{}.activations", self.stage), OpClass::Collective, deps, OpBody::Transfer(transfers))
    }

    /// Ring all-reduce of `bytes` within each replica: reduce-scatter then all-gather.
    fn all_reduce(&mut self, name: &str, dep: u32, bytes_of: impl Fn(u32) -> u64) -> u32 {
        let tp = self.p.tp;
        if tp == 1 {
            return dep;
        }
        let mut last = dep;
        for step in 0..2 * (tp - 1) {
            let mut transfers = Vec::new();
            let mut shards = Vec::new();
            for r in 0..self.p.replicas() {
                let bytes = bytes_of(self.tokens(r)).div_ceil(tp as u64);
                if bytes == 0 {
                    continue;
                }
                let first = self.replica_devices(r).start;
                for d in self.replica_devices(r) {
                    let next = first + (d - first + 1) % tp;
                    transfers.push(Transfer { from: Endpoint::Device(d), to: Endpoint::Device(next), bytes });
                    let elems = bytes / self.s.activation_dtype.bytes();
                    shards.push(Shard {
                        device: d,
                        kernel: Kernel::Add { elems, inputs: 2, dtype: self.s.activation_dtype },
                    });
                }
            }
            last =
                self.push(format!("{name}.ring{step}"), OpClass::Collective, vec![last], OpBody::Transfer(transfers));
            if step < tp - 1 {
                last = self.push(
                    format!("{name}.reduce{step}"),
                    OpClass::Elementwise,
                    vec![last],
                    OpBody::Compute(shards),
                );
            }
        }
        last
    }

    /// Layer `l` of the model (or the multi-token-prediction layer), its ops named `at.…`.
    fn layer(&mut self, at: &str, l: u32, input: u32, router: &mut Router) -> u32 {
        let m = self.model;
        let h = m.hidden;
        let tp = self.p.tp;
        let wd = self.s.weight_dtype;
        let ad = self.s.activation_dtype;
        let kvd = self.s.kv_dtype;
        let norm = self.norm(format!("{at}.attn_norm"), vec![input], h);
        let attn_out = match m.attention {
            Attention::Mla { heads, q_lora_rank, kv_lora_rank, qk_rope_dim, qk_nope_dim, v_dim } => {
                let hp = heads.div_ceil(tp);
                let q_a = self.gemm(format!("{at}.attn.q_a"), vec![norm], 1, q_lora_rank, h, wd);
                let q_norm = self.norm(format!("{at}.attn.q_norm"), vec![q_a], q_lora_rank);
                let q_b = self.gemm(
                    format!("{at}.attn.q_b"),
                    vec![q_norm],
                    1,
                    hp * (qk_nope_dim + qk_rope_dim),
                    q_lora_rank,
                    wd,
                );
                let kv_a = self.gemm(format!("{at}.attn.kv_a"), vec![norm], 1, kv_lora_rank + qk_rope_dim, h, wd);
                let kv_norm = self.norm(format!("{at}.attn.kv_norm"), vec![kv_a], kv_lora_rank);
                let rope_cols = (hp + 1) * qk_rope_dim;
                let rope = self.replicated(format!("{at}.attn.rope"), OpClass::Rotary, vec![q_b, kv_norm], |rows| {
                    Kernel::Rotary { rows, cols: rope_cols, dtype: ad }
                });
                let latent = (kv_lora_rank + qk_rope_dim) as u64 * kvd.bytes();
                // Decoders (few queries each) attend in the absorbed form: queries move into the
                // latent space and attention runs over the latent cache. Prompts decompress keys
                // and values per head and attend with full heads. A step may hold both.
                let everyone = std::mem::take(&mut self.replica_requests);
                let subset = |absorbed: bool| -> Vec<Vec<RequestStep>> {
                    everyone
                        .iter()
                        .map(|reqs| {
                            reqs.iter().filter(|r| (r.new_tokens <= ABSORBED_QUERIES) == absorbed).copied().collect()
                        })
                        .collect()
                };
                let (few, many) = (subset(true), subset(false));
                let mut core = Vec::new();
                if few.iter().any(|r| !r.is_empty()) {
                    self.replica_requests = few;
                    let q_lat = self.gemm(format!("{at}.attn.absorb_q"), vec![rope], hp, kv_lora_rank, qk_nope_dim, wd);
                    let dims = AttentionDims {
                        heads: hp,
                        kv_heads: 1,
                        qk_dim: kv_lora_rank + qk_rope_dim,
                        v_dim: kv_lora_rank,
                        cache_per_token: latent,
                        new_per_token: latent,
                    };
                    let attn = self.attention(format!("{at}.attn.core"), vec![q_lat], dims);
                    core.push(self.gemm(format!("{at}.attn.absorb_v"), vec![attn], hp, v_dim, kv_lora_rank, wd));
                }
                if many.iter().any(|r| !r.is_empty()) {
                    self.replica_requests = many;
                    let kv_b = self.gemm(
                        format!("{at}.attn.kv_b"),
                        vec![rope],
                        1,
                        hp * (qk_nope_dim + v_dim),
                        kv_lora_rank,
                        wd,
                    );
                    let per_token = hp as u64 * (qk_nope_dim + qk_rope_dim + v_dim) as u64 * ad.bytes();
                    let dims = AttentionDims {
                        heads: hp,
                        kv_heads: hp,
                        qk_dim: qk_nope_dim + qk_rope_dim,
                        v_dim,
                        cache_per_token: per_token,
                        new_per_token: latent,
                    };
                    core.push(self.attention(format!("{at}.attn.core"), vec![kv_b], dims));
                }
                self.replica_requests = everyone;
                self.gemm(format!("{at}.attn.o"), core, 1, h, hp * v_dim, wd)
            }
            Attention::Gqa { heads, kv_heads, head_dim, .. } => {
                let (hp, kvp) = (heads.div_ceil(tp), kv_heads.div_ceil(tp));
                let qkv = self.gemm(format!("{at}.attn.qkv"), vec![norm], 1, (hp + 2 * kvp) * head_dim, h, wd);
                let rope = self.replicated(format!("{at}.attn.rope"), OpClass::Rotary, vec![qkv], |rows| {
                    Kernel::Rotary { rows, cols: (hp + kvp) * head_dim, dtype: ad }
                });
                let per_token = 2 * (kvp * head_dim) as u64 * kvd.bytes();
                let dims = AttentionDims {
                    heads: hp,
                    kv_heads: kvp,
                    qk_dim: head_dim,
                    v_dim: head_dim,
                    cache_per_token: per_token,
                    new_per_token: per_token,
                };
                let core = self.attention(format!("{at}.attn.core"), vec![rope], dims);
                self.gemm(format!("{at}.attn.o"), vec![core], 1, h, hp * head_dim, wd)
            }
        };
        let reduced = self.all_reduce(&format!("{at}.attn.allreduce"), attn_out, |t| t as u64 * h as u64 * ad.bytes());
        let resid = self.add(format!("{at}.attn.residual"), vec![reduced, input], 2);
        let ffn_norm = self.norm(format!("{at}.ffn_norm"), vec![resid], h);
        let mlp =
            if m.is_dense_layer(l) {
                let inter = m.ffn.dense_intermediate.div_ceil(tp);
                let up = self.gemm(format!("{at}.mlp.gate_up"), vec![ffn_norm], 1, 2 * inter, h, wd);
                let act = self.replicated(format!("{at}.mlp.act"), OpClass::Activation, vec![up], |rows| {
                    Kernel::SwiGlu { rows, cols: inter, dtype: ad }
                });
                let down = self.gemm(format!("{at}.mlp.down"), vec![act], 1, h, inter, wd);
                self.all_reduce(&format!("{at}.mlp.allreduce"), down, |t| t as u64 * h as u64 * ad.bytes())
            } else {
                self.moe(at, l, ffn_norm, router)
            };
        let post = if m.post_mlp_norm { self.norm(format!("{at}.post_mlp_norm"), vec![mlp], h) } else { mlp };
        self.add(format!("{at}.mlp.residual"), vec![post, resid], 2)
    }

    fn on_host(&self, op: HostOp) -> bool {
        self.p.host_ops.contains(&op)
    }

    /// Each replica's `bytes_per_token(tokens)` from its first device to the host.
    fn replicas_to_host(&mut self, name: String, dep: u32, bytes_per_token: u64) -> u32 {
        let transfers = (0..self.p.replicas())
            .filter(|&r| self.tokens(r) > 0)
            .map(|r| Transfer {
                from: Endpoint::Device(self.replica_devices(r).start),
                to: Endpoint::Host(0),
                bytes: self.tokens(r) as u64 * bytes_per_token,
            })
            .collect();
        self.push(name, OpClass::HostIo, vec![dep], OpBody::Transfer(transfers))
    }

    /// `bytes_per_token` of each replica's tokens from the host to every device of the replica.
    fn host_to_replicas(&mut self, name: String, deps: Vec<u32>, bytes_per_token: u64) -> u32 {
        let mut transfers = Vec::new();
        for r in 0..self.p.replicas() {
            let bytes = self.tokens(r) as u64 * bytes_per_token;
            if bytes > 0 {
                for d in self.replica_devices(r) {
                    transfers.push(Transfer { from: Endpoint::Host(0), to: Endpoint::Device(d), bytes });
                }
            }
        }
        self.push(name, OpClass::HostIo, deps, OpBody::Transfer(transfers))
    }

    /// The MoE router on the host CPU: hidden states there, scores and top-k
    /// on the CPU, each token's experts and weights (4 + 4 bytes each) back.
    fn host_router(&mut self, at: &str, input: u32) -> u32 {
        let (h, ad, f) = (self.model.hidden, self.s.activation_dtype, &self.model.ffn);
        let (experts, k) = (f.routed_experts, f.experts_per_token);
        let sent = self.replicas_to_host(format!("{at}.moe.router.to_host"), input, h as u64 * ad.bytes());
        let tokens: u32 = (0..self.p.replicas()).map(|r| self.tokens(r)).sum();
        let scores = Kernel::Gemm { rows: vec![tokens], n: experts, k: h, weight_dtype: ad, dtype: ad };
        let scores = self.push(format!("{at}.moe.router"), OpClass::Router, vec![sent], OpBody::Host(scores));
        let choose = Kernel::TopK { rows: tokens, cols: experts, k, dtype: ad };
        let chosen = self.push(format!("{at}.moe.topk"), OpClass::Router, vec![scores], OpBody::Host(choose));
        self.host_to_replicas(format!("{at}.moe.router.from_host"), vec![chosen], k as u64 * 8)
    }

    /// Attention of every replica's requests on its devices, one kernel per request shape.
    fn attention(&mut self, name: String, deps: Vec<u32>, dims: AttentionDims) -> u32 {
        let AttentionDims { heads, kv_heads, qk_dim, v_dim, cache_per_token, new_per_token } = dims;
        let dtype = self.s.attention_dtype();
        let decoding = self.replica_requests.iter().flatten().all(|r| r.cached > 0 && r.new_tokens <= ABSORBED_QUERIES);
        if decoding && self.on_host(HostOp::DecodeAttention) {
            return self.host_attention(name, deps, dims);
        }
        let mut shards = Vec::new();
        for r in 0..self.p.replicas() {
            let reqs = &self.replica_requests[r as usize];
            let shapes = attention_shapes(reqs);
            for d in self.replica_devices(r) {
                for &(queries, context, requests) in &shapes {
                    shards.push(Shard {
                        device: d,
                        kernel: Kernel::Attention {
                            requests,
                            queries,
                            context,
                            heads,
                            kv_heads,
                            qk_dim,
                            v_dim,
                            cache_bytes_per_token: cache_per_token,
                            new_cache_bytes: new_per_token * queries as u64,
                            dtype,
                        },
                    });
                }
            }
        }
        self.push(name, OpClass::Attention, deps, OpBody::Compute(shards))
    }

    /// Decode attention on the host CPU over the KV cache in host DRAM:
    /// each replica's queries there, one CPU kernel per request shape over
    /// all of the model's heads, the outputs back to every device of the replica.
    fn host_attention(&mut self, name: String, deps: Vec<u32>, dims: AttentionDims) -> u32 {
        let AttentionDims { heads, kv_heads, qk_dim, v_dim, new_per_token, .. } = dims;
        let (dtype, tp) = (self.s.activation_dtype, self.p.tp);
        // Each device sends the queries of its heads.
        let mut transfers = Vec::new();
        for r in 0..self.p.replicas() {
            let bytes = self.tokens(r) as u64 * (heads * qk_dim) as u64 * dtype.bytes();
            for d in self.replica_devices(r) {
                if bytes > 0 {
                    transfers.push(Transfer { from: Endpoint::Device(d), to: Endpoint::Host(0), bytes });
                }
            }
        }
        let queries_in = self.push(format!("{name}.to_host"), OpClass::HostIo, deps, OpBody::Transfer(transfers));
        // The whole model's cache per token of one layer: every head's share, read once per request.
        let cache_per_token = self.model.kv_bytes_per_token(self.s.kv_dtype) / self.model.layers.max(1) as u64;
        let shapes = attention_shapes(self.replica_requests.iter().flatten());
        let mut computed = Vec::new();
        for (i, &(queries, context, requests)) in shapes.iter().enumerate() {
            let kernel = Kernel::Attention {
                requests,
                queries,
                context,
                heads: heads * tp,
                kv_heads: kv_heads * tp,
                qk_dim,
                v_dim,
                cache_bytes_per_token: cache_per_token,
                new_cache_bytes: new_per_token * tp as u64 * queries as u64,
                dtype,
            };
            computed.push(self.push(
                format!("{name}.host{i}"),
                OpClass::Attention,
                vec![queries_in],
                OpBody::Host(kernel),
            ));
        }
        self.host_to_replicas(format!("{name}.from_host"), computed, (heads * tp * v_dim) as u64 * dtype.bytes())
    }
}
