//! `npusim validate-suite`: every shipped validation case (`validation/`,
//! embedded at build time) run and compared with its published figure.

use crate::{Failure, inputs};
use reports::validation::{Case, Measured, Setup, Verdict, load_case, rows};
use std::path::{Component, Path};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use workloads::micro::{AttentionBench, GemmBench};
use workloads::workload::Requests;

/// Every file under `validation/`: (path relative to it, text).
const FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/validation_files.rs"));

/// The suite's seed: every case runs with it, so the table is reproducible.
const SEED: u64 = 1;

/// `path` with `.` and `dir/..` pairs folded away, as the embedded files are named.
fn normal(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                parts.pop();
            }
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    parts.join("/")
}

/// An embedded file by its path under `validation/`.
fn embedded(path: &str) -> Result<String, Failure> {
    let wanted = normal(Path::new(path.strip_prefix("validation/").unwrap_or(path)));
    FILES
        .iter()
        .find(|(p, _)| *p == wanted)
        .map(|(_, text)| text.to_string())
        .ok_or_else(|| Failure::Input(format!("validation/{wanted}: no such file in the validation suite")))
}

/// The shipped cases, each with its file's path, in file order.
pub fn cases() -> Result<Vec<(String, Case)>, Failure> {
    FILES
        .iter()
        .filter(|(p, _)| p.starts_with("cases/"))
        .map(|(p, text)| {
            let path = format!("validation/{p}");
            let case = load_case(&path, text)?;
            Ok((path, case))
        })
        .collect()
}

fn hardware(name: &str) -> Result<models::spec::SystemSpec, Failure> {
    if models::presets::preset(name).is_some() {
        return models::presets::load_preset(name).map_err(Failure::from);
    }
    let source = format!("validation/{name}");
    let files = |path: &Path| embedded(&path.to_string_lossy()).map_err(|e| e.to_string());
    models::presets::load_system_with(&source, &embedded(name)?, &files).map_err(Failure::from)
}

/// What a case's setup measures.
fn measure(setup: &Setup) -> Result<Measured, Failure> {
    let spec = hardware(setup.hardware())?;
    let kernel = |flops: f64, bytes_per_s: f64| Measured::Kernel { flops, bytes_per_s };
    match *setup {
        Setup::Run { ref workload, engines, .. } => {
            let source = format!("validation/{workload}");
            let w = inputs::workload_file(&source, &embedded)?;
            let result = workloads::run(&spec, &w, SEED).map_err(|e| Failure::Input(format!("{source}: {e}")))?;
            Ok(Measured::Serving { report: Box::new(reports::Report::new(&result, 0.0)), engines })
        }
        Setup::Gemm { m, n, k, dtype, .. } => {
            let bench = GemmBench { m, n, k, dtype, cores: None, compute_only: false };
            let run = workloads::micro::gemm(&spec, bench).map_err(Failure::Input)?;
            Ok(kernel(run.achieved_flops, run.compulsory_bytes as f64 / run.run.seconds))
        }
        Setup::MlaDecode { batch, heads, context, queries, dtype, .. } => {
            let mut bench = AttentionBench::mla_decode(batch, heads, context, dtype);
            bench.shape.queries = queries;
            let run = workloads::micro::attention(&spec, bench).map_err(Failure::Input)?;
            Ok(kernel(run.achieved_flops, run.achieved_bytes_per_s))
        }
        Setup::Prefill { batch, queries, heads, head_dim, dtype, .. } => {
            let bench = AttentionBench::mha(batch, queries, queries, (heads, heads, head_dim), dtype);
            let run = workloads::micro::attention(&spec, bench).map_err(Failure::Input)?;
            Ok(kernel(run.achieved_flops, run.achieved_bytes_per_s))
        }
    }
}

/// Measure every setup, the costliest first, each thread taking the next
/// from a queue: the serving runs (by the tokens they serve) ahead of the
/// kernels, so that a long run does not start last. Results are by index.
fn measure_all(setups: &[&Setup]) -> Vec<Result<Measured, Failure>> {
    let mut order: Vec<usize> = (0..setups.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(cost(setups[i])), i));
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<Measured, Failure>>>> = setups.iter().map(|_| Mutex::new(None)).collect();
    // The command's --max-* limits hold on every thread.
    let limits = sim_core::limits::current();
    rayon::scope(|scope| {
        for _ in 0..rayon::current_num_threads().min(setups.len()) {
            scope.spawn(|_| {
                sim_core::limits::carry(limits, || {
                    while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let measured = measure(setups[i]);
                        *results[i].lock().expect("no measurement panics") = Some(measured);
                    }
                })
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.into_inner().expect("no measurement panics").expect("every setup is measured"))
        .collect()
}

/// A setup's cost, to order the queue: a serving run's requests times their
/// longest output (0 where its workload does not load: it fails fast).
fn cost(setup: &Setup) -> u64 {
    let Setup::Run { workload, .. } = setup else { return 0 };
    let Ok(w) = inputs::workload_file(&format!("validation/{workload}"), &embedded) else { return 0 };
    let requests = match &w.spec.requests {
        Some(Requests::Offline { count, .. } | Requests::Poisson { count, .. } | Requests::Gamma { count, .. }) => {
            *count as u64
        }
        Some(Requests::Trace { rows, .. }) => rows.len() as u64,
        None => w.spec.scenario.batch as u64,
    };
    1 + requests * w.spec.scenario.output_tokens.max() as u64
}

/// Run the cases whose ids are in `only` (all when empty). Each distinct
/// setup runs once (cases may compare one run with figures of several
/// sources), the setups in parallel, one simulation per thread; the verdict
/// is in file order whatever the threads.
pub fn run(only: &[String]) -> Result<Verdict, Failure> {
    let all: Vec<Case> = cases()?.into_iter().map(|(_, case)| case).collect();
    if let Some(unknown) = only.iter().find(|id| !all.iter().any(|c| &c.id == *id)) {
        let ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
        return Err(Failure::Input(format!("--case {unknown}: no such case; cases are {}", ids.join(", "))));
    }
    let chosen: Vec<&Case> = all.iter().filter(|c| only.is_empty() || only.contains(&c.id)).collect();
    let mut setups: Vec<&Setup> = Vec::new();
    for case in &chosen {
        if !setups.contains(&&case.setup) {
            setups.push(&case.setup);
        }
    }
    let measured = measure_all(&setups);
    let mut rows_out = Vec::new();
    let mut failures = Vec::new();
    for case in chosen {
        let i = setups.iter().position(|s| **s == case.setup).expect("every case's setup is listed");
        match &measured[i] {
            Ok(m) => rows_out.extend(rows(case, Some(m))),
            Err(why) => {
                rows_out.extend(rows(case, None));
                failures.push((case.id.clone(), why.to_string()));
            }
        }
    }
    Ok(Verdict::new(rows_out, failures))
}
