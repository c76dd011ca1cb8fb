//! Metrics derived from a run: latency distributions, utilisation per
//! component class, traffic, and the bottleneck.

use serde::{Deserialize, Serialize};
use sim_core::{ComponentStats, StatValue, Time};
use std::collections::BTreeMap;
use workloads::scheduler::RequestRecord;

/// Mean and nearest-rank percentiles of a set of values, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

impl Distribution {
    /// Exact nearest-rank percentiles: `p`-th is the smallest value with at
    /// least `p` percent of the values at or below it. `None` when empty.
    pub fn of(values: &[Time]) -> Option<Distribution> {
        if values.is_empty() {
            return None;
        }
        let mut sorted: Vec<u64> = values.iter().map(|t| t.as_ps()).collect();
        sorted.sort_unstable();
        let rank = |p: f64| {
            let index = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted[index] as f64 * 1e-12
        };
        let mean = sorted.iter().map(|&v| v as f64).sum::<f64>() / sorted.len() as f64 * 1e-12;
        Some(Distribution { mean, p50: rank(0.50), p90: rank(0.90), p99: rank(0.99) })
    }
}

/// Sum of a scalar statistic over all components, grouped by the statistic's
/// name after `prefix` (e.g. `busy.` gives `busy.memory.hbm` as `memory.hbm`).
pub fn sum_by_suffix(stats: &[ComponentStats], prefix: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for component in stats {
        for stat in component.stats.iter() {
            if let (Some(rest), StatValue::Scalar(v)) = (stat.name.strip_prefix(prefix), &stat.value) {
                *out.entry(rest.to_string()).or_insert(0) += v;
            }
        }
    }
    out
}

/// Sum of a scalar statistic named `name` over components of `kind`.
pub fn sum_stat(stats: &[ComponentStats], kind: &str, name: &str) -> u64 {
    stats.iter().filter(|c| c.kind == kind).filter_map(|c| c.stats.scalar_value(name)).sum()
}

/// Fraction of time each class of component was busy: busy time summed over
/// the class's units, over units × elapsed time.
pub fn utilization(stats: &[ComponentStats], elapsed: Time) -> BTreeMap<String, f64> {
    let busy = sum_by_suffix(stats, "busy.");
    let units = sum_by_suffix(stats, "units.");
    busy.into_iter()
        .filter_map(|(class, b)| {
            let u = *units.get(&class)?;
            (u > 0 && elapsed > Time::ZERO).then(|| (class, b as f64 / (u as f64 * elapsed.as_ps() as f64)))
        })
        .collect()
}

/// Per class, the utilisation of its busiest component (a hot link or chiplet
/// that the class average hides).
pub fn utilization_max(stats: &[ComponentStats], elapsed: Time) -> BTreeMap<String, f64> {
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    if elapsed == Time::ZERO {
        return out;
    }
    for component in stats {
        for stat in component.stats.iter() {
            let (Some(class), StatValue::Scalar(busy)) = (stat.name.strip_prefix("busy."), &stat.value) else {
                continue;
            };
            let Some(units) = component.stats.scalar_value(&format!("units.{class}")).filter(|&u| u > 0) else {
                continue;
            };
            let u = *busy as f64 / (units as f64 * elapsed.as_ps() as f64);
            let entry = out.entry(class.to_string()).or_insert(0.0);
            *entry = entry.max(u);
        }
    }
    out
}

/// The busiest resource and what its being busy means.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bottleneck {
    pub class: String,
    pub utilization: f64,
    pub explanation: String,
}

/// The class whose busiest component has the highest utilisation, among the
/// resources that do work (the DMA engines are left out: they are busy while
/// they wait on memory). Pass [`utilization_max`].
pub fn bottleneck(utilization: &BTreeMap<String, f64>) -> Option<Bottleneck> {
    let (class, &u) = utilization.iter().filter(|(c, _)| c.as_str() != "npu.dma").max_by(|a, b| a.1.total_cmp(b.1))?;
    let explanation = match class.as_str() {
        "memory.hbm" => {
            "device memory bandwidth: the chiplets spend their time streaming weights and KV cache from HBM"
        }
        "npu.matrix" => "matrix engines: the step is compute-bound",
        "npu.vector" => "vector engines: element-wise work (norms, softmax, activations) dominates",
        "link.d2d" => "die-to-die links between chiplets",
        "link.pcie" => "PCIe between cards and host",
        "link.peer" => "accelerator-to-accelerator links",
        "link.network" => "the scale-out network between nodes",
        "cpu.core" => "host CPU cores: serving work on the host dominates",
        "cpu.dram" => "host DRAM bandwidth",
        _ => "the busiest resource",
    };
    Some(Bottleneck { class: class.clone(), utilization: u, explanation: explanation.to_string() })
}

/// Output tokens per second while a serving run is in its steady state:
/// from the first request's last token (the batch has filled and begun to
/// turn over) to the last request's admission (after it the batch only
/// drains). A run of many more requests than its batch, as MLPerf's Offline
/// scenario is, converges to this rate; a short run's whole-run throughput
/// is lowered by its fill and drain.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SteadyState {
    pub tokens_per_s: f64,
    pub tokens: u64,
    pub from_s: f64,
    pub to_s: f64,
}

impl SteadyState {
    /// `None` when no request finished before the last was admitted (every
    /// request ran in one batch: there is no steady state to measure).
    pub fn of(requests: &[RequestRecord]) -> Option<SteadyState> {
        let from = requests.iter().filter_map(|q| q.last_token).min()?;
        let to = requests.iter().filter_map(|q| q.first_scheduled).max()?;
        if to <= from {
            return None;
        }
        Some(SteadyState::between(requests, from, to))
    }

    /// The rate while every request of a one-batch run runs: from the
    /// start to the first request's last token. `None` where requests were
    /// admitted after the first finished (see [`SteadyState::of`]), or where
    /// they all finished together (the whole run's rate is the same).
    pub fn full_batch(requests: &[RequestRecord]) -> Option<SteadyState> {
        let start = requests.iter().filter_map(|q| q.first_scheduled).min()?;
        let admitted = requests.iter().filter_map(|q| q.first_scheduled).max()?;
        let first_done = requests.iter().filter_map(|q| q.last_token).min()?;
        let last_done = requests.iter().filter_map(|q| q.last_token).max()?;
        (admitted <= start && first_done > start && first_done < last_done)
            .then(|| SteadyState::between(requests, start, first_done))
    }

    /// Output tokens made in `(from, to]`, per second.
    fn between(requests: &[RequestRecord], from: Time, to: Time) -> SteadyState {
        let tokens = requests.iter().flat_map(|q| &q.token_times).filter(|&&t| t > from && t <= to).count() as u64;
        let seconds = (to - from).as_secs_f64();
        SteadyState {
            tokens_per_s: tokens as f64 / seconds,
            tokens,
            from_s: from.as_secs_f64(),
            to_s: to.as_secs_f64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request admitted at `admitted` ms that made a token at each of `tokens` (ms).
    fn request(admitted: u64, tokens: &[u64]) -> RequestRecord {
        let ms = |t: u64| Time::from_ps(t * 1_000_000_000);
        RequestRecord {
            first_scheduled: Some(ms(admitted)),
            first_token: tokens.first().map(|&t| ms(t)),
            last_token: tokens.last().map(|&t| ms(t)),
            tokens: tokens.len() as u32,
            token_times: tokens.iter().map(|&t| ms(t)).collect(),
            ..RequestRecord::default()
        }
    }

    #[test]
    fn a_one_batch_run_counts_its_full_steps_apart_from_its_stragglers() {
        // Two requests at once, a token every 10 ms; the second runs on alone for two more steps.
        let requests = [request(0, &[10, 20, 30]), request(0, &[10, 20, 30, 40, 50])];
        assert_eq!(SteadyState::of(&requests), None, "no request was admitted after one finished");
        let full = SteadyState::full_batch(&requests).unwrap();
        assert_eq!((full.tokens, full.from_s, full.to_s), (6, 0.0, 0.030));
        assert!((full.tokens_per_s - 200.0).abs() < 1e-9, "{full:?}");
        // Finishing together, the whole run is the full batch: nothing to report apart.
        assert_eq!(SteadyState::full_batch(&[request(0, &[10, 20]), request(0, &[10, 20])]), None);
        // A request admitted after the first finished: the steady state, not the full batch, applies.
        let turning = [request(0, &[10, 20]), request(0, &[10, 20, 30, 40]), request(20, &[30, 40, 50])];
        assert_eq!(SteadyState::full_batch(&turning), None);
        assert!(SteadyState::of(&turning).is_none(), "admitted at the first finish: no window yet");
    }
}
