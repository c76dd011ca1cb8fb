//! `npusim trace`: step traces written from a workload and replayed on hardware (traces/README.md).

use crate::{Failure, inputs, output};
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum TraceCommand {
    /// Write the op graph of one step of a workload, placed on a system's chiplets, as a step trace.
    Gen {
        /// The workload (model, scenario, plan, routing): a preset or a TOML file.
        #[arg(long, alias = "scenario", default_value = workloads::DEFAULT_WORKLOAD)]
        workload: String,
        /// Replace the workload's model: a shipped model, a TOML model config or a Hugging Face config.json.
        #[arg(long)]
        model: Option<String>,
        /// The hardware whose chiplets the plan places the graph on.
        #[arg(long, default_value = models::presets::DEFAULT)]
        hw: String,
        /// Which step (0 = the first: the prefill of a prefill workload).
        #[arg(long, default_value_t = 0)]
        step: u64,
        /// Seed of the random draws (MoE routing).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The file to write (JSON Lines).
        #[arg(long)]
        out: PathBuf,
    },
    /// Convert MLCommons Chakra execution traces (.et protobuf or JSON; one file per rank) into a step trace.
    ImportChakra {
        /// The ranks' traces, rank 0 first; rank i runs on chiplet i.
        #[arg(required = true)]
        ranks: Vec<String>,
        /// The step trace to write (JSON Lines).
        #[arg(long)]
        out: PathBuf,
    },
    /// Simulate a step trace on a system and report as `npusim run` does.
    Replay {
        /// The step trace (JSON Lines).
        trace: String,
        /// Hardware: a preset name or a TOML file.
        #[arg(long, default_value = models::presets::DEFAULT)]
        hw: String,
        /// Print the result as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn trace(command: TraceCommand, text: &mut String) -> Result<(), Failure> {
    match command {
        TraceCommand::Gen { workload, model, hw, step, seed, out } => {
            let hardware = inputs::hardware(&hw)?;
            let mut workload = inputs::workload(&workload)?;
            if let Some(model) = model {
                workload.model = inputs::model(&model)?;
                workload.spec.model = workload.model.name.clone();
            }
            let recorded =
                workloads::record_step(&hardware, &workload, seed, step).map_err(|e| Failure::Input(e.to_string()))?;
            let producer = format!("npusim {} trace gen", env!("CARGO_PKG_VERSION"));
            output::write_atomically_with(&out, |w| traces::step::write(w, &recorded, &producer))?;
            let _ = writeln!(
                text,
                "wrote step {step} of `{}` ({} ops on {} chiplets of `{}`) to {}",
                workload.spec.name,
                recorded.graph.ops.len(),
                recorded.graph.devices,
                hardware.name,
                out.display()
            );
            Ok(())
        }
        TraceCommand::ImportChakra { ranks, out } => {
            let mut parsed = Vec::new();
            for path in &ranks {
                let bytes =
                    std::fs::read(path).map_err(|e| Failure::Input(format!("{path}: cannot read the file: {e}")))?;
                parsed.push((path.clone(), traces::chakra::parse_rank(path, &bytes)?));
            }
            let imported = traces::chakra::import(&parsed)?;
            let name = out.file_stem().and_then(|s| s.to_str()).unwrap_or("chakra").to_string();
            let step = traces::chakra::recorded_step(&name, imported.graph.clone());
            let producer = format!("npusim {} trace import-chakra", env!("CARGO_PKG_VERSION"));
            output::write_atomically_with(&out, |w| traces::step::write(w, &step, &producer))?;
            let _ = writeln!(
                text,
                "wrote {} ops on {} chiplets to {}: {} Chakra nodes mapped, {} not",
                step.graph.ops.len(),
                step.graph.devices,
                out.display(),
                imported.mapped,
                imported.unmapped.values().sum::<u64>()
            );
            for (kind, count) in &imported.unmapped {
                let _ = writeln!(text, "  not mapped: {count} x {kind}");
            }
            Ok(())
        }
        TraceCommand::Replay { trace, hw, json } => {
            let hardware = inputs::hardware(&hw)?;
            let file = std::fs::File::open(&trace)
                .map_err(|e| Failure::Input(format!("{trace}: cannot read the file: {e}")))?;
            let recorded = traces::step::read(&trace, std::io::BufReader::new(file))?;
            let started = std::time::Instant::now();
            let result = workloads::replay(&hardware, &recorded).map_err(|e| Failure::Input(e.to_string()))?;
            let report = reports::Report::new(&result, started.elapsed().as_secs_f64());
            text.push_str(&if json { report.to_json() } else { reports::summary(&report) });
            Ok(())
        }
    }
}
