//! # npusim: the command line
//!
//! Parses arguments, calls the crates, prints; nothing else. [`run`] is the
//! whole command line as a function of its arguments, writing to the streams
//! it is given and returning the exit status: 0 for success, 2 for bad input
//! (a bad spec, workload or argument), 1 when output cannot be written.

// Simulations allocate many small, short-lived messages and statistics;
// mimalloc serves them markedly faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench_cmd;
mod compare_cmd;
mod inputs;
mod micro_cmd;
mod model_cmd;
mod output;
mod report_cmd;
mod requests_cmd;
mod run_dir;
mod slo_search;
mod trace_cmd;
mod validate_suite;

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
    #[command(flatten)]
    limits: LimitArgs,
}

/// How far a simulating command may go; it stops with exit status 2 at the first limit passed.
#[derive(clap::Args, Debug)]
struct LimitArgs {
    /// Stop when any one simulated system has handled N events.
    #[arg(long, global = true, value_name = "N")]
    max_events: Option<u64>,
    /// Stop when any one simulated system passes this simulated time, e.g. "30 s" or "500 ms".
    #[arg(long, global = true, value_name = "TIME")]
    max_sim_time: Option<models::units::Duration>,
    /// Stop the command after this much wall-clock time, e.g. "60 s".
    #[arg(long, global = true, value_name = "TIME")]
    max_wall: Option<models::units::Duration>,
}

impl LimitArgs {
    fn limits(&self) -> sim_core::limits::Limits {
        sim_core::limits::Limits {
            max_events: self.max_events,
            max_sim_time: self.max_sim_time.map(|d| d.time()),
            max_wall: self.max_wall.map(|d| std::time::Duration::from_nanos(d.time().as_ps() / 1000)),
        }
    }

    /// The option that sets `limit`, for the error message.
    fn option(limit: sim_core::limits::Limit) -> &'static str {
        match limit {
            sim_core::limits::Limit::Events(_) => "--max-events",
            sim_core::limits::Limit::SimTime(_) => "--max-sim-time",
            sim_core::limits::Limit::Wall(_) => "--max-wall",
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Simulate a workload on a system and report latency, throughput and energy.
    Run(RunArgs),
    /// Run one workload on several systems and print their figures side by side, with ratios to the first.
    Compare(compare_cmd::CompareArgs),
    /// Run the validation cases (validation/): published measurements against npusim's predictions.
    ValidateSuite {
        /// Only these cases (by id, e.g. P1); repeat for several.
        #[arg(long)]
        case: Vec<String>,
        /// The verdict as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// List the cases and their sources without running them.
        #[arg(long)]
        list: bool,
    },
    /// Check a hardware spec or workload file; exit status 2 if it is bad.
    Validate {
        /// The hardware spec, workload, or minimal memory or network spec to check.
        file: String,
        /// What the file is; guessed from its contents when not given.
        #[arg(long, value_enum)]
        kind: Option<Kind>,
        /// For a workload: the system to check it on, as `run` would (a preset or a spec file).
        #[arg(long, default_value = models::presets::DEFAULT)]
        hw: String,
        /// For a workload: the seed of the request lengths it draws, as `run --seed`.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// List the shipped hardware presets, workloads and models, one per line.
    Presets,
    /// Print a hardware spec or workload fully resolved, with derived figures.
    Show {
        /// A preset name or a file.
        name: String,
    },
    /// Microbenchmarks: a GEMM, a chiplet's memory or network, a collective over links.
    #[command(subcommand)]
    Micro(micro_cmd::Micro),
    /// Assemble, check, run and encode hand-written NPU programs (isa/README.md).
    #[command(subcommand)]
    Asm(Asm),
    /// Model configs: derived figures of a shipped model, a TOML config or a Hugging Face config.json.
    #[command(subcommand)]
    Model(model_cmd::ModelCommand),
    /// Step traces: write one step's op graph (JSON Lines) and replay it (traces/README.md).
    #[command(subcommand)]
    Trace(trace_cmd::TraceCommand),
    /// Write the one-file HTML report of a directory that `run --out` wrote, without simulating again.
    Report(report_cmd::ReportArgs),
    /// Print how a workload's first step is lowered: tilings and core programs.
    Lower(LowerArgs),
    /// Write the requests a workload serves (arrivals and lengths) as a request-trace CSV.
    Requests(requests_cmd::RequestsArgs),
    /// The benchmark suite: simulations a user runs, timed on one thread, against their targets.
    Bench {
        /// Events the engine case simulates.
        #[arg(long, default_value_t = 20_000_000)]
        events: u64,
        /// Only this case; repeat for several (engine, first-decode-step, prefill-4096-32, azure-replay-1000, micro-gemm-2048x7168x7168).
        #[arg(long)]
        case: Vec<String>,
        /// Print the results as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum Asm {
    /// Run an assembly file (one program, or one per `.core`) on one chiplet and report per-engine timing.
    Run {
        /// The assembly file.
        program: String,
        /// Hardware whose chiplet runs it: a preset name or a TOML file.
        #[arg(long, default_value = models::presets::DEFAULT)]
        hw: String,
        /// Pure engine timing: memory and scratchpad ports take no time.
        #[arg(long)]
        compute_only: bool,
        /// Print the result as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check an assembly file against a chiplet's scratchpad.
    Check {
        /// The assembly file.
        program: String,
        /// Hardware whose chiplet it must fit: a preset name or a TOML file.
        #[arg(long, default_value = models::presets::DEFAULT)]
        hw: String,
    },
    /// Encode an assembly file in the binary form.
    Encode {
        /// The assembly file.
        program: String,
        /// Where to write the binary image.
        output: PathBuf,
    },
    /// Print a binary program image as assembly.
    Decode {
        /// The binary image (`asm encode` writes one).
        image: String,
    },
}

#[derive(clap::Args, Debug)]
struct LowerArgs {
    /// Hardware: a preset name or a TOML file.
    #[arg(long, default_value = models::presets::DEFAULT)]
    hw: String,
    /// Workload: a preset name or a TOML file.
    #[arg(long, default_value = workloads::DEFAULT_WORKLOAD)]
    workload: String,
    /// Only ops whose name contains this, e.g. `l1.attn`.
    #[arg(long, default_value = "l1.")]
    op: String,
    /// The chiplet whose programs to show.
    #[arg(long, default_value_t = 0)]
    device: u32,
    /// Print every core program in full, not only its size.
    #[arg(long)]
    programs: bool,
}

#[derive(clap::Args, Debug)]
pub(crate) struct RunArgs {
    /// Hardware: a preset name or a TOML file.
    #[arg(long, default_value = models::presets::DEFAULT)]
    pub(crate) hw: String,
    /// Workload: a preset name or a TOML file.
    #[arg(long, default_value = workloads::DEFAULT_WORKLOAD)]
    pub(crate) workload: String,
    /// Print the report as JSON instead of the summary.
    #[arg(long)]
    json: bool,
    /// Also write the report, the resolved inputs and a manifest to this directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write a one-file HTML report (plots inline, nothing loaded from elsewhere).
    #[arg(long)]
    html: Option<PathBuf>,
    /// Seed of the random draws (MoE routing).
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
}

/// How a command failed: bad input (exit status 2) or a failure to write output (1).
#[derive(Debug)]
pub enum Failure {
    Input(String),
    Io(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Input(m) | Failure::Io(m) => f.write_str(m),
        }
    }
}

impl From<models::input::InputError> for Failure {
    fn from(e: models::input::InputError) -> Failure {
        Failure::Input(e.to_string())
    }
}

/// The command line's definition: every command, option and help text.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
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
    let limits = cli.limits.limits();
    let result =
        sim_core::limits::within(limits, || dispatch(cli.command, &command_line, &mut text)).unwrap_or_else(|e| {
            let option = LimitArgs::option(e.limit);
            Err(Failure::Input(format!("{option}: {e}; raise it, or leave {option} out")))
        });
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

fn dispatch(command: Option<Command>, command_line: &[String], text: &mut String) -> Result<(), Failure> {
    match command {
        None => simulate(
            RunArgs {
                hw: models::presets::DEFAULT.into(),
                workload: workloads::DEFAULT_WORKLOAD.into(),
                json: false,
                out: None,
                html: None,
                seed: 1,
            },
            command_line,
            text,
        ),
        Some(Command::Run(args)) => simulate(args, command_line, text),
        Some(Command::Compare(args)) => compare_cmd::compare(args, text),
        Some(Command::Report(args)) => report_cmd::report(args, text),
        Some(Command::Validate { file, kind, hw, seed }) => validate(&file, kind, (&hw, seed), text),
        Some(Command::ValidateSuite { case, json: as_json, list }) => validation_suite(&case, as_json, list, text),
        Some(Command::Presets) => {
            presets(text);
            Ok(())
        }
        Some(Command::Show { name }) => show(&name, text),
        Some(Command::Micro(command)) => micro_cmd::micro(command, text),
        Some(Command::Asm(asm)) => assembly(asm, text),
        Some(Command::Model(command)) => model_cmd::model(command, text),
        Some(Command::Trace(command)) => trace_cmd::trace(command, text),
        Some(Command::Lower(args)) => lower(args, text),
        Some(Command::Requests(args)) => requests_cmd::requests(args, text),
        Some(Command::Bench { events, case, json }) => bench_cmd::bench(&case, events, json, text),
    }
}

fn simulate(args: RunArgs, command_line: &[String], text: &mut String) -> Result<(), Failure> {
    let hardware = inputs::hardware(&args.hw)?;
    let workload = inputs::workload(&args.workload)?;
    let started = std::time::Instant::now();
    let result = workloads::run(&hardware, &workload, args.seed).map_err(|e| on_system(&args.workload, &args.hw, e))?;
    let report = reports::Report::new(&result, started.elapsed().as_secs_f64());
    let run = run_dir::Run {
        args: &args,
        command_line,
        hardware: &hardware,
        workload: &workload,
        result: &result,
        report: &report,
    };
    if let Some(dir) = &args.out {
        run_dir::write(dir, &run)?;
    }
    if let Some(file) = &args.html {
        let rerun = format!("npusim run --hw {} --workload {} --seed {}", args.hw, args.workload, args.seed);
        output::write_atomically(file, &run_dir::html(&run, &run_dir::manifest(&run, &rerun)))?;
    }
    if args.json {
        text.push_str(&report.to_json());
    } else {
        text.push_str(&reports::summary(&report));
        if let Some(dir) = &args.out {
            let _ = writeln!(text, "  wrote {} to {}", run_dir::WRITTEN, dir.display());
        }
        if let Some(file) = &args.html {
            let _ = writeln!(text, "  wrote {}", file.display());
        }
    }
    Ok(())
}

pub(crate) fn toml_text<T: serde::Serialize>(value: &T) -> String {
    toml::to_string_pretty(value).expect("specs serialise to TOML")
}

/// Checks `file`; a workload is also checked on the system `on` names, with its seed.
fn validate(file: &str, kind: Option<Kind>, on: (&str, u64), text: &mut String) -> Result<(), Failure> {
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
            let hardware = inputs::hardware(on.0)?;
            workloads::check(&hardware, &w, on.1).map_err(|e| on_system(file, on.0, e))?;
            let _ = writeln!(
                text,
                "{file}: a valid workload (`{}`, model `{}`) that runs on `{}`",
                w.spec.name, w.model.name, hardware.name
            );
        }
        Kind::Memory => {
            let (name, _) = inputs::memory(file)?;
            let _ = writeln!(text, "{file}: a valid memory spec (`{name}`)");
        }
        Kind::Noc => {
            let noc = inputs::noc(file)?;
            let _ = writeln!(text, "{file}: a valid network spec (`{}`, {} routers)", noc.name, noc.noc.routers());
        }
    }
    Ok(())
}

/// A workload that cannot run on a system: the error names both inputs.
pub(crate) fn on_system(workload: &str, hardware: &str, e: workloads::RunError) -> Failure {
    Failure::Input(format!("{workload} on {hardware}: {e}"))
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

pub(crate) fn json<T: serde::Serialize>(value: &T) -> String {
    let mut out = serde_json::to_string_pretty(value).expect("results serialise");
    out.push('\n');
    out
}

fn validation_suite(only: &[String], as_json: bool, list: bool, text: &mut String) -> Result<(), Failure> {
    if list {
        for (path, case) in validate_suite::cases()? {
            let _ = writeln!(text, "{:<14} {}  ({path}, {})", case.id, case.title, case.source);
        }
        return Ok(());
    }
    let verdict = validate_suite::run(only)?;
    text.push_str(&if as_json { json(&verdict) } else { verdict.summary() });
    match verdict.failures.len() {
        0 => Ok(()),
        n => Err(Failure::Input(format!("{n} validation cases did not run (listed above)"))),
    }
}

fn read_text(path: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| Failure::Input(format!("{path}: cannot read the file: {e}")))
}

fn parse_assembly(path: &str) -> Result<isa::asm::Assembly, Failure> {
    isa::asm::parse(&read_text(path)?).map_err(|e| Failure::Input(format!("{path}:{e}")))
}

/// A failed run of `asm`, read from `path`: each program held short of its
/// end is named at the line of the instruction it was held at.
fn unfinished(path: &str, asm: &isa::asm::Assembly, e: &workloads::micro::ProgramError) -> String {
    if e.held.is_empty() {
        return format!("{path}: {}", e.message);
    }
    let source = std::fs::read_to_string(path).unwrap_or_default();
    let held: Vec<String> = e
        .held
        .iter()
        .filter_map(|&(core, instr)| {
            let program = asm.programs.iter().position(|(c, _)| u32::from(*c) == core)?;
            let &(line, column) = asm.positions[program].get(instr)?;
            let text = source.lines().nth(line.saturating_sub(1)).unwrap_or("");
            let text = text.split(";").next().unwrap_or("").split_whitespace().collect::<Vec<_>>().join(" ");
            Some(format!("{path}:{line}:{column}: core {core} is held at `{text}`"))
        })
        .collect();
    format!("{}: {}", held.join("; "), e.message)
}

fn assembly(command: Asm, text: &mut String) -> Result<(), Failure> {
    match command {
        Asm::Run { program, hw, compute_only, json: as_json } => {
            let spec = inputs::hardware(&hw)?;
            let asm = parse_assembly(&program)?;
            let target = workloads::micro::core_target(&spec, None).map_err(Failure::Input)?;
            asm.check(target.local_bytes(), target.cores).map_err(|e| Failure::Input(format!("{program}:{e}")))?;
            let programs: Vec<(u32, isa::Program)> = asm.programs.iter().map(|(c, p)| (*c as u32, p.clone())).collect();
            let run = workloads::micro::run_programs(&spec, &programs, compute_only)
                .map_err(|e| Failure::Input(unfinished(&program, &asm, &e)))?;
            text.push_str(&if as_json { json(&run) } else { reports::micro::program_summary(&run) });
        }
        Asm::Check { program, hw } => {
            let spec = inputs::hardware(&hw)?;
            let asm = parse_assembly(&program)?;
            let target = workloads::micro::core_target(&spec, None).map_err(Failure::Input)?;
            asm.check(target.local_bytes(), target.cores).map_err(|e| Failure::Input(format!("{program}:{e}")))?;
            let instrs: usize = asm.programs.iter().map(|(_, p)| p.instrs.len()).sum();
            let _ = writeln!(
                text,
                "{program}: {} programs, {instrs} instructions, valid on `{}`",
                asm.programs.len(),
                spec.name
            );
        }
        Asm::Encode { program, output } => {
            let asm = parse_assembly(&program)?;
            let bytes = isa::binary::encode(&asm.programs);
            output::write_bytes_atomically(&output, &bytes)?;
            let _ = writeln!(text, "wrote {} bytes to {}", bytes.len(), output.display());
        }
        Asm::Decode { image } => {
            let bytes =
                std::fs::read(&image).map_err(|e| Failure::Input(format!("{image}: cannot read the file: {e}")))?;
            let programs = isa::binary::decode(&bytes).map_err(|e| Failure::Input(format!("{image}: {e}")))?;
            text.push_str(&isa::asm::print_assembly(&programs));
        }
    }
    Ok(())
}

fn lower(args: LowerArgs, text: &mut String) -> Result<(), Failure> {
    let spec = inputs::hardware(&args.hw)?;
    let workload = inputs::workload(&args.workload)?;
    let ops = workloads::inspect::first_step(&spec, &workload, args.device, &args.op).map_err(Failure::Input)?;
    if ops.is_empty() {
        return Err(Failure::Input(format!(
            "no op of the first step on chiplet {} has `{}` in its name",
            args.device, args.op
        )));
    }
    for op in ops {
        let _ = writeln!(text, "{} ({:?}): {}", op.name, op.class, op.description);
        for (core, program) in &op.programs {
            let mut counts = [0usize; 4];
            for i in &program.instrs {
                counts[i.engine().index()] += 1;
            }
            let _ = writeln!(
                text,
                "  core {core:2}: {} instructions (dma {}, matrix {}, vector {}, sync {}), {} bytes of scratchpad",
                program.instrs.len(),
                counts[0],
                counts[1],
                counts[2],
                counts[3],
                program.scratchpad_bytes()
            );
            if args.programs {
                for line in isa::asm::print(program).lines() {
                    let _ = writeln!(text, "    {line}");
                }
            }
        }
    }
    Ok(())
}
