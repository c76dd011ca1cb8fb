//! # reports: what a run means, in numbers and words
//!
//! Turns a [`workloads::RunResult`] into a [`Report`]: latency percentiles
//! (TTFT, TPOT, inter-token, end to end), throughput and goodput under the
//! workload's SLO, energy with its breakdown, joules per
//! token, utilisation per component class, traffic, and the bottleneck. A
//! report prints as a short terminal [`summary`] or as versioned JSON
//! ([`Report::to_json`], schema in `reports/README.md`); [`requests_csv`]
//! gives one line per request; [`validation`] compares predictions with
//! published measurements (`npusim validate-suite`). This crate computes
//! and formats; it never runs simulations and never writes files.

pub mod compare;
pub mod components;
pub mod cost;
pub mod html;
pub mod metrics;
pub mod micro;
pub mod plots;
mod report;
mod requests;
mod summary;
pub mod validation;

pub use report::{
    Counts, Energy, Goodput, Hardware, Latency, MemoryPerChiplet, Report, SCHEMA_VERSION, StepShare, Steps,
    WorkloadSummary,
};
pub use requests::requests_csv;
pub use summary::summary;

#[cfg(test)]
mod tests {
    use super::metrics::Distribution;
    use sim_core::Time;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<Time> = (1..=100).map(Time::from_ns).collect();
        let d = Distribution::of(&values).unwrap();
        assert_eq!(d.p50, 50e-9);
        assert_eq!(d.p90, 90e-9);
        assert_eq!(d.p99, 99e-9);
        assert!((d.mean - 50.5e-9).abs() < 1e-15);
        let one = Distribution::of(&[Time::from_ns(7)]).unwrap();
        assert_eq!((one.p50, one.p99), (7e-9, 7e-9));
        assert!(Distribution::of(&[]).is_none());
    }
}
