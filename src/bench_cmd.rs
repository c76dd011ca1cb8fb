//! `npusim bench`: the benchmark suite. Each case runs one simulation a user
//! runs, timed on the wall clock on one thread, against its target. Wall
//! time is measured here and only here: no test asserts it.

use crate::Failure;
use std::fmt::Write as _;
use std::time::Instant;
use workloads::lengths::Length;

/// One benchmark: what it runs, its target, and the run (its events).
struct Case {
    name: &'static str,
    what: &'static str,
    /// The most wall seconds it should take (issue "design-space sweeps"), if it has a target.
    target_s: Option<f64>,
    run: fn(u64) -> Result<u64, String>,
}

const CASES: &[Case] = &[
    Case {
        name: "engine",
        what: "the event engine alone: a ring of 64 components, 1,024 events in flight",
        target_s: None,
        run: |events| {
            let mut system = sim_core::bench_system::ring(64, 1024, events.max(1024));
            system.run_to_end();
            Ok(system.events())
        },
    },
    Case {
        name: "first-decode-step",
        what: "A.X K1's first decode step on sovereign-node (batch 64, 2,048-token context)",
        target_s: Some(0.1),
        run: |_| {
            let mut w = preset_workload("axk1-decode")?;
            w.spec.scenario.output_tokens = Length::Fixed(1);
            simulate("sovereign-node", &w)
        },
    },
    Case {
        name: "prefill-4096-32",
        what: "A.X K1 prefilling 4,096 tokens on sovereign-node's 32 chiplets",
        target_s: Some(10.0),
        run: |_| {
            let mut w = preset_workload("axk1-prefill")?;
            w.spec.scenario.context_tokens = Length::Fixed(4096);
            w.spec.scenario.batch = 1;
            w.spec.scenario.output_tokens = Length::Fixed(1);
            simulate("sovereign-node", &w)
        },
    },
    Case {
        name: "azure-replay-1000",
        what: "A.X K1 serving the 1,000 requests of traces/examples/azure-sample.csv on sovereign-node, steps replayed",
        target_s: Some(15.0),
        run: |_| {
            let workload = include_str!("../traces/examples/axk1-azure.toml");
            let files = |path: &str| -> Result<String, Failure> {
                match std::path::Path::new(path).file_name().and_then(|n| n.to_str()) {
                    Some("axk1-azure.toml") => Ok(workload.to_string()),
                    Some("azure-sample.csv") => Ok(include_str!("../traces/examples/azure-sample.csv").to_string()),
                    _ => Err(Failure::Input(format!("{path}: not shipped with the benchmark"))),
                }
            };
            let mut w =
                crate::inputs::workload_file("traces/examples/axk1-azure.toml", &files).map_err(|e| e.to_string())?;
            if let Some(workloads::workload::Requests::Trace { count, .. }) = &mut w.spec.requests {
                *count = None;
            }
            simulate_with("sovereign-node", &w, |spec| spec.simulation.replay_steps = true)
        },
    },
    Case {
        name: "micro-gemm-2048x7168x7168",
        what: "micro gemm 2048 x 7168 x 7168 FP8 on a sovereign-node chiplet",
        target_s: None,
        run: |_| {
            let spec = models::presets::load_preset("sovereign-node").map_err(|e| e.to_string())?;
            let bench = workloads::micro::GemmBench {
                m: 2048,
                n: 7168,
                k: 7168,
                dtype: isa::Dtype::Fp8,
                cores: None,
                compute_only: false,
            };
            Ok(workloads::micro::gemm(&spec, bench)?.run.events)
        },
    },
];

fn preset_workload(name: &str) -> Result<workloads::Workload, String> {
    workloads::workload_preset(name).map_err(|e| e.to_string())
}

fn simulate(hw: &str, w: &workloads::Workload) -> Result<u64, String> {
    simulate_with(hw, w, |_| {})
}

/// Runs `w` on the preset `hw`, changed by `adjust`; its events.
fn simulate_with(hw: &str, w: &workloads::Workload, adjust: fn(&mut models::spec::SystemSpec)) -> Result<u64, String> {
    let mut spec = models::presets::load_preset(hw).map_err(|e| e.to_string())?;
    adjust(&mut spec);
    Ok(workloads::run(&spec, w, 1).map_err(|e| e.0)?.events)
}

/// Runs the cases `only` names (all when empty), `events` for the engine's.
pub fn bench(only: &[String], events: u64, as_json: bool, text: &mut String) -> Result<(), Failure> {
    if let Some(unknown) = only.iter().find(|o| !CASES.iter().any(|c| c.name == o.as_str())) {
        let known: Vec<&str> = CASES.iter().map(|c| c.name).collect();
        return Err(Failure::Input(format!("--case {unknown}: the cases are {}", known.join(", "))));
    }
    let mut results = Vec::new();
    for case in CASES.iter().filter(|c| only.is_empty() || only.iter().any(|o| o == c.name)) {
        let started = Instant::now();
        let events = (case.run)(events).map_err(|e| Failure::Input(format!("bench {}: {e}", case.name)))?;
        let seconds = started.elapsed().as_secs_f64();
        results.push(serde_json::json!({
            "case": case.name,
            "what": case.what,
            "wall_seconds": seconds,
            "events": events,
            "events_per_s": events as f64 / seconds.max(1e-9),
            "target_wall_seconds": case.target_s,
            "meets_target": case.target_s.map(|t| seconds <= t),
        }));
    }
    if as_json {
        text.push_str(&serde_json::to_string_pretty(&results).expect("results serialise"));
        text.push('\n');
        return Ok(());
    }
    let _ = writeln!(
        text,
        "| case | wall time | events | events/s | target | |\n| --- | ---: | ---: | ---: | ---: | --- |"
    );
    for r in &results {
        let target = r["target_wall_seconds"].as_f64().map_or("-".into(), |t| format!("{t} s"));
        let verdict = match r["meets_target"].as_bool() {
            Some(true) => "meets it",
            Some(false) => "misses it",
            None => "",
        };
        let _ = writeln!(
            text,
            "| {} | {:.3} s | {} | {:.1} M | {target} | {verdict} |",
            r["case"].as_str().unwrap_or(""),
            r["wall_seconds"].as_f64().unwrap_or(0.0),
            r["events"],
            r["events_per_s"].as_f64().unwrap_or(0.0) / 1e6
        );
    }
    Ok(())
}
