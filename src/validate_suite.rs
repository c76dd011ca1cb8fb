//! `npusim validate-suite`: every shipped validation case (`validation/`,
//! embedded at build time) run and compared with its published figure.

use crate::{Failure, inputs};
use rayon::prelude::*;
use reports::validation::{Case, Measured, Setup, Verdict, load_case, rows};
use std::path::{Component, Path};
use workloads::micro::{AttentionBench, GemmBench};

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
        Setup::Run { ref workload, .. } => {
            let source = format!("validation/{workload}");
            let w = inputs::workload_file(&source, &embedded)?;
            let result = workloads::run(&spec, &w, SEED).map_err(|e| Failure::Input(format!("{source}: {e}")))?;
            Ok(Measured::Serving(Box::new(reports::Report::new(&result, 0.0))))
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
    let measured: Vec<Result<Measured, Failure>> = setups.par_iter().map(|s| measure(s)).collect();
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
