//! `npusim compare`: one workload on several systems, each simulated on its
//! own thread (every simulation is single-threaded, so the results are the
//! serial runs' to the byte), printed side by side with ratios to the first.

use crate::{Failure, inputs, on_system};
use rayon::prelude::*;

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// A system to compare: a preset name or a TOML file. Give two or more; ratios are to the first.
    #[arg(long = "hw", required = true)]
    hw: Vec<String>,
    /// Workload: a preset name or a TOML file.
    #[arg(long, default_value = workloads::DEFAULT_WORKLOAD)]
    workload: String,
    /// Seed of the random draws (MoE routing, arrivals, lengths), the same for every system.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the comparison and every system's full report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write a one-file HTML report: the verdict, figures, plots, energy and inputs.
    #[arg(long)]
    html: Option<std::path::PathBuf>,
    /// Also search each system's highest request rate whose p99 TTFT and TPOT meet the workload's serving.slo.
    #[arg(long)]
    slo: bool,
}

/// More columns than a table or a plot can show side by side.
const MAX_SYSTEMS: usize = 16;

pub fn compare(args: CompareArgs, text: &mut String) -> Result<(), Failure> {
    if args.hw.len() < 2 {
        return Err(Failure::Input(format!(
            "--hw: compare needs two systems or more, found {}; `npusim run` simulates one",
            args.hw.len()
        )));
    }
    if args.hw.len() > MAX_SYSTEMS {
        return Err(Failure::Input(format!(
            "--hw: compare runs at most {MAX_SYSTEMS} systems side by side, found {}; a sweep is the tool for more",
            args.hw.len()
        )));
    }
    let systems = args.hw.iter().map(|h| inputs::hardware(h)).collect::<Result<Vec<_>, _>>()?;
    let workload = inputs::workload(&args.workload)?;
    // Refused before any run: a search needs an objective and a rate to vary.
    let objective = if args.slo { Some(crate::slo_search::objective(&workload)?) } else { None };
    let limits = sim_core::limits::current();
    let runs = systems
        .par_iter()
        .zip(&args.hw)
        .map(|(system, name)| {
            sim_core::limits::carry(limits, || {
                let started = std::time::Instant::now();
                let result =
                    workloads::run(system, &workload, args.seed).map_err(|e| on_system(&args.workload, name, e))?;
                Ok((reports::Report::new(&result, started.elapsed().as_secs_f64()), result))
            })
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    let (reports, results): (Vec<_>, Vec<_>) = runs.into_iter().unzip();
    let searched = if let Some((slo, rate)) = objective {
        let best = systems
            .par_iter()
            .zip(&args.hw)
            .map(|(system, name)| {
                sim_core::limits::carry(limits, || {
                    crate::slo_search::best(system, name, &workload, (&slo, rate), args.seed, &args.workload)
                })
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        Some((slo, best))
    } else {
        None
    };
    if let Some(file) = &args.html {
        let mut files: Vec<(String, String)> =
            systems.iter().map(|s| (format!("{}.toml", s.name), crate::toml_text(s))).collect();
        files.push(("workload.toml".into(), crate::toml_text(&workload.spec)));
        let latencies = results.iter().map(reports::html::Latencies::of).collect();
        let inputs = reports::html::Inputs { files, latencies };
        crate::output::write_atomically(file, &reports::html::page(&reports, &inputs))?;
    }
    if args.json {
        let json = serde_json::json!({
            "workload": args.workload,
            "seed": args.seed,
            "baseline": reports[0].hardware.name,
            "figures": reports::compare::compare(&reports),
            "slo": searched.as_ref().map(|(_, best)| best),
            "reports": reports,
        });
        text.push_str(&serde_json::to_string_pretty(&json).expect("a comparison serialises"));
        text.push('\n');
    } else {
        text.push_str(&reports::compare::table(&reports));
        if let Some((slo, best)) = &searched {
            text.push_str(&crate::slo_search::table(slo, best));
        }
    }
    Ok(())
}
