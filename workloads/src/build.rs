//! Builds the op graph of one step from the model, the scenario, the
//! placement of the model on devices, and the requests' state.
//!
//! Placement: devices are split into data-parallel replicas of
//! `attention_tensor_parallel` consecutive devices; each replica serves a
//! share of the requests and splits attention and dense MLPs by heads and
//! columns. Routed experts are spread round-robin over groups of
//! `expert_parallel` devices; a token's hidden state travels to each device
//! holding one of its experts (once per device) and back. The LM head is
//! split by vocabulary over all devices, after the last hidden states are
//! gathered to all of them; logits go to the leading host.

use crate::graph::{Kernel, Op, OpBody, OpClass, Shard, StepGraph, Transfer};
use crate::model::{Attention, ModelConfig};
use crate::routing::Router;
use crate::workload::{ExpertPlacement, HostOp, Plan, Sampling, Scenario};
use isa::Dtype;
use models::fabric::Endpoint;

/// Where the model lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub devices: u32,
    /// Pipeline stages, each `devices / stages` consecutive devices.
    pub stages: u32,
    /// Micro-batches per step.
    pub micro_batches: u32,
    /// Devices per replica (tensor-parallel degree of attention and dense MLPs).
    pub tp: u32,
    /// Devices per expert group.
    pub ep: u32,
    /// Per routed expert: its position within each expert group.
    pub slot: Vec<u32>,
    /// Per routed expert: whether every device holds a copy.
    pub replicated: Vec<bool>,
    /// Ops the host CPU runs.
    pub host_ops: Vec<HostOp>,
    /// Whether the replicas step together even where they could step apart.
    pub lockstep: bool,
}

impl Placement {
    /// The placement `plan` asks for on `devices` chiplets, if it divides
    /// them; `load` is each routed expert's expected share of tokens.
    pub fn for_plan(devices: u32, plan: &Plan, load: &[f64]) -> Result<Placement, String> {
        let stages = plan.pipeline_parallel.max(1);
        if !devices.is_multiple_of(stages) {
            return Err(format!("plan.pipeline_parallel = {stages} does not divide the {devices} chiplets"));
        }
        let per_stage = devices / stages;
        let tp = plan.attention_tensor_parallel.max(1);
        if !per_stage.is_multiple_of(tp) {
            return Err(format!(
                "plan.attention_tensor_parallel = {tp} does not divide the {per_stage} chiplets of a pipeline stage"
            ));
        }
        let ep = if plan.expert_parallel == 0 { per_stage } else { plan.expert_parallel };
        if !per_stage.is_multiple_of(ep) {
            return Err(format!(
                "plan.expert_parallel = {ep} does not divide the {per_stage} chiplets of a pipeline stage"
            ));
        }
        let micro_batches = if plan.micro_batches == 0 { stages } else { plan.micro_batches };
        let experts = load.len();
        let mut replicated = vec![false; experts];
        let slot = match plan.expert_placement {
            ExpertPlacement::Balanced => (0..experts as u32).map(|e| e % ep).collect(),
            ExpertPlacement::LoadAware => load_aware(load, &replicated, ep),
            ExpertPlacement::ReplicatedHot { experts: hot } => {
                if hot as usize > experts {
                    return Err(format!(
                        "plan.expert_placement.experts = {hot} is more than the model's {experts} routed experts"
                    ));
                }
                for e in by_load(load).into_iter().take(hot as usize) {
                    replicated[e] = true;
                }
                load_aware(load, &replicated, ep)
            }
        };
        Ok(Placement {
            devices,
            stages,
            micro_batches,
            tp,
            ep,
            slot,
            replicated,
            host_ops: plan.host_ops.clone(),
            lockstep: plan.lockstep_replicas,
        })
    }

    /// Devices of one pipeline stage.
    pub fn stage_devices(&self) -> u32 {
        self.devices / self.stages
    }
    /// Data-parallel replicas within a stage.
    pub fn replicas(&self) -> u32 {
        self.stage_devices() / self.tp
    }
    /// Whether the data-parallel replicas step on their own: they share
    /// nothing in a step (one pipeline stage, and expert groups, if any,
    /// inside a replica, so no all-to-all joins replicas) and the plan does
    /// not hold them in lockstep.
    pub fn independent_replicas(&self) -> bool {
        let experts_inside =
            self.slot.is_empty() || self.replicated.iter().all(|&r| r) || self.tp.is_multiple_of(self.ep);
        self.stages == 1 && self.replicas() > 1 && experts_inside && !self.lockstep
    }
    /// The devices of replica `r` in stage `stage`.
    pub fn replica_devices(&self, stage: u32, r: u32) -> std::ops::Range<u32> {
        let first = stage * self.stage_devices() + r * self.tp;
        first..first + self.tp
    }
    /// The layers stage `stage` holds: consecutive runs, the first `layers % stages` stages one longer.
    pub fn stage_layers(&self, stage: u32, layers: u32) -> std::ops::Range<u32> {
        let (base, extra) = (layers / self.stages, layers % self.stages);
        let start = stage * base + stage.min(extra);
        start..start + base + u32::from(stage < extra)
    }
    /// The device holding `expert` for tokens dispatched from `device`.
    pub fn expert_device(&self, device: u32, expert: u32) -> u32 {
        if self.replicated[expert as usize] {
            return device;
        }
        (device / self.ep) * self.ep + self.slot[expert as usize]
    }
    /// Whether `device` holds `expert`.
    fn holds(&self, device: u32, expert: u32) -> bool {
        self.replicated[expert as usize] || self.slot[expert as usize] == device % self.ep
    }
    /// The most routed experts any device holds.
    pub fn experts_per_device(&self) -> u64 {
        let mut count = vec![0u64; self.ep as usize];
        for (e, &s) in self.slot.iter().enumerate() {
            if !self.replicated[e] {
                count[s as usize] += 1;
            }
        }
        count.into_iter().max().unwrap_or(0) + self.replicated.iter().filter(|&&r| r).count() as u64
    }
}

/// Experts, most loaded first (ties by index, so the order is deterministic).
fn by_load(load: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..load.len()).collect();
    order.sort_by(|&a, &b| load[b].total_cmp(&load[a]).then(a.cmp(&b)));
    order
}

/// Greedy longest-processing-time placement of the experts not replicated:
/// heaviest first, each onto the least-loaded position that still has room
/// for its share of experts.
fn load_aware(load: &[f64], replicated: &[bool], ep: u32) -> Vec<u32> {
    let placed: Vec<usize> = by_load(load).into_iter().filter(|&e| !replicated[e]).collect();
    let room = placed.len().div_ceil(ep as usize);
    let mut totals = vec![0.0f64; ep as usize];
    let mut counts = vec![0usize; ep as usize];
    let mut slot = vec![0u32; load.len()];
    for e in placed {
        let best = (0..ep as usize)
            .filter(|&p| counts[p] < room)
            .min_by(|&a, &b| totals[a].total_cmp(&totals[b]).then(a.cmp(&b)))
            .unwrap_or(0);
        slot[e] = best as u32;
        totals[best] += load[e];
        counts[best] += 1;
    }
    slot
}

/// The data-parallel replica that serves request `i` of `n`. Requests are
/// dealt evenly (and so over cards), so that a batch smaller than the
/// replica count does not crowd onto the first cards.
pub fn replica_of(i: usize, n: usize, replicas: u32) -> usize {
    i * replicas.max(1) as usize / n.max(1)
}

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
        let dtype = self.s.activation_dtype;
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
        let dtype = self.s.activation_dtype;
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

    fn moe(&mut self, at: &str, l: u32, input: u32, router: &mut Router) -> u32 {
        let m = self.model;
        let f = &m.ffn;
        let (h, wd, ad) = (m.hidden, self.s.weight_dtype, self.s.activation_dtype);
        let experts = f.routed_experts;
        let topk = if self.on_host(HostOp::MoeRouter) {
            self.host_router(at, input)
        } else {
            let scores = self.gemm(format!("{at}.moe.router"), vec![input], 1, experts, h, ad);
            self.replicated(format!("{at}.moe.topk"), OpClass::Router, vec![scores], |rows| Kernel::TopK {
                rows,
                cols: experts,
                k: f.experts_per_token,
                dtype: ad,
            })
        };
        // Each token dispatches from one device of its replica.
        let devices = self.p.devices as usize;
        let mut local_tokens = vec![0u32; devices];
        let mut expert_rows = vec![vec![0u32; experts as usize]; devices];
        let mut pairs = vec![vec![0u64; devices]; devices]; // tokens sent from -> to
        for r in 0..self.p.replicas() {
            let t = self.tokens(r);
            for (j, choice) in router.route(l - m.ffn.dense_layers.min(l), t).into_iter().enumerate() {
                let src = self.replica_devices(r).start + j as u32 % self.p.tp;
                local_tokens[src as usize] += 1;
                let mut targets: Vec<u32> = Vec::new();
                for e in choice {
                    let dst = self.p.expert_device(src, e);
                    expert_rows[dst as usize][e as usize] += 1;
                    if !targets.contains(&dst) {
                        targets.push(dst);
                    }
                }
                for dst in targets {
                    pairs[src as usize][dst as usize] += 1;
                }
            }
        }
        let moves = |bytes_per_token: u64, back: bool| {
            let mut out = Vec::new();
            for (src, row) in pairs.iter().enumerate() {
                for (dst, &n) in row.iter().enumerate() {
                    if n > 0 && src != dst {
                        let (a, b) = if back { (dst, src) } else { (src, dst) };
                        out.push(Transfer {
                            from: Endpoint::Device(a as u32),
                            to: Endpoint::Device(b as u32),
                            bytes: n * bytes_per_token,
                        });
                    }
                }
            }
            out
        };
        // Dispatch in the weight dtype (quantised for the expert GEMMs), combine in the activation dtype.
        let dispatch = self.push(
            format!("{at}.moe.dispatch"),
            OpClass::Collective,
            vec![topk],
            OpBody::Transfer(moves(h as u64 * wd.bytes(), false)),
        );
        let inter = f.expert_intermediate;
        let grouped = |n: u32, k: u32| -> Vec<Shard> {
            expert_rows
                .iter()
                .enumerate()
                .filter(|(_, rows)| rows.iter().any(|&m| m > 0))
                .map(|(d, rows)| {
                    let local: Vec<u32> = rows
                        .iter()
                        .enumerate()
                        .filter(|(e, _)| self.p.holds(d as u32, *e as u32))
                        .map(|(_, &m)| m)
                        .collect();
                    Shard { device: d as u32, kernel: Kernel::Gemm { rows: local, n, k, weight_dtype: wd, dtype: ad } }
                })
                .collect()
        };
        let up = self.push(
            format!("{at}.moe.experts.gate_up"),
            OpClass::Experts,
            vec![dispatch],
            OpBody::Compute(grouped(2 * inter, h)),
        );
        let act_shards: Vec<Shard> = expert_rows
            .iter()
            .enumerate()
            .filter_map(|(d, rows)| {
                let total: u32 = rows.iter().sum();
                (total > 0).then_some(Shard {
                    device: d as u32,
                    kernel: Kernel::SwiGlu { rows: total, cols: inter, dtype: ad },
                })
            })
            .collect();
        let act =
            self.push(format!("{at}.moe.experts.act"), OpClass::Activation, vec![up], OpBody::Compute(act_shards));
        let down = self.push(
            format!("{at}.moe.experts.down"),
            OpClass::Experts,
            vec![act],
            OpBody::Compute(grouped(h, inter)),
        );
        let combine = self.push(
            format!("{at}.moe.combine"),
            OpClass::Collective,
            vec![down],
            OpBody::Transfer(moves(h as u64 * ad.bytes(), true)),
        );
        // The shared expert runs on the dispatching devices, for their own tokens.
        let shared_n = inter * f.shared_experts;
        let on_dispatchers = |kernel: &dyn Fn(u32) -> Kernel| -> Vec<Shard> {
            local_tokens
                .iter()
                .enumerate()
                .filter(|(_, t)| **t > 0)
                .map(|(d, &t)| Shard { device: d as u32, kernel: kernel(t) })
                .collect()
        };
        let mut last = combine;
        if shared_n > 0 {
            let s_up = self.push(
                format!("{at}.moe.shared.gate_up"),
                OpClass::Gemm,
                vec![topk],
                OpBody::Compute(on_dispatchers(&|t| Kernel::Gemm {
                    rows: vec![t],
                    n: 2 * shared_n,
                    k: h,
                    weight_dtype: wd,
                    dtype: ad,
                })),
            );
            let s_act = self.push(
                format!("{at}.moe.shared.act"),
                OpClass::Activation,
                vec![s_up],
                OpBody::Compute(on_dispatchers(&|t| Kernel::SwiGlu { rows: t, cols: shared_n, dtype: ad })),
            );
            let s_down = self.push(
                format!("{at}.moe.shared.down"),
                OpClass::Gemm,
                vec![s_act],
                OpBody::Compute(on_dispatchers(&|t| Kernel::Gemm {
                    rows: vec![t],
                    n: h,
                    k: shared_n,
                    weight_dtype: wd,
                    dtype: ad,
                })),
            );
            last = s_down;
        }
        let k = f.experts_per_token + f.shared_experts;
        let weighted = self.push(
            format!("{at}.moe.weighted_sum"),
            OpClass::Elementwise,
            vec![combine, last],
            OpBody::Compute(on_dispatchers(&|t| Kernel::Add { elems: t as u64 * h as u64, inputs: k, dtype: ad })),
        );
        self.gather_replicas(&format!("{at}.moe.gather"), weighted, &local_tokens)
    }

    /// With tensor parallelism, each device of a replica holds only the tokens
    /// it dispatched; gather them so every device has the replica's tokens.
    fn gather_replicas(&mut self, name: &str, dep: u32, local_tokens: &[u32]) -> u32 {
        if self.p.tp == 1 {
            return dep;
        }
        let row = self.model.hidden as u64 * self.s.activation_dtype.bytes();
        let mut transfers = Vec::new();
        for r in 0..self.p.replicas() {
            for src in self.replica_devices(r) {
                for dst in self.replica_devices(r) {
                    let bytes = local_tokens[src as usize] as u64 * row;
                    if src != dst && bytes > 0 {
                        transfers.push(Transfer { from: Endpoint::Device(src), to: Endpoint::Device(dst), bytes });
                    }
                }
            }
        }
        self.push(name.into(), OpClass::Collective, vec![dep], OpBody::Transfer(transfers))
    }

    /// Final norm, gather of the last hidden states of the positions with
    /// logits to the devices of the LM head, and the vocabulary-split LM
    /// head, its ops named `{at}final_norm`, `{at}lm_head…`. Returns the LM
    /// head op and its rows.
    fn lm_head(&mut self, at: &str, last: u32) -> (u32, u32) {
        let (h, ad, wd) = (self.model.hidden, self.s.activation_dtype, self.s.weight_dtype);
        let norm = self.norm(format!("{at}final_norm"), vec![last], h);
        let row = h as u64 * ad.bytes();
        let mut transfers = Vec::new();
        if !self.p.independent_replicas() {
            for r in 0..self.p.replicas() {
                let rows = self.logit_rows(r) as u64;
                let src = self.replica_devices(r).start;
                for dst in self.stage_devices() {
                    if rows > 0 && !self.replica_devices(r).contains(&dst) {
                        transfers.push(Transfer {
                            from: Endpoint::Device(src),
                            to: Endpoint::Device(dst),
                            bytes: rows * row,
                        });
                    }
                }
            }
        }
        let gather =
            self.push(format!("{at}lm_head.gather"), OpClass::Collective, vec![norm], OpBody::Transfer(transfers));
        let rows: u32 = (0..self.p.replicas()).map(|r| self.logit_rows(r)).sum();
        let shards = self
            .head_layout()
            .into_iter()
            .map(|(device, rows, n)| Shard {
                device,
                kernel: Kernel::Gemm { rows: vec![rows], n, k: h, weight_dtype: wd, dtype: ad },
            })
            .collect();
        (self.push(format!("{at}lm_head"), OpClass::LmHead, vec![gather], OpBody::Compute(shards)), rows)
    }

    /// Positions of replica `r` that the step computes logits for.
    fn logit_rows(&self, r: u32) -> u32 {
        self.replica_requests[r as usize].iter().map(|x| x.logits).sum()
    }

    /// Where the LM head runs: per device, the rows it computes and its
    /// slice of the vocabulary. Replicas that step together share one head
    /// split over every device of the last stage (each computes all the
    /// rows); independent replicas each split their own over their devices.
    fn head_layout(&self) -> Vec<(u32, u32, u32)> {
        let vocab = self.model.vocab;
        let slice = |dev: u32, d: u32| vocab / d + u32::from(dev % d < vocab % d);
        if self.p.independent_replicas() {
            let tp = self.p.tp;
            (0..self.p.replicas())
                .filter(|&r| self.logit_rows(r) > 0)
                .flat_map(|r| self.replica_devices(r).map(move |dev| (r, dev)))
                .map(|(r, dev)| (dev, self.logit_rows(r), slice(dev, tp)))
                .collect()
        } else {
            let rows = (0..self.p.replicas()).map(|r| self.logit_rows(r)).sum();
            let d = self.p.stage_devices();
            self.stage_devices().map(|dev| (dev, rows, slice(dev, d))).collect()
        }
    }

    /// Each device of the LM head keeps the `top_k` best of its logits for
    /// its rows (the best one for greedy decoding).
    fn device_sample(&mut self, name: String, dep: u32, top_k: u32) -> u32 {
        let dtype = self.s.activation_dtype;
        let shards = self
            .head_layout()
            .into_iter()
            .map(|(device, rows, cols)| Shard { device, kernel: Kernel::Sample { rows, cols, top_k, dtype } })
            .collect();
        self.push(name, OpClass::Sampling, vec![dep], OpBody::Compute(shards))
    }

    /// What each device of the LM head found for its rows, to the host:
    /// `per_row(vocabulary slice)` bytes a row.
    fn send_to_host(&mut self, name: String, dep: u32, per_row: impl Fn(u32) -> u64) -> u32 {
        let transfers = self
            .head_layout()
            .into_iter()
            .map(|(dev, rows, slice)| Transfer {
                from: Endpoint::Device(dev),
                to: Endpoint::Host(0),
                bytes: rows as u64 * per_row(slice),
            })
            .collect();
        self.push(name, OpClass::HostIo, vec![dep], OpBody::Transfer(transfers))
    }

    /// The LM head, and the logits (or each device's top-k) to the host.
    /// Returns the LM head op.
    fn head(&mut self, last: u32) -> u32 {
        let (head, _) = self.lm_head("", last);
        let ad = self.s.activation_dtype.bytes();
        match self.s.sampling {
            Sampling::Host => {
                self.send_to_host("logits".into(), head, |slice| slice as u64 * ad);
            }
            Sampling::Device => {
                let top_k = self.s.device_candidates();
                let sampled = self.device_sample("sample".into(), head, top_k);
                // A candidate is a value and a vocabulary index: 4 + 4 bytes.
                self.send_to_host("logits".into(), sampled, |slice| top_k.min(slice) as u64 * 8);
            }
        }
        head
    }

    /// Multi-token prediction: the MTP layer run `k` times after the main
    /// model, each pass drafting one more token per request from the hidden
    /// state and token of the pass before (the first from the main model's
    /// last hidden state and LM head). A pass embeds the token, joins it with
    /// the hidden state (`eh_proj`, 2·hidden → hidden), runs one transformer
    /// layer, and shares the LM head; each device keeps its best candidate
    /// and the drafts go to the host with the logits.
    fn drafts(&mut self, k: u32, hidden: u32, head: u32, router: &mut Router) {
        let verified = std::mem::take(&mut self.replica_requests);
        let (h, ad, wd) = (self.model.hidden, self.s.activation_dtype, self.s.weight_dtype);
        let (mut hidden, mut token) = (hidden, head);
        for i in 0..k {
            // Each pass computes one position per request, after the ones before it.
            self.replica_requests = verified
                .iter()
                .map(|reqs| {
                    reqs.iter()
                        .map(|r| RequestStep {
                            cached: r.cached + r.new_tokens + i,
                            new_tokens: 1,
                            logits: 1,
                            replica: r.replica,
                        })
                        .collect()
                })
                .collect();
            let at = format!("mtp{i}");
            let embed = self.replicated(format!("{at}.embed"), OpClass::Embedding, vec![token], |rows| {
                Kernel::Embedding { rows, cols: h, dtype: ad }
            });
            let e_norm = self.norm(format!("{at}.enorm"), vec![embed], h);
            let h_norm = self.norm(format!("{at}.hnorm"), vec![hidden], h);
            let joined = self.gemm(format!("{at}.eh_proj"), vec![e_norm, h_norm], 1, h, 2 * h, wd);
            hidden = self.layer(&at, self.model.layers, joined, router);
            let (logits, _) = self.lm_head(&format!("{at}."), hidden);
            token = self.device_sample(format!("{at}.sample"), logits, 1);
            self.send_to_host(format!("{at}.drafts"), token, |_| 8);
        }
        self.replica_requests = verified;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(placement: ExpertPlacement) -> Plan {
        Plan { expert_parallel: 4, expert_placement: placement, ..Plan::default() }
    }

    #[test]
    fn load_aware_placement_spreads_the_heaviest_experts() {
        // Experts 0..4 carry most of the load; balanced puts 0 and 4 together.
        let load = [0.3, 0.25, 0.2, 0.15, 0.02, 0.02, 0.02, 0.02, 0.01, 0.01];
        let p = Placement::for_plan(8, &plan(ExpertPlacement::LoadAware), &load).unwrap();
        let hot: Vec<u32> = p.slot[..4].to_vec();
        let mut distinct = hot.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 4, "{hot:?}");
        assert_eq!(p.experts_per_device(), 3, "no position holds more than its share (10 over 4)");
        assert_eq!(p.expert_device(5, 0), 4 + p.slot[0], "device 5 dispatches within its group 4..8");
    }

    #[test]
    fn replicated_experts_stay_on_the_dispatching_device() {
        let load = [0.3, 0.25, 0.2, 0.15, 0.02, 0.02, 0.02, 0.02, 0.01, 0.01];
        let p = Placement::for_plan(8, &plan(ExpertPlacement::ReplicatedHot { experts: 2 }), &load).unwrap();
        assert!(p.replicated[0] && p.replicated[1] && !p.replicated[2]);
        assert_eq!(p.expert_device(6, 1), 6);
        // 8 placed experts over 4 positions, plus the 2 copies.
        assert_eq!(p.experts_per_device(), 2 + 2);
        let too_many = Placement::for_plan(8, &plan(ExpertPlacement::ReplicatedHot { experts: 11 }), &load);
        assert!(too_many.unwrap_err().contains("more than the model's 10 routed experts"));
    }
}
