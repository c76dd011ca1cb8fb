//! The validation suite's cases and its verdict: what each case measured on
//! real hardware (with its source), what npusim predicts, and the error.
//!
//! A case file (`validation/cases/*.toml`) names one published measurement:
//! the hardware, what ran (a serving workload, a GEMM or an attention
//! kernel), and one or more published metrics. This module reads case files
//! from text, takes the predicted figures out of a run's report or a
//! microbenchmark, and summarises the errors per metric group. Running the
//! cases is the command line's job (`npusim validate-suite`).

use crate::Report;
use isa::Dtype;
use models::input::{self, InputError, Invalid};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// One published measurement and how to reproduce it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub id: String,
    pub title: String,
    /// Where the published figures come from.
    pub source: String,
    /// When they were published (YYYY-MM-DD).
    pub date: String,
    /// Whether any efficiency figure of a preset was calibrated on this case.
    #[serde(default)]
    pub role: Role,
    /// How the setting differs from the published run (scaled request
    /// counts, assumed lengths) and why.
    #[serde(default)]
    pub note: String,
    pub setup: Setup,
    pub metrics: Vec<Published>,
}

/// Held out (never used to set a preset's figure) or calibration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    #[default]
    HeldOut,
    Calibration,
}

/// What runs: hardware is a preset name or a file of the suite (`hardware/x.toml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Setup {
    /// `npusim run` of a workload file of the suite. `engines`: the
    /// published system ran this many copies of it side by side, sharing
    /// nothing (as MLPerf's TP 2 engines of a node do); its rates are the
    /// copy's times `engines`, its latencies and energy per token the copy's.
    Run {
        hardware: String,
        workload: String,
        #[serde(default = "one", skip_serializing_if = "is_one")]
        engines: u32,
    },
    /// `npusim micro gemm`.
    Gemm { hardware: String, m: u32, n: u32, k: u32, dtype: Dtype },
    /// `npusim micro attention --form mla`: absorbed MLA decode, with
    /// `queries` per request (1, or 2 when a draft is verified).
    MlaDecode {
        hardware: String,
        batch: u32,
        heads: u32,
        context: u32,
        #[serde(default = "one")]
        queries: u32,
        dtype: Dtype,
    },
    /// `npusim micro attention --form mha`: causal prefill.
    Prefill { hardware: String, batch: u32, queries: u32, heads: u32, head_dim: u32, dtype: Dtype },
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl Setup {
    pub fn hardware(&self) -> &str {
        match self {
            Setup::Run { hardware, .. }
            | Setup::Gemm { hardware, .. }
            | Setup::MlaDecode { hardware, .. }
            | Setup::Prefill { hardware, .. } => hardware,
        }
    }
}

/// A published figure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Published {
    pub metric: Metric,
    pub value: f64,
    /// The published unit, as a reader checks it (the metric fixes the unit npusim compares in).
    pub unit: String,
}

/// What is compared. Serving metrics come from a run's report; kernel
/// metrics from a microbenchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Output tokens/s between the batch's filling and draining (tokens/s).
    SteadyTokensPerS,
    /// The same, per node of the system (tokens/s).
    SteadyTokensPerSPerNode,
    /// Output tokens/s over the whole run, per node.
    TokensPerSPerNode,
    /// Output tokens/s of a one-batch run while every request runs, per
    /// node: a decode run's steps before its first request finishes (see
    /// `Report::full_batch`), as a serving system whose batch stays full
    /// runs them.
    FullBatchTokensPerSPerNode,
    TtftMeanS,
    TpotMeanS,
    TpotP99S,
    /// The accelerator cards' energy per output token (J).
    AcceleratorJPerToken,
    /// A card's average power over the run (W), as NVML reads it.
    AcceleratorPowerW,
    /// Achieved TFLOP/s of a kernel.
    Tflops,
    /// Achieved device-memory GB/s of a kernel (10^9 bytes/s).
    GbPerS,
}

impl Metric {
    /// The group whose mean absolute error the suite reports.
    pub fn group(self) -> &'static str {
        match self {
            Metric::SteadyTokensPerS
            | Metric::SteadyTokensPerSPerNode
            | Metric::TokensPerSPerNode
            | Metric::FullBatchTokensPerSPerNode => "throughput",
            Metric::TtftMeanS => "ttft",
            Metric::TpotMeanS | Metric::TpotP99S => "tpot",
            Metric::AcceleratorJPerToken | Metric::AcceleratorPowerW => "energy",
            Metric::Tflops | Metric::GbPerS => "kernel",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Metric::SteadyTokensPerS
            | Metric::SteadyTokensPerSPerNode
            | Metric::TokensPerSPerNode
            | Metric::FullBatchTokensPerSPerNode => "tokens/s",
            Metric::TtftMeanS | Metric::TpotMeanS | Metric::TpotP99S => "s",
            Metric::AcceleratorJPerToken => "J/token",
            Metric::AcceleratorPowerW => "W",
            Metric::Tflops => "TFLOP/s",
            Metric::GbPerS => "GB/s",
        }
    }

    /// The name case files use.
    pub fn name(self) -> &'static str {
        match self {
            Metric::SteadyTokensPerS => "steady_tokens_per_s",
            Metric::SteadyTokensPerSPerNode => "steady_tokens_per_s_per_node",
            Metric::TokensPerSPerNode => "tokens_per_s_per_node",
            Metric::FullBatchTokensPerSPerNode => "full_batch_tokens_per_s_per_node",
            Metric::TtftMeanS => "ttft_mean_s",
            Metric::TpotMeanS => "tpot_mean_s",
            Metric::TpotP99S => "tpot_p99_s",
            Metric::AcceleratorJPerToken => "accelerator_j_per_token",
            Metric::AcceleratorPowerW => "accelerator_power_w",
            Metric::Tflops => "tflops",
            Metric::GbPerS => "gb_per_s",
        }
    }

    fn is_kernel(self) -> bool {
        self.group() == "kernel"
    }

    /// The metric's value in what a setup measured; `None` where it does
    /// not have it (a run without a steady state, a kernel metric of a run).
    pub fn of(self, measured: &Measured) -> Option<f64> {
        let r = match (self, measured) {
            (Metric::Tflops, Measured::Kernel { flops, .. }) => return Some(flops / 1e12),
            (Metric::GbPerS, Measured::Kernel { bytes_per_s, .. }) => return Some(bytes_per_s / 1e9),
            (_, Measured::Kernel { .. }) => return None,
            (_, Measured::Serving { report, engines }) => (report, f64::from(*engines)),
        };
        let (r, engines) = r;
        let nodes = f64::from(r.hardware.nodes.max(1));
        match self {
            Metric::SteadyTokensPerS => r.steady_state.map(|s| s.tokens_per_s * engines),
            Metric::SteadyTokensPerSPerNode => r.steady_state.map(|s| s.tokens_per_s * engines / nodes),
            Metric::TokensPerSPerNode => Some(r.throughput_tokens_per_s * engines / nodes),
            Metric::FullBatchTokensPerSPerNode => r.full_batch.map(|s| s.tokens_per_s * engines / nodes),
            Metric::TtftMeanS => r.latency.ttft_s.map(|d| d.mean),
            Metric::TpotMeanS => r.latency.tpot_s.map(|d| d.mean),
            Metric::TpotP99S => r.latency.tpot_s.map(|d| d.p99),
            Metric::AcceleratorJPerToken => Some(r.accelerator_joules_per_token),
            Metric::AcceleratorPowerW => r.card_power.as_ref().map(|c| c.average_w),
            Metric::Tflops | Metric::GbPerS => None,
        }
    }
}

/// What a setup gave: a serving run's report, or a kernel's achieved rates.
#[derive(Clone, Debug, PartialEq)]
pub enum Measured {
    /// A run's report, and the copies of it the published system ran.
    Serving { report: Box<Report>, engines: u32 },
    /// FLOP/s, and compulsory bytes per second (as the kernels' authors count them).
    Kernel { flops: f64, bytes_per_s: f64 },
}

fn validate(case: &Case) -> Vec<Invalid> {
    let mut out = Vec::new();
    if case.metrics.is_empty() {
        out.push(Invalid::new("metrics", "expected at least one published metric"));
    }
    let kernel = !matches!(case.setup, Setup::Run { .. });
    for (i, m) in case.metrics.iter().enumerate() {
        if !(m.value > 0.0 && m.value.is_finite()) {
            out.push(Invalid::new(format!("metrics[{i}].value"), format!("expected above 0, found {}", m.value)));
        }
        if m.metric.is_kernel() != kernel {
            let expected = if kernel { "tflops or gb_per_s" } else { "a serving metric" };
            out.push(Invalid::new(format!("metrics[{i}].metric"), format!("expected {expected} for this setup")));
        }
        if m.unit != m.metric.unit() {
            out.push(Invalid::new(
                format!("metrics[{i}].unit"),
                format!("expected `{}` (the metric's unit), found `{}`", m.metric.unit(), m.unit),
            ));
        }
    }
    out
}

/// Parse and check one case file.
pub fn load_case(source: &str, text: &str) -> Result<Case, InputError> {
    input::load(source, text, &|_| None, validate)
}

/// One metric of one case: published against predicted.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub case: String,
    pub metric: Metric,
    pub group: &'static str,
    pub unit: &'static str,
    pub published: f64,
    /// `None` when the case failed to run or the run lacks the metric.
    pub predicted: Option<f64>,
    /// (predicted − published) / published.
    pub error: Option<f64>,
    pub role: Role,
}

/// Per metric group, over the held-out rows that ran.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupError {
    pub group: &'static str,
    pub rows: usize,
    pub mean_absolute_error: f64,
    pub worst_case: String,
    pub worst_error: f64,
}

/// The suite's verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    pub rows: Vec<Row>,
    /// Held-out rows only: what a calibrated figure was fitted to is not evidence.
    pub held_out: Vec<GroupError>,
    pub calibration: Vec<GroupError>,
    /// Cases that did not run, with why.
    pub failures: Vec<(String, String)>,
}

/// A case's rows, one per published metric, from what its setup measured
/// (`None`: it did not run).
pub fn rows(case: &Case, measured: Option<&Measured>) -> Vec<Row> {
    case.metrics
        .iter()
        .map(|m| (m, measured.and_then(|x| m.metric.of(x))))
        .map(|(m, p)| Row {
            case: case.id.clone(),
            metric: m.metric,
            group: m.metric.group(),
            unit: m.metric.unit(),
            published: m.value,
            predicted: p,
            error: p.map(|p| (p - m.value) / m.value),
            role: case.role,
        })
        .collect()
}

fn group_errors(rows: &[Row], role: Role) -> Vec<GroupError> {
    let mut groups: Vec<&'static str> = rows.iter().map(|r| r.group).collect();
    groups.sort_unstable();
    groups.dedup();
    groups
        .into_iter()
        .filter_map(|group| {
            let errors: Vec<(&Row, f64)> = rows
                .iter()
                .filter(|r| r.group == group && r.role == role)
                .filter_map(|r| r.error.map(|e| (r, e)))
                .collect();
            let (worst, worst_error) = errors.iter().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))?;
            Some(GroupError {
                group,
                rows: errors.len(),
                mean_absolute_error: errors.iter().map(|(_, e)| e.abs()).sum::<f64>() / errors.len() as f64,
                worst_case: format!("{} {}", worst.case, worst.metric.name()),
                worst_error: *worst_error,
            })
        })
        .collect()
}

impl Verdict {
    pub fn new(rows: Vec<Row>, failures: Vec<(String, String)>) -> Verdict {
        let held_out = group_errors(&rows, Role::HeldOut);
        let calibration = group_errors(&rows, Role::Calibration);
        Verdict { rows, held_out, calibration, failures }
    }

    /// The table of every row, then the errors per group.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "| case | metric | unit | published | npusim | error | role |");
        let _ = writeln!(s, "|---|---|---|---:|---:|---:|---|");
        for r in &self.rows {
            let predicted = r.predicted.map_or_else(|| "-".to_string(), figure);
            let error = r.error.map_or_else(|| "-".to_string(), |e| format!("{:+.1}%", e * 100.0));
            let role = if r.role == Role::HeldOut { "held out" } else { "calibration" };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {predicted} | {error} | {role} |",
                r.case,
                r.metric.name(),
                r.unit,
                figure(r.published)
            );
        }
        for (title, groups) in [("held out", &self.held_out), ("calibration", &self.calibration)] {
            if groups.is_empty() {
                continue;
            }
            let _ = writeln!(s, "\nmean absolute error, {title} cases:");
            for g in groups {
                let _ = writeln!(
                    s,
                    "  {:<11} {:>5.1}% over {} figures; worst {} at {:+.1}%",
                    g.group,
                    g.mean_absolute_error * 100.0,
                    g.rows,
                    g.worst_case,
                    g.worst_error * 100.0
                );
            }
        }
        for (case, why) in &self.failures {
            let _ = writeln!(s, "\ncase {case} did not run: {why}");
        }
        s
    }
}

/// Three significant figures, without exponent for the magnitudes the suite has.
fn figure(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASE: &str = r#"
id = "X1"
title = "t"
source = "https://example.invalid"
date = "2025-01-01"
[setup]
kind = "gemm"
hardware = "h800-node"
m = 64
n = 2112
k = 7168
dtype = "fp8"
[[metrics]]
metric = "tflops"
value = 206
unit = "TFLOP/s"
"#;

    #[test]
    fn a_case_loads_and_a_wrong_unit_or_metric_is_located() {
        let case = load_case("x1.toml", CASE).unwrap();
        assert_eq!(case.role, Role::HeldOut);
        let e = load_case("x1.toml", &CASE.replace("unit = \"TFLOP/s\"", "unit = \"TFLOPS\"")).unwrap_err();
        assert_eq!(e.problems[0].path, "metrics[0].unit");
        let e = load_case("x1.toml", &CASE.replace("\"tflops\"", "\"tpot_mean_s\"")).unwrap_err();
        assert_eq!(e.problems[0].path, "metrics[0].metric");
    }

    #[test]
    fn errors_are_signed_and_the_mean_counts_held_out_rows_only() {
        let mut case = load_case("x1.toml", CASE).unwrap();
        let held = rows(&case, Some(&Measured::Kernel { flops: 103e12, bytes_per_s: 0.0 }));
        assert!((held[0].error.unwrap() + 0.5).abs() < 1e-12);
        case.role = Role::Calibration;
        case.id = "X2".into();
        let calibrated = rows(&case, Some(&Measured::Kernel { flops: 206e12 * 1.1, bytes_per_s: 0.0 }));
        let v = Verdict::new([held, calibrated].concat(), Vec::new());
        assert_eq!(v.held_out.len(), 1);
        assert!((v.held_out[0].mean_absolute_error - 0.5).abs() < 1e-12);
        assert!((v.calibration[0].mean_absolute_error - 0.1).abs() < 1e-9);
        assert!(v.summary().contains("-50.0%"));
    }
}
