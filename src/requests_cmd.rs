//! `npusim requests`: the requests a workload serves, as a request trace.

use crate::{Failure, inputs, output};
use std::fmt::Write as _;
use std::path::PathBuf;
use traces::requests::Form;
use workloads::workload::TraceRequest;

#[derive(clap::Args, Debug)]
pub struct RequestsArgs {
    /// Workload: a preset name or a TOML file.
    #[arg(long, default_value = workloads::DEFAULT_WORKLOAD)]
    workload: String,
    /// Seed of the draws (arrival gaps and lengths), as `npusim run --seed`.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the trace in the Azure LLM inference trace's form (`TIMESTAMP,ContextTokens,GeneratedTokens`).
    #[arg(long)]
    azure: bool,
    /// The CSV file to write.
    #[arg(long)]
    out: PathBuf,
}

pub fn requests(args: RequestsArgs, text: &mut String) -> Result<(), Failure> {
    let workload = inputs::workload(&args.workload)?;
    let arrivals = workloads::arrivals::arrivals(&workload.spec, args.seed).map_err(Failure::Input)?;
    let rows: Vec<TraceRequest> = arrivals
        .iter()
        .map(|a| TraceRequest { arrival: a.at, prompt_tokens: a.prompt, output_tokens: a.output })
        .collect();
    let form = if args.azure { Form::Azure } else { Form::Npusim };
    output::write_atomically(&args.out, &traces::requests::write(form, &rows))?;
    let span = rows.last().map_or(0.0, |r| r.arrival.as_secs_f64());
    let _ = writeln!(
        text,
        "wrote {} requests of `{}` arriving over {span:.1} s to {}",
        rows.len(),
        workload.spec.name,
        args.out.display()
    );
    Ok(())
}
