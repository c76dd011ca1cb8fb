//! # npusim: the command line
//!
//! Parses arguments, calls the crates, prints; nothing else. [`run`] is the
//! whole command line as a function of its arguments, writing to the streams
//! it is given and returning the exit status: 0 for success, 2 for bad input
//! (a bad spec, workload or argument), 1 when output cannot be written.

mod inputs;
mod output;

use clap::{Parser, Subcommand};
use inputs::Kind;
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

/// Cycle-approximate simulator of Arm CPU + NPU inference servers.
///
/// With no command, runs the default scenario: A.X K1 decoding at batch 64
/// with a 2,048-token context on the `sovereign-node` preset.
#[derive(Parser, Debug)]
#[command(name = "npusim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Simulate a workload on a system and report latency, throughput and energy.
    Run(RunArgs),
    /// Check a hardware spec or workload file; exit status 2 if it is bad.
    Validate {
        file: String,
        /// What the file is; guessed from its contents when not given.
        #[arg(long, value_enum)]
        kind: Option<Kind>,
    },
    /// List the shipped hardware presets, workloads and models, one per line.
    Presets,
    /// Print a hardware spec or workload fully resolved, with derived figures.
    Show {
        /// A preset name or a file.
        name: String,
    },
    /// Measure the event engine: events per second on a fixed synthetic system.
    Bench {
        /// Events to simulate.
        #[arg(long, default_value_t = 20_000_000)]
        events: u64,
    },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Hardware: a preset name or a TOML file.
    #[arg(long, default_value = models::presets::DEFAULT)]
    hw: String,
    /// Workload: a preset name or a TOML file.
    #[arg(long, default_value = workloads::DEFAULT_WORKLOAD)]
    workload: String,
    /// Print the report as JSON instead of the summary.
    #[arg(long)]
    json: bool,
    /// Also write the report, the resolved inputs and a manifest to this directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seed of the random draws (MoE routing).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// How a command failed: bad input (exit status 2) or a failure to write output (1).
#[derive(Debug)]
pub enum Failure {
    Input(String),
    Io(String),
}

impl From<models::input::InputError> for Failure {
    fn from(e: models::input::InputError) -> Failure {
        Failure::Input(e.to_string())
    }
}

/// Run the command line with `args` (the first is the program name).
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let command_line: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors to stderr with 2.
            let stream: &mut dyn Write = if e.use_stderr() { err } else { out };
            let _ = write!(stream, "{}", e.render());
            return e.exit_code() as u8;
        }
    };
    let mut text = String::new();
    let result = match cli.command {
        None => simulate(
            RunArgs {
                hw: models::presets::DEFAULT.into(),
                workload: workloads::DEFAULT_WORKLOAD.into(),
                json: false,
                out: None,
                seed: 1,
            },
            &command_line,
            &mut text,
        ),
        Some(Command::Run(args)) => simulate(args, &command_line, &mut text),
        Some(Command::Validate { file, kind }) => validate(&file, kind, &mut text),
        Some(Command::Presets) => {
            presets(&mut text);
            Ok(())
        }
        Some(Command::Show { name }) => show(&name, &mut text),
        Some(Command::Bench { events }) => {
            bench(events, &mut text);
            Ok(())
        }
    };
    if out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_err() {
        return 1;
    }
    match result {
        Ok(()) => 0,
        Err(Failure::Input(message)) => {
            let _ = writeln!(err, "error: {message}");
            2
        }
        Err(Failure::Io(message)) => {
            let _ = writeln!(err, "error: {message}");
            1
        }
    }
}

fn simulate(args: RunArgs, command_line: &[String], text: &mut String) -> Result<(), Failure> {
    let hardware = inputs::hardware(&args.hw)?;
    let workload = inputs::workload(&args.workload)?;
    let started = std::time::Instant::now();
    let result = workloads::run(&hardware, &workload, args.seed).map_err(|e| Failure::Input(e.to_string()))?;
    let report = reports::Report::new(&result, started.elapsed().as_secs_f64());
    if let Some(dir) = &args.out {
        output::create_dir(dir)?;
        output::write_atomically(&dir.join("report.json"), &report.to_json())?;
        output::write_atomically(&dir.join("hardware.toml"), &toml_text(&hardware))?;
        output::write_atomically(&dir.join("workload.toml"), &toml_text(&workload.spec))?;
        let manifest = serde_json::json!({
            "npusim_version": env!("CARGO_PKG_VERSION"),
            "git_revision": env!("NPUSIM_GIT_REVISION"),
            "seed": args.seed,
            "hardware": args.hw,
            "workload": args.workload,
            "command_line": command_line,
        });
        let mut text = serde_json::to_string_pretty(&manifest).expect("the manifest serialises");
        text.push('\n');
        output::write_atomically(&dir.join("manifest.json"), &text)?;
    }
    if args.json {
        text.push_str(&report.to_json());
    } else {
        text.push_str(&reports::summary(&report));
        if let Some(dir) = &args.out {
            let _ = writeln!(
                text,
                "  wrote report.json, hardware.toml, workload.toml and manifest.json to {}",
                dir.display()
            );
        }
    }
    Ok(())
}

fn toml_text<T: serde::Serialize>(value: &T) -> String {
    toml::to_string_pretty(value).expect("specs serialise to TOML")
}

fn validate(file: &str, kind: Option<Kind>, text: &mut String) -> Result<(), Failure> {
    let kind = match kind {
        Some(k) => k,
        None => inputs::kind_of(file)?,
    };
    match kind {
        Kind::Hardware => {
            let spec = inputs::hardware(file)?;
            let _ = writeln!(text, "{file}: a valid hardware spec (`{}`, {} chiplets)", spec.name, spec.device_count());
        }
        Kind::Workload => {
            let w = inputs::workload(file)?;
            let _ = writeln!(text, "{file}: a valid workload (`{}`, model `{}`)", w.spec.name, w.model.name);
        }
    }
    Ok(())
}

fn presets(text: &mut String) {
    for p in models::presets::PRESETS {
        let _ = writeln!(text, "hardware  {:20} {}", p.name, p.summary);
    }
    for (name, summary, _) in workloads::workload::WORKLOAD_PRESETS {
        let _ = writeln!(text, "workload  {name:20} {summary}");
    }
    for (name, _) in workloads::model::MODEL_PRESETS {
        let description = workloads::model::model_preset(name).map(|m| m.description).unwrap_or_default();
        let _ = writeln!(text, "model     {name:20} {description}");
    }
}

fn show(name: &str, text: &mut String) -> Result<(), Failure> {
    let is_workload = workloads::workload::WORKLOAD_PRESETS.iter().any(|(n, _, _)| *n == name)
        || (std::path::Path::new(name).is_file() && inputs::kind_of(name)? == Kind::Workload);
    if is_workload {
        let w = inputs::workload(name)?;
        text.push_str(&toml_text(&w.spec));
        let p = w.model.parameters();
        let s = &w.spec.scenario;
        let _ = writeln!(text, "\n# derived figures of model `{}`", w.model.name);
        let _ = writeln!(text, "# parameters, total            {:.2} B", p.total as f64 / 1e9);
        let _ = writeln!(text, "# parameters, active per token {:.2} B", p.active as f64 / 1e9);
        let _ = writeln!(
            text,
            "# weights in {}               {:.1} GB",
            s.weight_dtype,
            p.total as f64 * s.weight_dtype.bytes() as f64 / 1e9
        );
        let _ = writeln!(
            text,
            "# KV cache per token in {}    {} bytes",
            s.kv_dtype,
            w.model.kv_bytes_per_token(s.kv_dtype)
        );
        return Ok(());
    }
    let spec = inputs::hardware(name)?;
    text.push_str(&toml_text(&spec));
    let _ = writeln!(text, "\n# derived figures");
    for f in spec.figures() {
        let _ = writeln!(text, "# {:40} {}", f.label, f.value);
    }
    Ok(())
}

fn bench(events: u64, text: &mut String) {
    let tokens = 1024;
    let mut system = sim_core::bench_system::ring(64, tokens, events.max(tokens));
    let started = std::time::Instant::now();
    system.run_to_end();
    let seconds = started.elapsed().as_secs_f64();
    let _ = writeln!(
        text,
        "engine: {} events in {:.3} s = {:.1} million events/s (ring of 64 components, {} events in flight, one thread)",
        system.events(),
        seconds,
        system.events() as f64 / seconds / 1e6,
        tokens
    );
}
