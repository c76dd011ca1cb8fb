//! Where the model lives: data-parallel replicas of tensor-parallel
//! devices, pipeline stages, and the routed experts' places in each expert
//! group (balanced, load-aware, or the hottest replicated on every device).

use crate::workload::{ExpertPlacement, HostOp, Plan};

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
    pub(crate) fn holds(&self, device: u32, expert: u32) -> bool {
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
