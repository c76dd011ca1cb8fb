//! `npusim micro`: one component or one kernel measured alone.

use crate::{Failure, inputs, json, output};
use clap::Subcommand;
use std::io::Write as _;
use std::path::PathBuf;

/// Run one microbenchmark, appending its report to `text`.
pub fn micro(command: Micro, text: &mut String) -> Result<(), Failure> {
    match command {
        Micro::Gemm(args) => micro_gemm(args, text),
        Micro::Attention(args) => micro_attention(args, text),
        Micro::Memory(args) => micro_memory(args, text),
        Micro::Noc(args) => micro_noc(args, text),
        Micro::Collective(args) => micro_collective(args, text),
        Micro::Cpu(args) => micro_cpu(args, text),
    }
}

#[derive(Subcommand, Debug)]
pub enum Micro {
    /// One GEMM, lowered as in a model run, on one chiplet: cycles, TFLOP/s, stalls, bytes.
    Gemm(GemmArgs),
    /// One attention kernel, decode or prefill, multi-head or MLA's absorbed form, on one chiplet: GB/s, TFLOP/s, bytes.
    Attention(AttentionArgs),
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
pub struct CpuArgs {
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
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct CollectiveArgs {
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
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct NocArgs {
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
    /// Seed of the random addresses or destinations.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct MemoryArgs {
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
    /// Seed of the random addresses or destinations.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct AttentionArgs {
    /// Requests in the batch.
    #[arg(long, default_value_t = 64)]
    batch: u32,
    /// Queries per request: 1 for decode; the prompt length for a (causal) prefill.
    #[arg(long, default_value_t = 1)]
    queries: u32,
    /// Keys per request (cached tokens plus the queries).
    #[arg(long, default_value_t = 4096)]
    context: u32,
    /// Query heads.
    #[arg(long, default_value_t = 128)]
    heads: u32,
    /// `mla`: MLA's absorbed form, one latent KV head of 512 + 64 dimensions that keys and values share
    /// (as FlashMLA); `mha`: --kv-heads heads of --head-dim, keys and values apart.
    #[arg(long, default_value = "mla")]
    form: String,
    /// KV heads (mha).
    #[arg(long, default_value_t = 8)]
    kv_heads: u32,
    /// Dimension of each query, key and value head (mha).
    #[arg(long, default_value_t = 128)]
    head_dim: u32,
    /// Dtype of the queries, the cache and the matrix multiplies.
    #[arg(long, default_value = "bf16")]
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
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct GemmArgs {
    /// Rows of the output (tokens, for a model's GEMM).
    #[arg(long)]
    m: u32,
    /// Columns of the output (output features).
    #[arg(long)]
    n: u32,
    /// The reduction dimension (input features).
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
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    json: bool,
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

fn micro_attention(args: AttentionArgs, text: &mut String) -> Result<(), Failure> {
    use workloads::micro::{AttentionBench, AttentionShape};
    let spec = inputs::hardware(&args.hw)?;
    let dtype: isa::Dtype = args.dtype.parse().map_err(Failure::Input)?;
    let heads = (args.heads, args.kv_heads, args.head_dim);
    let shape = match args.form.as_str() {
        "mla" => AttentionShape {
            queries: args.queries,
            ..AttentionBench::mla_decode(args.batch, args.heads, args.context, dtype).shape
        },
        "mha" => AttentionBench::mha(args.batch, args.queries, args.context, heads, dtype).shape,
        other => return Err(Failure::Input(format!("--form {other}: expected mla or mha"))),
    };
    let bench = AttentionBench { shape, cores: args.cores, compute_only: args.compute_only };
    let run = workloads::micro::attention(&spec, bench).map_err(Failure::Input)?;
    if args.json {
        text.push_str(&json(&run));
    } else {
        text.push_str(&reports::micro::attention_summary(&run));
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
    within("--request-bytes", args.request_bytes, 1..=1 << 20, "bytes (one request moves at most 1 MiB)")?;
    within("--interval-cycles", args.interval_cycles, 0..=1 << 20, "memory cycles between requests")?;
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
            let requests = bytes.div_ceil(args.request_bytes);
            within("--bytes / --request-bytes", requests, 1..=1 << 26, "requests (about 40 s of simulation)")?;
            RequestSource::Pattern { pattern, requests }
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
    let cycles = args.warmup_cycles.saturating_add(args.measure_cycles);
    within("--warmup-cycles + --measure-cycles", cycles, 1..=100_000_000, "cycles")?;
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
    within("--bytes", bytes, 1..=1 << 36, "bytes (64 GiB, about a second of simulation)")?;
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
    within("--bytes", bytes, 1..=1 << 50, "bytes (1 PiB)")?;
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

/// Refuses an argument outside `range` before any work: runaway sizes would
/// take hours or exhaust memory, and wrap the simulated clock.
fn within(arg: &str, value: u64, range: std::ops::RangeInclusive<u64>, unit: &str) -> Result<(), Failure> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(Failure::Input(format!("{arg}: expected {} to {} {unit}, found {value}", range.start(), range.end())))
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
