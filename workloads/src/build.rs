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
use crate::workload::{ExpertPlacement, Plan, Sampling, Scenario};
use isa::Dtype;
use models::fabric::Endpoint;

/// Where the model lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub devices: u32,
    /// Devices per replica (tensor-parallel degree of attention and dense MLPs).
    pub tp: u32,
    /// Devices per expert group.
    pub ep: u32,
    /// Per routed expert: its position within each expert group.
    pub slot: Vec<u32>,
    /// Per routed expert: whether every device holds a copy.
    pub replicated: Vec<bool>,
}

impl Placement {
    /// The placement `plan` asks for on `devices` chiplets, if it divides
    /// them; `load` is each routed expert's expected share of tokens.
    pub fn for_plan(devices: u32, plan: &Plan, load: &[f64]) -> Result<Placement, String> {
        let tp = plan.attention_tensor_parallel.max(1);
        if !devices.is_multiple_of(tp) {
            return Err(format!("plan.attention_tensor_parallel = {tp} does not divide the {devices} chiplets"));
        }
        let ep = if plan.expert_parallel == 0 { devices } else { plan.expert_parallel };
        if !devices.is_multiple_of(ep) {
            return Err(format!("plan.expert_parallel = {ep} does not divide the {devices} chiplets"));
        }
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
        Ok(Placement { devices, tp, ep, slot, replicated })
    }

    pub fn replicas(&self) -> u32 {
        self.devices / self.tp
    }
    fn replica_devices(&self, r: u32) -> std::ops::Range<u32> {
        r * self.tp..(r + 1) * self.tp
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

/// One request's part in a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestStep {
    /// Tokens already in the KV cache before this step.
    pub cached: u32,
    /// Tokens this step computes (the prompt in prefill, 1 in decode).
    pub new_tokens: u32,
}

struct Builder<'a> {
    model: &'a ModelConfig,
    s: &'a Scenario,
    p: &'a Placement,
    ops: Vec<Op>,
    /// Per replica: its requests.
    replica_requests: Vec<Vec<RequestStep>>,
}

/// The graph of one step.
pub fn build_step(
    model: &ModelConfig,
    scenario: &Scenario,
    placement: &Placement,
    requests: &[RequestStep],
    router: &mut Router,
) -> StepGraph {
    let dp = placement.replicas() as usize;
    let mut replica_requests = vec![Vec::new(); dp];
    // Spread requests evenly over the replicas (and so over cards), so that a
    // batch smaller than the replica count does not crowd onto the first cards.
    let n = requests.len().max(1);
    for (i, r) in requests.iter().enumerate() {
        replica_requests[i * dp / n].push(*r);
    }
    let mut b = Builder { model, s: scenario, p: placement, ops: Vec::new(), replica_requests };
    let mut last = b.inputs();
    for layer in 0..model.layers {
        last = b.layer(layer, last, router);
    }
    b.head(last);
    StepGraph { ops: b.ops, devices: placement.devices }
}

impl Builder<'_> {
    fn push(&mut self, name: String, class: OpClass, deps: Vec<u32>, body: OpBody) -> u32 {
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
            for d in self.p.replica_devices(r) {
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

    /// Token ids from the host to every device, then the embedding lookup.
    fn inputs(&mut self) -> u32 {
        let mut transfers = Vec::new();
        for r in 0..self.p.replicas() {
            let t = self.tokens(r);
            if t > 0 {
                for d in self.p.replica_devices(r) {
                    transfers.push(Transfer { from: Endpoint::Host(0), to: Endpoint::Device(d), bytes: t as u64 * 4 });
                }
            }
        }
        let input = self.push("input_ids".into(), OpClass::HostIo, vec![], OpBody::Transfer(transfers));
        let (dtype, cols) = (self.s.activation_dtype, self.model.hidden);
        self.replicated("embed".into(), OpClass::Embedding, vec![input], |rows| Kernel::Embedding { rows, cols, dtype })
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
                for d in self.p.replica_devices(r) {
                    let next = r * tp + (d - r * tp + 1) % tp;
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

    fn layer(&mut self, l: u32, input: u32, router: &mut Router) -> u32 {
        let m = self.model;
        let h = m.hidden;
        let tp = self.p.tp;
        let wd = self.s.weight_dtype;
        let ad = self.s.activation_dtype;
        let kvd = self.s.kv_dtype;
        let norm = self.norm(format!("l{l}.attn_norm"), vec![input], h);
        let attn_out = match m.attention {
            Attention::Mla { heads, q_lora_rank, kv_lora_rank, qk_rope_dim, qk_nope_dim, v_dim } => {
                let hp = heads.div_ceil(tp);
                let q_a = self.gemm(format!("l{l}.attn.q_a"), vec![norm], 1, q_lora_rank, h, wd);
                let q_norm = self.norm(format!("l{l}.attn.q_norm"), vec![q_a], q_lora_rank);
                let q_b = self.gemm(
                    format!("l{l}.attn.q_b"),
                    vec![q_norm],
                    1,
                    hp * (qk_nope_dim + qk_rope_dim),
                    q_lora_rank,
                    wd,
                );
                let kv_a = self.gemm(format!("l{l}.attn.kv_a"), vec![norm], 1, kv_lora_rank + qk_rope_dim, h, wd);
                let kv_norm = self.norm(format!("l{l}.attn.kv_norm"), vec![kv_a], kv_lora_rank);
                let rope_cols = (hp + 1) * qk_rope_dim;
                let rope = self.replicated(format!("l{l}.attn.rope"), OpClass::Rotary, vec![q_b, kv_norm], |rows| {
                    Kernel::Rotary { rows, cols: rope_cols, dtype: ad }
                });
                let latent = (kv_lora_rank + qk_rope_dim) as u64 * kvd.bytes();
                let decode = self.replica_requests.iter().flatten().all(|r| r.new_tokens == 1);
                let core = if decode {
                    // Absorbed form: queries move into the latent space, attention runs over the latent cache.
                    let q_lat = self.gemm(format!("l{l}.attn.absorb_q"), vec![rope], hp, kv_lora_rank, qk_nope_dim, wd);
                    let attn = self.attention(
                        format!("l{l}.attn.core"),
                        vec![q_lat],
                        hp,
                        1,
                        kv_lora_rank + qk_rope_dim,
                        kv_lora_rank,
                        latent,
                        latent,
                    );
                    self.gemm(format!("l{l}.attn.absorb_v"), vec![attn], hp, v_dim, kv_lora_rank, wd)
                } else {
                    // Prefill: decompress keys and values per head, attend with full heads.
                    let kv_b = self.gemm(
                        format!("l{l}.attn.kv_b"),
                        vec![rope],
                        1,
                        hp * (qk_nope_dim + v_dim),
                        kv_lora_rank,
                        wd,
                    );
                    let per_token = hp as u64 * (qk_nope_dim + qk_rope_dim + v_dim) as u64 * ad.bytes();
                    self.attention(
                        format!("l{l}.attn.core"),
                        vec![kv_b],
                        hp,
                        hp,
                        qk_nope_dim + qk_rope_dim,
                        v_dim,
                        per_token,
                        latent,
                    )
                };
                self.gemm(format!("l{l}.attn.o"), vec![core], 1, h, hp * v_dim, wd)
            }
            Attention::Gqa { heads, kv_heads, head_dim, .. } => {
                let (hp, kvp) = (heads.div_ceil(tp), kv_heads.div_ceil(tp));
                let qkv = self.gemm(format!("l{l}.attn.qkv"), vec![norm], 1, (hp + 2 * kvp) * head_dim, h, wd);
                let rope = self.replicated(format!("l{l}.attn.rope"), OpClass::Rotary, vec![qkv], |rows| {
                    Kernel::Rotary { rows, cols: (hp + kvp) * head_dim, dtype: ad }
                });
                let per_token = 2 * (kvp * head_dim) as u64 * kvd.bytes();
                let core = self.attention(
                    format!("l{l}.attn.core"),
                    vec![rope],
                    hp,
                    kvp,
                    head_dim,
                    head_dim,
                    per_token,
                    per_token,
                );
                self.gemm(format!("l{l}.attn.o"), vec![core], 1, h, hp * head_dim, wd)
            }
        };
        let reduced = self.all_reduce(&format!("l{l}.attn.allreduce"), attn_out, |t| t as u64 * h as u64 * ad.bytes());
        let resid = self.add(format!("l{l}.attn.residual"), vec![reduced, input], 2);
        let ffn_norm = self.norm(format!("l{l}.ffn_norm"), vec![resid], h);
        let mlp =
            if m.is_dense_layer(l) {
                let inter = m.ffn.dense_intermediate.div_ceil(tp);
                let up = self.gemm(format!("l{l}.mlp.gate_up"), vec![ffn_norm], 1, 2 * inter, h, wd);
                let act = self.replicated(format!("l{l}.mlp.act"), OpClass::Activation, vec![up], |rows| {
                    Kernel::SwiGlu { rows, cols: inter, dtype: ad }
                });
                let down = self.gemm(format!("l{l}.mlp.down"), vec![act], 1, h, inter, wd);
                self.all_reduce(&format!("l{l}.mlp.allreduce"), down, |t| t as u64 * h as u64 * ad.bytes())
            } else {
                self.moe(l, ffn_norm, router)
            };
        let post = if m.post_mlp_norm { self.norm(format!("l{l}.post_mlp_norm"), vec![mlp], h) } else { mlp };
        self.add(format!("l{l}.mlp.residual"), vec![post, resid], 2)
    }

    #[allow(clippy::too_many_arguments)]
    fn attention(
        &mut self,
        name: String,
        deps: Vec<u32>,
        heads: u32,
        kv_heads: u32,
        qk_dim: u32,
        v_dim: u32,
        per_token: u64,
        new_per_token: u64,
    ) -> u32 {
        let dtype = self.s.activation_dtype;
        let mut shards = Vec::new();
        for r in 0..self.p.replicas() {
            let reqs = &self.replica_requests[r as usize];
            // Requests of one replica are grouped by their lengths so that each shard has one shape.
            let mut shapes: Vec<(u32, u32, u32)> = Vec::new();
            for q in reqs {
                let key = (q.new_tokens, q.cached + q.new_tokens);
                match shapes.iter_mut().find(|(n, c, _)| (*n, *c) == key) {
                    Some(s) => s.2 += 1,
                    None => shapes.push((key.0, key.1, 1)),
                }
            }
            for d in self.p.replica_devices(r) {
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
                            cache_bytes_per_token: per_token,
                            new_cache_bytes: new_per_token * queries as u64,
                            dtype,
                        },
                    });
                }
            }
        }
        self.push(name, OpClass::Attention, deps, OpBody::Compute(shards))
    }

    fn moe(&mut self, l: u32, input: u32, router: &mut Router) -> u32 {
        let m = self.model;
        let f = &m.ffn;
        let (h, wd, ad) = (m.hidden, self.s.weight_dtype, self.s.activation_dtype);
        let experts = f.routed_experts;
        let scores = self.gemm(format!("l{l}.moe.router"), vec![input], 1, experts, h, ad);
        let topk = self.replicated(format!("l{l}.moe.topk"), OpClass::Router, vec![scores], |rows| Kernel::TopK {
            rows,
            cols: experts,
            k: f.experts_per_token,
            dtype: ad,
        });
        // Each token dispatches from one device of its replica.
        let devices = self.p.devices as usize;
        let mut local_tokens = vec![0u32; devices];
        let mut expert_rows = vec![vec![0u32; experts as usize]; devices];
        let mut pairs = vec![vec![0u64; devices]; devices]; // tokens sent from -> to
        for r in 0..self.p.replicas() {
            let t = self.tokens(r);
            for (j, choice) in router.route(l - m.ffn.dense_layers.min(l), t).into_iter().enumerate() {
                let src = r * self.p.tp + j as u32 % self.p.tp;
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
            format!("l{l}.moe.dispatch"),
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
            format!("l{l}.moe.experts.gate_up"),
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
            self.push(format!("l{l}.moe.experts.act"), OpClass::Activation, vec![up], OpBody::Compute(act_shards));
        let down = self.push(
            format!("l{l}.moe.experts.down"),
            OpClass::Experts,
            vec![act],
            OpBody::Compute(grouped(h, inter)),
        );
        let combine = self.push(
            format!("l{l}.moe.combine"),
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
                format!("l{l}.moe.shared.gate_up"),
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
                format!("l{l}.moe.shared.act"),
                OpClass::Activation,
                vec![s_up],
                OpBody::Compute(on_dispatchers(&|t| Kernel::SwiGlu { rows: t, cols: shared_n, dtype: ad })),
            );
            let s_down = self.push(
                format!("l{l}.moe.shared.down"),
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
            format!("l{l}.moe.weighted_sum"),
            OpClass::Elementwise,
            vec![combine, last],
            OpBody::Compute(on_dispatchers(&|t| Kernel::Add { elems: t as u64 * h as u64, inputs: k, dtype: ad })),
        );
        self.gather_replicas(&format!("l{l}.moe.gather"), weighted, &local_tokens)
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
            for src in self.p.replica_devices(r) {
                for dst in self.p.replica_devices(r) {
                    let bytes = local_tokens[src as usize] as u64 * row;
                    if src != dst && bytes > 0 {
                        transfers.push(Transfer { from: Endpoint::Device(src), to: Endpoint::Device(dst), bytes });
                    }
                }
            }
        }
        self.push(name.into(), OpClass::Collective, vec![dep], OpBody::Transfer(transfers))
    }

    /// Final norm, gather of the last hidden states to every device, the
    /// vocabulary-split LM head, and logits to the host.
    fn head(&mut self, last: u32) {
        let (h, ad, wd) = (self.model.hidden, self.s.activation_dtype, self.s.weight_dtype);
        let norm = self.norm("final_norm".into(), vec![last], h);
        let d = self.p.devices;
        let row = h as u64 * ad.bytes();
        let mut transfers = Vec::new();
        for r in 0..self.p.replicas() {
            let requests = self.replica_requests[r as usize].len() as u64;
            let src = r * self.p.tp;
            for dst in 0..d {
                if requests > 0 && !self.p.replica_devices(r).contains(&dst) {
                    transfers.push(Transfer {
                        from: Endpoint::Device(src),
                        to: Endpoint::Device(dst),
                        bytes: requests * row,
                    });
                }
            }
        }
        let gather = self.push("lm_head.gather".into(), OpClass::Collective, vec![norm], OpBody::Transfer(transfers));
        let requests: u32 = self.replica_requests.iter().map(|r| r.len() as u32).sum();
        let vocab = self.model.vocab;
        let slice = |dev: u32| vocab / d + u32::from(dev < vocab % d);
        let shards = (0..d)
            .map(|dev| Shard {
                device: dev,
                kernel: Kernel::Gemm { rows: vec![requests], n: slice(dev), k: h, weight_dtype: wd, dtype: ad },
            })
            .collect();
        let head = self.push("lm_head".into(), OpClass::LmHead, vec![gather], OpBody::Compute(shards));
        let (last, candidates): (u32, Vec<u64>) = match self.s.sampling {
            Sampling::Host => (head, (0..d).map(|dev| requests as u64 * slice(dev) as u64 * ad.bytes()).collect()),
            Sampling::Device => {
                let top_k = self.s.top_k;
                let sample = (0..d)
                    .map(|dev| Shard {
                        device: dev,
                        kernel: Kernel::Sample { rows: requests, cols: slice(dev), top_k, dtype: ad },
                    })
                    .collect();
                let sampled = self.push("sample".into(), OpClass::Sampling, vec![head], OpBody::Compute(sample));
                // A candidate is a value and a vocabulary index: 4 + 4 bytes.
                (sampled, (0..d).map(|dev| requests as u64 * top_k.min(slice(dev)) as u64 * 8).collect())
            }
        };
        let logits = (0..d)
            .map(|dev| Transfer { from: Endpoint::Device(dev), to: Endpoint::Host(0), bytes: candidates[dev as usize] })
            .collect();
        self.push("logits".into(), OpClass::HostIo, vec![last], OpBody::Transfer(logits));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(placement: ExpertPlacement) -> Plan {
        Plan { attention_tensor_parallel: 1, expert_parallel: 4, expert_placement: placement }
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
