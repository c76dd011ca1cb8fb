//! The end of a step: the final norm, the LM head split by vocabulary
//! (over all devices, or over each independent replica's own), sampling on
//! the devices or the host, and the multi-token-prediction drafts.

use super::{Builder, RequestStep};
use crate::graph::{Kernel, OpBody, OpClass, Shard, Transfer};
use crate::routing::Router;
use crate::workload::Sampling;
use models::fabric::Endpoint;

impl Builder<'_> {
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
                kernel: Kernel::Gemm { rows: vec![rows], n, k: h, weight_dtype: wd, dtype: self.s.gemm_dtype() },
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
    pub(super) fn head(&mut self, last: u32) -> u32 {
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
    pub(super) fn drafts(&mut self, k: u32, hidden: u32, head: u32, router: &mut Router) {
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
