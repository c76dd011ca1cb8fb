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

mod inputs;
mod model_cmd;
mod output;
mod requests_cmd;
mod trace_cmd;

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
    /// Microbenchmarks: a GEMM, a chiplet's memory or network, a collective over links.
    #[command(subcommand)]
    Micro(Micro),
    /// Assemble, check, run and encode hand-written NPU programs (isa/README.md).
    #[command(subcommand)]
    Asm(Asm),
    /// Model configs: derived figures of a shipped model, a TOML config or a Hugging Face config.json.
    #[command(subcommand)]
    Model(model_cmd::ModelCommand),
    /// Step traces: write one step's op graph (JSON Lines) and replay it (traces/README.md).
    #[command(subcommand)]
    Trace(trace_cmd::TraceCommand),
    /// Print how a workload's first step is lowered: tilings and core programs.
    Lower(LowerArgs),
    /// Write the requests a workload serves (arrivals and lengths) as a request-trace CSV.
    Requests(requests_cmd::RequestsArgs),
    /// Measure the event engine: events per second on a fixed synthetic system.
    Bench {
        /// Events to simulate.
        #[arg(long, default_value_t = 20_000_000)]
        events: u64,
    },
}

#[derive(Subcommand, Debug)]
enum Micro {
    /// One GEMM, lowered as in a model run, on one chiplet: cycles, TFLOP/s, stalls, bytes.
    Gemm(GemmArgs),
    /// One chiplet's device memory under a pattern or a trace: bandwidth, latency, row hits, energy.
    Memory(MemoryArgs),
    /// One chiplet's network, cycle by cycle, under synthetic traffic: latency and accepted throughput.
    Noc(NocArgs),
    /// One collective over devices, as transfers on the system's links: time and bus bandwidth.
    Collective(CollectiveArgs),
    /// The host CPU streaming reads over a working set: bandwidth, and where the bytes came from.
    Cpu(CpuArgs),
}

#[derive(clap::Args, Debug)]
struct CpuArgs {
    /// Hardware: a preset name or a TOML file.
    #[arg(long, default_value = models::presets::DEFAULT)]
    hw: String,
    /// Cores reading, each its own data.
    #[arg(long, default_value_t = 1)]
    threads: u32,
    /// Bytes each core reads: bytes (`1000000000`) or with a unit (`1 GB`).
    #[arg(long, default_value = "1 GB")]
    bytes: String,
    /// Distinct bytes each core reads them from (reused until `--bytes` are read); by default all of them.
    #[arg(long)]
    working_set: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct CollectiveArgs {
    /// Hardware: a preset name or a TOML file.
    #[arg(long, default_value = models::presets::DEFAULT)]
    hw: String,
    /// allreduce, allgather, reducescatter or alltoall.
    #[arg(long)]
    op: String,
    /// Buffer size as NCCL counts it: bytes (`268435456`) or with a unit (`256 MiB`).
    #[arg(long)]
    bytes: String,
    /// Devices in ring order, e.g. `0,1,3,2` or `0-7`; by default the first card's chiplets.
    #[arg(long)]
    devices: Option<String>,
    /// ring or tree (all-reduce); ring (all-gather, reduce-scatter); direct (all-to-all).
    #[arg(long)]
    algorithm: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct NocArgs {
    /// Hardware whose chiplet network to drive: a preset, a spec file, or a minimal `[noc]` spec.
    #[arg(long, default_value = models::presets::DEFAULT)]
    hw: String,
    /// Traffic pattern: uniform, transpose, bitcomp, or hotspot (to the memory ports).
    #[arg(long, default_value = "uniform")]
    pattern: String,
    /// Offered load in flits per node per cycle.
    #[arg(long, default_value_t = 0.1)]
    rate: f64,
    /// Flits per packet.
    #[arg(long, default_value_t = 4)]
    packet_flits: u32,
    /// Fraction of hotspot traffic that goes to the memory ports.
    #[arg(long, default_value_t = 0.2)]
    hotspot_fraction: f64,
    /// Print latency against offered load, in twentieths of the ideal saturation load, until the network saturates.
    #[arg(long)]
    sweep: bool,
    /// Join the card's chiplets' meshes into one through their die-to-die links.
    #[arg(long)]
    joined: bool,
    /// Cycles before measuring.
    #[arg(long, default_value_t = 2_000)]
    warmup_cycles: u64,
    /// Cycles whose packets are measured.
    #[arg(long, default_value_t = 10_000)]
    measure_cycles: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct MemoryArgs {
    /// Hardware whose chiplet memory to drive: a preset or a spec file.
    #[arg(long, default_value = models::presets::DEFAULT)]
    hw: String,
    /// Address pattern: sequential, random or strided.
    #[arg(long, default_value = "sequential")]
    pattern: String,
    /// Bytes between successive requests of the strided pattern.
    #[arg(long, default_value_t = 4096)]
    stride: u64,
    /// Fraction of requests that read (the rest write).
    #[arg(long, default_value_t = 1.0)]
    read_ratio: f64,
    /// Bytes to move in all (patterns).
    #[arg(long, default_value = "64 MiB")]
    bytes: String,
    /// Bytes per request.
    #[arg(long, default_value_t = 64)]
    request_bytes: u64,
    /// Memory clock cycles between requests (open loop); 0 keeps --outstanding in flight.
    #[arg(long, default_value_t = 0)]
    interval_cycles: u64,
    /// Requests in flight in the closed loop.
    #[arg(long, default_value_t = 1024)]
    outstanding: u32,
    /// Replay a trace instead: one `<cycle> <hex address> <R|W>` per line.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Do not simulate: write the pattern's requests to this file as a trace,
    /// one every --interval-cycles (at least 1), for this or another simulator.
    #[arg(long, conflicts_with = "trace")]
    write_trace: Option<PathBuf>,
    /// Memory model: detailed (banks, FR-FCFS) or channel (the fast model of end-to-end runs).
    #[arg(long, default_value = "detailed")]
    model: String,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct GemmArgs {
    #[arg(long)]
    m: u32,
    #[arg(long)]
    n: u32,
    #[arg(long)]
    k: u32,
    /// Input dtype of the matrix multiplies.
    #[arg(long, default_value = "fp8")]
    dtype: String,
    /// Hardware: a preset name or a TOML file.
    #[arg(long, default_value = models::presets::DEFAULT)]
    hw: String,
    /// Cores of the chiplet to use (default: all).
    #[arg(long)]
    cores: Option<u32>,
    /// Pure engine timing: memory and scratchpad ports take no time.
    #[arg(long)]
    compute_only: bool,
    /// Override the matrix array as ROWSxCOLS, e.g. 128x128.
    #[arg(long)]
    array: Option<String>,
    /// Override the dataflow: ws, os or is.
    #[arg(long)]
    dataflow: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum Asm {
    /// Run an assembly file (one program, or one per `.core`) on one chiplet and report per-engine timing.
    Run {
        program: String,
        #[arg(long, default_value = models::presets::DEFAULT)]
        hw: String,
        #[arg(long)]
        compute_only: bool,
        #[arg(long)]
        json: bool,
    },
    /// Check an assembly file against a chiplet's scratchpad.
    Check {
        program: String,
        #[arg(long, default_value = models::presets::DEFAULT)]
        hw: String,
    },
    /// Encode an assembly file in the binary form.
    Encode { program: String, output: PathBuf },
    /// Print a binary program image as assembly.
    Decode { image: String },
}

#[derive(clap::Args, Debug)]
struct LowerArgs {
    #[arg(long, default_value = models::presets::DEFAULT)]
    hw: String,
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
        Some(Command::Micro(Micro::Gemm(args))) => micro_gemm(args, &mut text),
        Some(Command::Micro(Micro::Memory(args))) => micro_memory(args, &mut text),
        Some(Command::Micro(Micro::Noc(args))) => micro_noc(args, &mut text),
        Some(Command::Micro(Micro::Collective(args))) => micro_collective(args, &mut text),
        Some(Command::Micro(Micro::Cpu(args))) => micro_cpu(args, &mut text),
        Some(Command::Asm(asm)) => assembly(asm, &mut text),
        Some(Command::Model(command)) => model_cmd::model(command, &mut text),
        Some(Command::Trace(command)) => trace_cmd::trace(command, &mut text),
        Some(Command::Lower(args)) => lower(args, &mut text),
        Some(Command::Requests(args)) => requests_cmd::requests(args, &mut text),
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
        output::write_atomically(&dir.join("requests.csv"), &reports::requests_csv(&result))?;
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
                "  wrote report.json, requests.csv, hardware.toml, workload.toml and manifest.json to {}",
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

fn micro_gemm(args: GemmArgs, text: &mut String) -> Result<(), Failure> {
    let mut spec = inputs::hardware(&args.hw)?;
    let dtype: isa::Dtype = args.dtype.parse().map_err(Failure::Input)?;
    let Some(card) = spec.node.card.as_mut() else {
        return Err(Failure::Input(format!("hardware `{}` has no accelerator chiplet", spec.name)));
    };
    let matrix = &mut card.chiplet.core.matrix;
    if let Some(array) = &args.array {
        let parsed = array.split_once('x').and_then(|(r, c)| Some((r.parse::<u32>().ok()?, c.parse::<u32>().ok()?)));
        let Some((rows, cols)) = parsed.filter(|(r, c)| *r > 0 && *c > 0) else {
            return Err(Failure::Input(format!("--array {array}: expected ROWSxCOLS such as 128x128")));
        };
        (matrix.rows, matrix.cols) = (rows, cols);
    }
    if let Some(dataflow) = &args.dataflow {
        matrix.dataflow = match dataflow.as_str() {
            "ws" => models::spec::Dataflow::WeightStationary,
            "os" => models::spec::Dataflow::OutputStationary,
            "is" => models::spec::Dataflow::InputStationary,
            other => return Err(Failure::Input(format!("--dataflow {other}: expected ws, os or is"))),
        };
    }
    let bench = workloads::micro::GemmBench {
        m: args.m,
        n: args.n,
        k: args.k,
        dtype,
        cores: args.cores,
        compute_only: args.compute_only,
    };
    let run = workloads::micro::gemm(&spec, bench).map_err(Failure::Input)?;
    if args.json {
        text.push_str(&json(&run));
    } else {
        text.push_str(&reports::micro::gemm_summary(&run));
    }
    Ok(())
}

fn micro_memory(args: MemoryArgs, text: &mut String) -> Result<(), Failure> {
    use workloads::micro::{MemoryBench, Pattern, RequestSource};
    let (name, memory) = inputs::memory(&args.hw)?;
    let model = match args.model.as_str() {
        "detailed" => models::spec::MemoryModel::Detailed,
        "channel" => models::spec::MemoryModel::Channel,
        other => return Err(Failure::Input(format!("--model {other}: expected detailed or channel"))),
    };
    if !(0.0..=1.0).contains(&args.read_ratio) {
        return Err(Failure::Input(format!("--read-ratio {}: expected a fraction from 0 to 1", args.read_ratio)));
    }
    let source = match &args.trace {
        Some(path) => {
            let file = std::fs::File::open(path)
                .map_err(|e| Failure::Input(format!("{}: cannot read the file: {e}", path.display())))?;
            let name = path.display().to_string();
            let lines = traces::memory::read(std::io::BufReader::new(file))
                .map(move |r| r.map(|q| (q.cycle, q.address, q.write)).map_err(|e| format!("{name}:{e}")));
            RequestSource::Trace(Box::new(lines))
        }
        None => {
            let pattern = match args.pattern.as_str() {
                "sequential" => Pattern::Sequential,
                "random" => Pattern::Random,
                "strided" => Pattern::Strided { stride: args.stride },
                other => {
                    return Err(Failure::Input(format!("--pattern {other}: expected sequential, random or strided")));
                }
            };
            let bytes = parse_bytes(&args.bytes).map_err(|e| Failure::Input(format!("--bytes {}: {e}", args.bytes)))?;
            RequestSource::Pattern { pattern, requests: bytes.div_ceil(args.request_bytes.max(1)) }
        }
    };
    let bench = MemoryBench {
        model,
        request_bytes: args.request_bytes,
        read_ratio: args.read_ratio,
        interval_cycles: args.interval_cycles,
        outstanding: args.outstanding,
        seed: args.seed,
    };
    if let Some(path) = &args.write_trace {
        let RequestSource::Pattern { pattern, requests } = source else {
            return Err(Failure::Input("--write-trace writes a pattern, not a trace".into()));
        };
        let interval = args.interval_cycles.max(1);
        let capacity = memory.capacity().get();
        let made = workloads::micro::PatternRequests::new(
            pattern,
            requests,
            args.request_bytes,
            capacity,
            args.read_ratio,
            args.seed,
        );
        output::write_atomically_with(path, |w| {
            for (i, (address, write)) in made.enumerate() {
                let request = traces::memory::MemoryRequest { cycle: i as u64 * interval, address, write };
                writeln!(w, "{request}")?;
            }
            Ok(())
        })?;
        text.push_str(&format!("wrote {requests} requests to {}\n", path.display()));
        return Ok(());
    }
    let run = workloads::micro::memory(&name, &memory, bench, source).map_err(Failure::Input)?;
    text.push_str(&if args.json { json(&run) } else { reports::micro::memory_summary(&run) });
    Ok(())
}

fn micro_noc(args: NocArgs, text: &mut String) -> Result<(), Failure> {
    use workloads::micro::{NocBench, NocPattern};
    let input = inputs::noc(&args.hw)?;
    let pattern = match args.pattern.as_str() {
        "uniform" => NocPattern::Uniform,
        "transpose" => NocPattern::Transpose,
        "bitcomp" => NocPattern::BitComplement,
        "hotspot" => NocPattern::Hotspot { fraction: args.hotspot_fraction },
        other => {
            return Err(Failure::Input(format!("--pattern {other}: expected uniform, transpose, bitcomp or hotspot")));
        }
    };
    let bench = NocBench {
        rate: args.rate,
        packet_flits: args.packet_flits,
        sweep: args.sweep,
        joined: args.joined,
        warmup_cycles: args.warmup_cycles,
        measure_cycles: args.measure_cycles,
        seed: args.seed,
        ..NocBench::new(pattern)
    };
    let run = workloads::micro::noc(&input, &bench).map_err(Failure::Input)?;
    text.push_str(&if args.json { json(&run) } else { reports::micro::noc_summary(&run) });
    Ok(())
}

fn micro_collective(args: CollectiveArgs, text: &mut String) -> Result<(), Failure> {
    use workloads::collective::{Algorithm, CollectiveOp};
    let spec = inputs::hardware(&args.hw)?;
    let op = match args.op.as_str() {
        "allreduce" => CollectiveOp::AllReduce,
        "allgather" => CollectiveOp::AllGather,
        "reducescatter" => CollectiveOp::ReduceScatter,
        "alltoall" => CollectiveOp::AllToAll,
        other => {
            return Err(Failure::Input(format!(
                "--op {other}: expected allreduce, allgather, reducescatter or alltoall"
            )));
        }
    };
    let algorithm = match args.algorithm.as_deref() {
        None => None,
        Some("ring") => Some(Algorithm::Ring),
        Some("tree") => Some(Algorithm::Tree),
        Some("direct") => Some(Algorithm::Direct),
        Some(other) => return Err(Failure::Input(format!("--algorithm {other}: expected ring, tree or direct"))),
    };
    let bytes = parse_bytes(&args.bytes).map_err(|e| Failure::Input(format!("--bytes {}: {e}", args.bytes)))?;
    let devices = args
        .devices
        .as_deref()
        .map(parse_devices)
        .transpose()
        .map_err(|e| Failure::Input(format!("--devices: {e}")))?;
    let bench = workloads::micro::CollectiveBench { op, algorithm, bytes, devices };
    let run = workloads::micro::collective(&spec, &bench).map_err(Failure::Input)?;
    text.push_str(&if args.json { json(&run) } else { reports::micro::collective_summary(&run) });
    Ok(())
}

fn micro_cpu(args: CpuArgs, text: &mut String) -> Result<(), Failure> {
    let spec = inputs::hardware(&args.hw)?;
    let bytes = parse_bytes(&args.bytes).map_err(|e| Failure::Input(format!("--bytes {}: {e}", args.bytes)))?;
    let working_set = match &args.working_set {
        Some(w) => parse_bytes(w).map_err(|e| Failure::Input(format!("--working-set {w}: {e}")))?,
        None => bytes,
    };
    let cores = spec.node.cpu.cores;
    if args.threads == 0 || args.threads > cores {
        return Err(Failure::Input(format!("--threads {}: expected 1 to {cores} (the host's cores)", args.threads)));
    }
    if bytes == 0 || working_set == 0 || working_set > bytes {
        return Err(Failure::Input(format!(
            "--bytes {bytes} --working-set {working_set}: expected a working set of at least a byte and at most the bytes read"
        )));
    }
    let bench = workloads::micro::CpuBench { threads: args.threads, bytes, working_set };
    let run = workloads::micro::cpu(&spec, bench).map_err(Failure::Input)?;
    text.push_str(&if args.json { json(&run) } else { reports::micro::cpu_summary(&run) });
    Ok(())
}

/// A byte count: a plain number of bytes, or a quantity with its unit.
fn parse_bytes(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(n) => Ok(n),
        Err(_) => text.parse::<models::units::Bytes>().map(|b| b.get()).map_err(|e| e.to_string()),
    }
}

/// Device indices: a comma-separated list of numbers and `a-b` ranges.
fn parse_devices(text: &str) -> Result<Vec<u32>, String> {
    let number = |s: &str| s.trim().parse::<u32>().map_err(|_| format!("`{s}` is not a device index"));
    let mut out = Vec::new();
    for item in text.split(',') {
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (number(a)?, number(b)?);
                if a > b {
                    return Err(format!("the range `{item}` runs backwards"));
                }
                out.extend(a..=b);
            }
            None => out.push(number(item)?),
        }
    }
    Ok(out)
}

fn json<T: serde::Serialize>(value: &T) -> String {
    let mut out = serde_json::to_string_pretty(value).expect("results serialise");
    out.push('\n');
    out
}

fn read_text(path: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| Failure::Input(format!("{path}: cannot read the file: {e}")))
}

fn parse_assembly(path: &str) -> Result<isa::asm::Assembly, Failure> {
    isa::asm::parse(&read_text(path)?).map_err(|e| Failure::Input(format!("{path}:{e}")))
}

fn assembly(command: Asm, text: &mut String) -> Result<(), Failure> {
    match command {
        Asm::Run { program, hw, compute_only, json: as_json } => {
            let spec = inputs::hardware(&hw)?;
            let asm = parse_assembly(&program)?;
            let scratchpad = workloads::micro::core_target(&spec, None).map_err(Failure::Input)?.local_bytes();
            asm.check(scratchpad).map_err(|e| Failure::Input(format!("{program}:{e}")))?;
            let programs: Vec<(u32, isa::Program)> = asm.programs.into_iter().map(|(c, p)| (c as u32, p)).collect();
            let run = workloads::micro::run_programs(&spec, &programs, compute_only)
                .map_err(|e| Failure::Input(format!("{program}: {e}")))?;
            text.push_str(&if as_json { json(&run) } else { reports::micro::program_summary(&run) });
        }
        Asm::Check { program, hw } => {
            let spec = inputs::hardware(&hw)?;
            let asm = parse_assembly(&program)?;
            let scratchpad = workloads::micro::core_target(&spec, None).map_err(Failure::Input)?.local_bytes();
            asm.check(scratchpad).map_err(|e| Failure::Input(format!("{program}:{e}")))?;
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
