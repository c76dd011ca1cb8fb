//! The MoE layer of a step: the router, each token's hidden state sent to
//! the devices holding its experts (once per device), the experts' grouped
//! GEMMs, and the weighted outputs sent back and combined.

use super::Builder;
use crate::graph::{Kernel, OpBody, OpClass, Shard, Transfer};
use crate::routing::Router;
use crate::workload::HostOp;
use models::fabric::Endpoint;

impl Builder<'_> {
    pub(super) fn moe(&mut self, at: &str, l: u32, input: u32, router: &mut Router) -> u32 {
        let m = self.model;
        let f = &m.ffn;
        let (h, wd, ad, gd) = (m.hidden, self.s.weight_dtype, self.s.activation_dtype, self.s.gemm_dtype());
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
                    Shard { device: d as u32, kernel: Kernel::Gemm { rows: local, n, k, weight_dtype: wd, dtype: gd } }
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
                    dtype: gd,
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
                    dtype: gd,
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
}
