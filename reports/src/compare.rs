//! One workload on several systems, side by side: the headline figures of
//! each run and their ratio to the first system's.

use crate::report::Report;
use crate::summary::{grouped, time};
use serde::Serialize;
use std::fmt::Write;

/// A figure compared across systems: how to read it and how to print it.
struct Figure {
    name: &'static str,
    unit: &'static str,
    value: fn(&Report) -> Option<f64>,
    print: fn(f64) -> String,
}

fn latency(r: &Report, pick: fn(&crate::metrics::Distribution) -> f64, ttft: bool) -> Option<f64> {
    let d = if ttft { r.latency.ttft_s.as_ref() } else { r.latency.tpot_s.as_ref() };
    d.map(pick)
}

fn tokens_per_s_per_w(r: &Report) -> Option<f64> {
    (r.average_power_w > 0.0).then(|| r.throughput_tokens_per_s / r.average_power_w)
}

const FIGURES: &[Figure] = &[
    Figure {
        name: "throughput",
        unit: "tokens/s",
        value: |r| Some(r.throughput_tokens_per_s),
        print: |v| format!("{} tokens/s", grouped(v)),
    },
    Figure { name: "TTFT p50", unit: "s", value: |r| latency(r, |d| d.p50, true), print: time },
    Figure { name: "TTFT p99", unit: "s", value: |r| latency(r, |d| d.p99, true), print: time },
    Figure { name: "TPOT p50", unit: "s", value: |r| latency(r, |d| d.p50, false), print: time },
    Figure { name: "TPOT p99", unit: "s", value: |r| latency(r, |d| d.p99, false), print: time },
    Figure { name: "energy per token, node", unit: "J/token", value: |r| Some(r.joules_per_token), print: joules },
    Figure {
        name: "energy per token, accelerators",
        unit: "J/token",
        value: |r| Some(r.accelerator_joules_per_token),
        print: joules,
    },
    Figure {
        name: "energy per token, at the wall",
        unit: "J/token",
        value: |r| r.cost.as_ref().and_then(|c| c.wall_joules_per_token),
        print: joules,
    },
    Figure {
        name: "tokens per joule",
        unit: "tokens/s/W",
        value: tokens_per_s_per_w,
        print: |v| format!("{v:.3} tokens/J"),
    },
    Figure {
        name: "average power",
        unit: "W",
        value: |r| Some(r.average_power_w),
        print: |v| format!("{} W", grouped(v)),
    },
    Figure {
        name: "cost per million tokens",
        unit: "USD",
        value: |r| r.cost.as_ref().and_then(|c| c.usd_per_million_tokens),
        print: |v| format!("${v:.3}"),
    },
];

fn joules(v: f64) -> String {
    format!("{v:.3} J/token")
}

/// One figure of one system, and its ratio to the first system's.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Compared {
    pub figure: &'static str,
    pub unit: &'static str,
    /// Per system, in the order given; null where the run does not give it.
    pub values: Vec<Option<f64>>,
    /// Per system: its value over the first system's.
    pub ratios: Vec<Option<f64>>,
}

/// Every figure of `reports`, with the ratios to the first.
pub fn compare(reports: &[Report]) -> Vec<Compared> {
    FIGURES
        .iter()
        .map(|f| {
            let values: Vec<Option<f64>> = reports.iter().map(f.value).collect();
            let base = values.first().copied().flatten().filter(|b| *b != 0.0);
            let ratios = values.iter().map(|v| Some(v.as_ref()? / base?)).collect();
            Compared { figure: f.name, unit: f.unit, values, ratios }
        })
        .collect()
}

/// Each figure's name and its printed cells, one per system: the value in
/// its unit, and with several systems the ratio to the first.
pub fn rows(reports: &[Report]) -> Vec<(&'static str, Vec<String>)> {
    FIGURES
        .iter()
        .zip(compare(reports))
        .map(|(figure, compared)| {
            let cells = compared
                .values
                .iter()
                .zip(&compared.ratios)
                .map(|(v, r)| match (v, r) {
                    (Some(v), Some(r)) if reports.len() > 1 => format!("{} ({r:.2}x)", (figure.print)(*v)),
                    (Some(v), _) => (figure.print)(*v),
                    (None, _) => "-".to_string(),
                })
                .collect();
            (figure.name, cells)
        })
        .collect()
}

/// The comparison as a Markdown table: a row per figure, a column per system.
pub fn table(reports: &[Report]) -> String {
    let mut s = String::new();
    let names: Vec<&str> = reports.iter().map(|r| r.hardware.name.as_str()).collect();
    if let Some(first) = reports.first() {
        let _ = writeln!(
            s,
            "{} ({} requests, seed {}); ratios are to {}\n",
            first.workload.name, first.requests, first.seed, names[0]
        );
    }
    let _ = writeln!(s, "| figure | {} |", names.join(" | "));
    let _ = writeln!(s, "| --- |{}", " ---: |".repeat(names.len()));
    for (name, cells) in rows(reports) {
        let _ = writeln!(s, "| {name} | {} |", cells.join(" | "));
    }
    if let Some(note) = cost_note(reports) {
        let _ = writeln!(s, "\n{note}");
    }
    s
}

/// What the systems without a cost per token lack, if any does.
pub fn cost_note(reports: &[Report]) -> Option<String> {
    let missing: Vec<String> = reports
        .iter()
        .filter_map(|r| {
            let c = r.cost.as_ref();
            let missing = c.map_or_else(|| "a [cost] table".to_string(), |c| c.missing.join(", "));
            c.is_none_or(|c| c.usd_per_million_tokens.is_none()).then(|| format!("{}: {missing}", r.hardware.name))
        })
        .collect();
    (!missing.is_empty()).then(|| format!("Cost per token needs, in the hardware spec: {}.", missing.join("; ")))
}
