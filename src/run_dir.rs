//! A run's `--out` directory: the report, and everything needed to rerun it.
//! The hardware and workload are written resolved, the files the workload
//! names are copied under `inputs/` and the workload points at the copies, so
//! `npusim run --hw DIR/hardware.toml --workload DIR/workload.toml --seed S`
//! writes the same `report.json`, byte for byte. What varies between identical
//! runs (the wall time) goes to `manifest.json`.

use crate::{Failure, RunArgs, output, toml_text};
use std::path::Path;

/// What one run produced, and what it was run from.
pub struct Run<'a> {
    pub args: &'a RunArgs,
    pub command_line: &'a [String],
    pub hardware: &'a models::spec::SystemSpec,
    pub workload: &'a workloads::Workload,
    pub result: &'a workloads::RunResult,
    pub report: &'a reports::Report,
}

/// The files `write` puts in the directory, for the summary to list.
pub const WRITTEN: &str =
    "report.json, report.html, plots/, requests.csv, hardware.toml, workload.toml, inputs/ and manifest.json";

pub fn write(dir: &Path, run: &Run) -> Result<(), Failure> {
    output::create_dir(dir)?;
    let mut spec = run.workload.spec.clone();
    copy_named_files(dir, &run.args.workload, &mut spec)?;
    output::write_atomically(&dir.join("report.json"), &run.report.to_json())?;
    output::write_atomically(&dir.join("requests.csv"), &reports::requests_csv(run.result))?;
    output::write_atomically(&dir.join("hardware.toml"), &toml_text(run.hardware))?;
    output::write_atomically(&dir.join("workload.toml"), &toml_text(&spec))?;
    let rerun = [
        "npusim run --hw",
        &dir.join("hardware.toml").to_string_lossy(),
        "--workload",
        &dir.join("workload.toml").to_string_lossy(),
        "--seed",
        &run.args.seed.to_string(),
    ]
    .join(" ");
    let text = manifest(run, &rerun);
    output::write_atomically(&dir.join("manifest.json"), &text)?;
    output::write_atomically(&dir.join("report.html"), &html(run, &text))?;
    output::create_dir(&dir.join("plots"))?;
    let latencies = [reports::html::Latencies::of(run.result)];
    for plot in reports::html::plots(std::slice::from_ref(run.report), &latencies) {
        output::write_atomically(&dir.join("plots").join(format!("{}.svg", plot.name)), &plot.svg)?;
        output::write_atomically(&dir.join("plots").join(format!("{}.csv", plot.name)), &plot.csv)?;
    }
    Ok(())
}

/// The run's one-file HTML report, with its resolved inputs and `manifest`.
pub fn html(run: &Run, manifest: &str) -> String {
    let inputs = reports::html::Inputs {
        files: vec![
            ("hardware.toml".into(), toml_text(run.hardware)),
            ("workload.toml".into(), toml_text(&run.workload.spec)),
            ("manifest.json".into(), manifest.to_string()),
        ],
        latencies: vec![reports::html::Latencies::of(run.result)],
    };
    reports::html::page(std::slice::from_ref(run.report), &inputs)
}

/// What was run, by which npusim, how long it took and how to rerun it.
pub fn manifest(run: &Run, rerun: &str) -> String {
    let manifest = serde_json::json!({
        "npusim_version": env!("CARGO_PKG_VERSION"),
        "git_revision": env!("NPUSIM_GIT_REVISION"),
        "seed": run.args.seed,
        "hardware": run.args.hw,
        "workload": run.args.workload,
        "command_line": run.command_line,
        "rerun": rerun,
        "wall_seconds": run.report.wall_seconds,
    });
    let mut text = serde_json::to_string_pretty(&manifest).expect("the manifest serialises");
    text.push('\n');
    text
}

/// Copies each file the workload names (relative to the workload file
/// `source`) to `dir/inputs/`, and points `spec` at the copies.
fn copy_named_files(dir: &Path, source: &str, spec: &mut workloads::workload::WorkloadSpec) -> Result<(), Failure> {
    let beside = Path::new(source).parent().unwrap_or(Path::new("."));
    let mut taken: Vec<String> = Vec::new();
    for (field, file) in spec.named_files_mut() {
        let from = beside.join(&*file);
        let bytes = std::fs::read(&from)
            .map_err(|e| Failure::Io(format!("{source}: field `{field}` = \"{file}\": cannot copy it: {e}")))?;
        let name = unique_name(&from, &taken);
        output::create_dir(&dir.join("inputs"))?;
        output::write_bytes_atomically(&dir.join("inputs").join(&name), &bytes)?;
        *file = format!("inputs/{name}");
        taken.push(name);
    }
    Ok(())
}

/// The file's own name, numbered if an earlier copy took it.
fn unique_name(path: &Path, taken: &[String]) -> String {
    let base = path.file_name().map_or_else(|| "input".into(), |n| n.to_string_lossy().into_owned());
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{n}-{base}");
        n += 1;
    }
    name
}
