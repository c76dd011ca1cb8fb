//! The run report: one JSON object with a stable, versioned schema
//! (documented in reports/README.md), built from a run's result.

use crate::components::Components;
use crate::metrics::{Bottleneck, Distribution, SteadyState, bottleneck, sum_stat, utilization, utilization_max};
use isa::Dtype;
use serde::{Deserialize, Serialize};
use sim_core::Time;
use std::collections::BTreeMap;
use workloads::RunResult;
use workloads::lengths::Length;
use workloads::scheduler::RequestRecord;

/// Version of the JSON schema; bump it when a field changes meaning or goes away.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub npusim_version: String,
    pub hardware: Hardware,
    pub workload: WorkloadSummary,
    pub seed: u64,
    pub simulated_seconds: f64,
    pub requests: u64,
    pub tokens_generated: u64,
    pub throughput_tokens_per_s: f64,
    pub throughput_requests_per_s: f64,
    /// Output tokens per second between the batch's filling and its draining, where the run has both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steady_state: Option<SteadyState>,
    /// Output tokens per second of a one-batch run while the whole batch
    /// runs: from the start to the first request's last token, where that
    /// is before the end (requests finishing apart, as with drafts accepted
    /// at random, leave a tail of steps for a few stragglers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_batch: Option<SteadyState>,
    /// Requests that met the workload's service-level objective, when it sets one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goodput: Option<Goodput>,
    /// Times requests were preempted (their KV cache taken back) in all.
    pub preemptions: u64,
    pub latency: Latency,
    pub steps: Steps,
    pub energy_j: Energy,
    pub joules_per_token: f64,
    /// The accelerator cards' energy per token alone, as published figures (GPU board energy) count it.
    pub accelerator_joules_per_token: f64,
    pub average_power_w: f64,
    /// One card's average power against its TDP, where the system has cards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_power: Option<CardPower>,
    /// Cost per token, where the hardware spec has a `[cost]` table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::cost::Cost>,
    /// Per component class, busy time over units x simulated time.
    pub utilization: BTreeMap<String, f64>,
    /// Per component class, the utilisation of its busiest component.
    pub utilization_max: BTreeMap<String, f64>,
    pub bottleneck: Option<Bottleneck>,
    pub traffic_bytes: BTreeMap<String, u64>,
    pub memory_per_chiplet_bytes: MemoryPerChiplet,
    /// Every link, memory channel and on-chip network, with busy time and bytes.
    pub components: Components,
    pub events: u64,
    /// Wall-clock time of the simulation: not in the JSON, which the same
    /// inputs and seed reproduce byte for byte (`--out` puts it in the manifest).
    #[serde(skip)]
    pub wall_seconds: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hardware {
    pub name: String,
    pub description: String,
    pub nodes: u32,
    pub cards_per_node: u32,
    pub chiplets: u32,
    /// Peak dense FLOP/s of all accelerators, per supported dtype.
    pub peak_flops: BTreeMap<String, f64>,
    pub memory_bandwidth_bytes_per_s: f64,
    pub memory_capacity_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkloadSummary {
    pub name: String,
    pub model: String,
    pub phase: String,
    pub batch: u32,
    /// A count, or the distribution each request's count was drawn from.
    pub context_tokens: Length,
    pub output_tokens: Length,
    pub weight_dtype: Dtype,
    pub activation_dtype: Dtype,
    pub kv_dtype: Dtype,
    pub pipeline_parallel: u32,
    pub attention_tensor_parallel: u32,
    pub expert_parallel: u32,
    pub data_parallel: u32,
    /// The prompt lengths of the requests served (from a trace, a length
    /// file or the scenario's draws), in tokens.
    pub served_prompt_tokens: Option<Counts>,
    /// The output tokens the requests were given.
    pub served_output_tokens: Option<Counts>,
}

/// A spread of whole counts: mean and nearest-rank percentiles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub mean: f64,
    pub min: u64,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

impl Counts {
    pub fn of(values: impl Iterator<Item = u64>) -> Option<Counts> {
        let mut sorted: Vec<u64> = values.collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_unstable();
        let rank = |p: f64| sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
        Some(Counts {
            mean: sorted.iter().sum::<u64>() as f64 / sorted.len() as f64,
            min: sorted[0],
            p50: rank(0.5),
            p99: rank(0.99),
            max: sorted[sorted.len() - 1],
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Arrival to first token, per request.
    pub ttft_s: Option<Distribution>,
    /// Time per output token after the first, per request.
    pub tpot_s: Option<Distribution>,
    /// Arrival to last token, per request.
    pub e2e_s: Option<Distribution>,
    /// Gaps between consecutive tokens of a request, over all requests
    /// (accepted drafts arrive together, a gap of 0).
    pub itl_s: Option<Distribution>,
    /// With `serving.warmup` or `serving.cooldown`: the arrival times whose
    /// requests the latencies count, and how many arrived in them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<LatencyWindow>,
}

/// The requests whose latencies a run with a warm-up or a cool-down counts:
/// those arriving from `from_s` to `until_s`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyWindow {
    pub from_s: f64,
    pub until_s: f64,
    pub requests: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Goodput {
    pub slo_ttft_s: f64,
    pub slo_tpot_s: f64,
    /// Requests whose TTFT and TPOT both met the objective.
    pub requests: u64,
    pub fraction: f64,
    pub requests_per_s: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Steps {
    pub count: u64,
    /// Of them, steps whose device part was replayed from an earlier one of the same shape.
    pub replayed: u64,
    pub mean_s: f64,
    /// Of all step time: host work before launch, device work until the last
    /// logits reach the host, host work after (sampling). Fractions sum to 1.
    pub share: StepShare,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepShare {
    pub host_before_launch: f64,
    pub devices: f64,
    pub host_after_logits: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Energy {
    pub total: f64,
    /// The part of `total` the accelerator cards draw (`models::energy::is_accelerator`).
    pub accelerators: f64,
    /// Parts that add up to `total`.
    pub breakdown: BTreeMap<String, f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CardPower {
    /// The cards' energy over the simulated time, per card.
    pub average_w: f64,
    pub tdp_w: f64,
    /// The average exceeds the TDP: the energy model draws more than the card may.
    pub over_tdp: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryPerChiplet {
    pub weights: u64,
    pub kv_cache: u64,
    pub capacity: u64,
}

impl Report {
    pub fn new(r: &RunResult, wall_seconds: f64) -> Report {
        let hw = &r.hardware;
        let card = hw.node.card.as_ref();
        let cards = (hw.nodes * hw.node.cards) as f64;
        let peak_flops = card
            .map(|c| {
                Dtype::ALL
                    .iter()
                    .filter(|d| c.peak_flops(**d) > 0.0)
                    .map(|d| (d.to_string(), c.peak_flops(*d) * cards))
                    .collect()
            })
            .unwrap_or_default();
        let seconds = r.simulated.as_secs_f64();
        let tokens: u64 = r.requests.iter().map(|q| q.tokens as u64).sum();
        // Latencies count the requests that arrived between the warm-up and the cool-down.
        let last_arrival = r.requests.iter().map(|q| q.arrival).max().unwrap_or(Time::ZERO);
        let window = r.workload.serving.latency_window(last_arrival);
        let timed: Vec<&RequestRecord> =
            r.requests.iter().filter(|q| window.as_ref().is_some_and(|w| w.contains(&q.arrival))).collect();
        let ttft: Vec<Time> = timed.iter().filter_map(|q| q.ttft()).collect();
        let e2e: Vec<Time> = timed.iter().filter_map(|q| q.e2e()).collect();
        let tpot: Vec<Time> = timed.iter().filter_map(|q| q.tpot()).collect();
        let itl: Vec<Time> = timed.iter().flat_map(|q| q.token_times.windows(2).map(|w| w[1] - w[0])).collect();
        let goodput = r.workload.serving.slo.map(|slo| {
            let (ttft_max, tpot_max) = (slo.ttft.time(), slo.tpot.time());
            let met = timed
                .iter()
                .filter(|q| q.ttft().is_some_and(|t| t <= ttft_max) && q.tpot().is_none_or(|t| t <= tpot_max))
                .count() as u64;
            Goodput {
                slo_ttft_s: ttft_max.as_secs_f64(),
                slo_tpot_s: tpot_max.as_secs_f64(),
                requests: met,
                fraction: if timed.is_empty() { 0.0 } else { met as f64 / timed.len() as f64 },
                requests_per_s: if seconds > 0.0 { met as f64 / seconds } else { 0.0 },
            }
        });
        let step_total: f64 = r.steps.iter().map(|s| (s.end - s.start).as_secs_f64()).sum();
        let share = |f: &dyn Fn(&workloads::runtime::StepRecord) -> Time| {
            if step_total > 0.0 { r.steps.iter().map(|s| f(s).as_secs_f64()).sum::<f64>() / step_total } else { 0.0 }
        };
        let total_energy = r.energy.total();
        let accelerator_energy = r.energy.accelerators();
        let average_power_w = if seconds > 0.0 { total_energy / seconds } else { 0.0 };
        let joules_per_token = if tokens > 0 { total_energy / tokens as f64 } else { 0.0 };
        let throughput = if seconds > 0.0 { tokens as f64 / seconds } else { 0.0 };
        let card_power = card.filter(|_| cards > 0.0 && seconds > 0.0).map(|c| {
            let average_w = accelerator_energy / seconds / cards;
            CardPower { average_w, tdp_w: c.power.tdp.watts(), over_tdp: average_w > c.power.tdp.watts() }
        });
        let util = utilization(&r.stats, r.simulated);
        let util_max = utilization_max(&r.stats, r.simulated);
        let mut traffic = BTreeMap::new();
        traffic.insert("hbm_read".into(), sum_stat(&r.stats, "memory.hbm", "read_bytes"));
        traffic.insert("hbm_write".into(), sum_stat(&r.stats, "memory.hbm", "write_bytes"));
        for class in ["link.d2d", "link.pcie", "link.peer", "link.network"] {
            traffic.insert(class.trim_start_matches("link.").into(), sum_stat(&r.stats, class, "bytes"));
        }
        traffic.insert(
            "host_dram".into(),
            sum_stat(&r.stats, "cpu.dram", "read_bytes") + sum_stat(&r.stats, "cpu.dram", "write_bytes"),
        );
        let s = &r.workload.scenario;
        Report {
            schema_version: SCHEMA_VERSION,
            npusim_version: env!("CARGO_PKG_VERSION").to_string(),
            hardware: Hardware {
                name: hw.name.clone(),
                description: hw.description.clone(),
                nodes: hw.nodes,
                cards_per_node: hw.node.cards,
                chiplets: r.devices,
                peak_flops,
                memory_bandwidth_bytes_per_s: card.map_or(0.0, |c| c.memory_bandwidth().bytes_per_s() * cards),
                memory_capacity_bytes: card.map_or(0, |c| c.memory_capacity().get() * cards as u64),
            },
            workload: WorkloadSummary {
                name: r.workload.name.clone(),
                model: r.model.as_ref().map_or_else(|| r.workload.model.clone(), |m| m.name.clone()),
                phase: format!("{:?}", s.phase).to_lowercase(),
                batch: s.batch,
                context_tokens: s.context_tokens.clone(),
                output_tokens: s.output_tokens.clone(),
                weight_dtype: s.weight_dtype,
                activation_dtype: s.activation_dtype,
                kv_dtype: s.kv_dtype,
                pipeline_parallel: r.placement.stages,
                attention_tensor_parallel: r.placement.tp,
                expert_parallel: r.placement.ep,
                data_parallel: r.placement.replicas(),
                served_prompt_tokens: Counts::of(r.requests.iter().map(|q| u64::from(q.prompt_tokens))),
                served_output_tokens: Counts::of(r.requests.iter().map(|q| u64::from(q.tokens))),
            },
            seed: r.seed,
            simulated_seconds: seconds,
            requests: r.requests.len() as u64,
            tokens_generated: tokens,
            throughput_tokens_per_s: throughput,
            throughput_requests_per_s: if seconds > 0.0 { r.requests.len() as f64 / seconds } else { 0.0 },
            steady_state: SteadyState::of(&r.requests),
            full_batch: SteadyState::full_batch(&r.requests),
            goodput,
            preemptions: r.requests.iter().map(|q| q.preemptions as u64).sum(),
            latency: Latency {
                ttft_s: Distribution::of(&ttft),
                tpot_s: Distribution::of(&tpot),
                e2e_s: Distribution::of(&e2e),
                itl_s: Distribution::of(&itl),
                window: window
                    .filter(|_| r.workload.serving.warmup.is_some() || r.workload.serving.cooldown.is_some())
                    .map(|w| LatencyWindow {
                        from_s: w.start().as_secs_f64(),
                        until_s: w.end().as_secs_f64(),
                        requests: timed.len() as u64,
                    }),
            },
            steps: Steps {
                count: r.steps.len() as u64,
                replayed: r.replayed_steps,
                mean_s: if r.steps.is_empty() { 0.0 } else { step_total / r.steps.len() as f64 },
                share: StepShare {
                    host_before_launch: share(&|s| s.launched - s.start),
                    devices: share(&|s| s.logits - s.launched),
                    host_after_logits: share(&|s| s.end - s.logits),
                },
            },
            energy_j: Energy {
                total: total_energy,
                accelerators: accelerator_energy,
                breakdown: r.energy.parts.clone(),
            },
            joules_per_token,
            accelerator_joules_per_token: if tokens > 0 { accelerator_energy / tokens as f64 } else { 0.0 },
            card_power,
            cost: crate::cost::cost(&r.hardware, throughput, average_power_w, joules_per_token),
            average_power_w,
            bottleneck: bottleneck(&util_max),
            utilization: util,
            utilization_max: util_max,
            traffic_bytes: traffic,
            memory_per_chiplet_bytes: MemoryPerChiplet {
                weights: r.memory.weights,
                kv_cache: r.memory.kv_cache,
                capacity: r.memory.capacity,
            },
            components: Components::of(&r.stats, r.simulated),
            events: r.events,
            wall_seconds,
        }
    }

    /// The report as pretty-printed JSON, with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a report always serialises");
        text.push('\n');
        text
    }
}
