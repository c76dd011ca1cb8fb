//! `npusim report DIR --html OUT`: the one-file HTML report of a run's
//! `--out` directory, from its report.json and requests.csv, without
//! simulating again.

use crate::{Failure, output};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// A directory that `npusim run --out` wrote.
    dir: PathBuf,
    /// Where to write the HTML report.
    #[arg(long)]
    html: PathBuf,
}

fn read(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| Failure::Input(format!("{}: cannot read the file: {e}", path.display())))
}

pub fn report(args: ReportArgs, text: &mut String) -> Result<(), Failure> {
    let path = args.dir.join("report.json");
    let json = read(&path)?;
    let value: serde_json::Value = serde_json::from_str(&json)
        .map_err(|e| Failure::Input(format!("{}:{}:{}: {e}", path.display(), e.line(), e.column())))?;
    let version = value["schema_version"].as_u64();
    if version != Some(u64::from(reports::SCHEMA_VERSION)) {
        return Err(Failure::Input(format!(
            "{}: field `schema_version`: this npusim reads version {}, found {}",
            path.display(),
            reports::SCHEMA_VERSION,
            version.map_or("none".into(), |v| v.to_string())
        )));
    }
    let mut report: reports::Report = serde_json::from_value(value)
        .map_err(|e| Failure::Input(format!("{}: not a run report: {e}", path.display())))?;
    // The wall time is the one figure report.json leaves to the manifest.
    let manifest = std::fs::read_to_string(args.dir.join("manifest.json")).ok();
    let wall = manifest.as_deref().and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok());
    report.wall_seconds = wall.and_then(|m| m["wall_seconds"].as_f64()).unwrap_or(0.0);
    let csv = args.dir.join("requests.csv");
    let latencies =
        reports::html::Latencies::from_csv(&csv.display().to_string(), &read(&csv)?).map_err(Failure::Input)?;
    let files = ["hardware.toml", "workload.toml", "manifest.json"]
        .iter()
        .filter_map(|name| std::fs::read_to_string(args.dir.join(name)).ok().map(|t| (name.to_string(), t)))
        .collect();
    let inputs = reports::html::Inputs { files, latencies: vec![latencies] };
    output::write_atomically(&args.html, &reports::html::page(std::slice::from_ref(&report), &inputs))?;
    text.push_str(&format!("wrote {}\n", args.html.display()));
    Ok(())
}
