//! The memory system alone: a traffic generator driving one chiplet's
//! device memory with a pattern or a trace, and the figures DRAM simulators
//! report (bandwidth, latency percentiles, row-buffer hit rate, energy).

use models::machine::{add_memory, memory_energy};
use models::msg::{MemRequest, Msg};
use models::spec::{MemoryModel, MemorySpec};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use sim_core::{Component, ComponentId, Ctx, StatValue, SystemBuilder, Time};

/// How addresses follow each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// Consecutive requests cover consecutive bytes.
    Sequential,
    /// Uniformly random request-aligned addresses over the memory.
    Random,
    /// Each request `stride` bytes after the previous one.
    Strided { stride: u64 },
}

/// Where requests come from.
pub enum RequestSource {
    /// `requests` requests following `pattern`.
    Pattern { pattern: Pattern, requests: u64 },
    /// A trace: (memory cycle, address, write) per request, read as the run goes.
    Trace(Box<dyn Iterator<Item = Result<(u64, u64, bool), String>>>),
}

impl std::fmt::Debug for RequestSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestSource::Pattern { pattern, requests } => write!(f, "{requests} requests, {pattern:?}"),
            RequestSource::Trace(_) => f.write_str("a trace"),
        }
    }
}

/// How to drive the memory.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemoryBench {
    pub model: MemoryModel,
    /// Bytes each request moves.
    pub request_bytes: u64,
    /// Fraction of requests that read (the rest write).
    pub read_ratio: f64,
    /// Memory command-clock cycles between requests (open loop); 0 keeps
    /// `outstanding` requests in flight instead (closed loop). Traces give
    /// their own cycles.
    pub interval_cycles: u64,
    pub outstanding: u32,
    pub seed: u64,
}

/// What the memory did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemoryRun {
    pub hardware: String,
    pub model: String,
    pub requests: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub seconds: f64,
    pub bandwidth_bytes_per_s: f64,
    pub peak_bytes_per_s: f64,
    /// Bytes per second of each pseudo-channel over the run.
    pub channel_bandwidth_bytes_per_s: Vec<f64>,
    /// Read latency, arrival to last data.
    pub latency_ns: LatencyFigures,
    pub latency_cycles: LatencyFigures,
    /// Accesses that found their row open (detailed model only).
    pub row_hit_rate: Option<f64>,
    pub activates: u64,
    pub refreshes: u64,
    /// Dynamic energy of the memory's actions plus its background power over the run.
    pub energy_j: f64,
    pub events: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencyFigures {
    pub mean: f64,
    pub p50: f64,
    pub p99: f64,
}

/// The requests of a pattern: each one's address and whether it writes.
#[derive(Debug)]
pub struct PatternRequests {
    pattern: Pattern,
    requests: u64,
    request_bytes: u64,
    capacity: u64,
    read_ratio: f64,
    rng: Xoshiro256PlusPlus,
    made: u64,
}

impl PatternRequests {
    /// `requests` requests of `request_bytes` over a memory of `capacity` bytes.
    pub fn new(pattern: Pattern, requests: u64, request_bytes: u64, capacity: u64, read_ratio: f64, seed: u64) -> Self {
        PatternRequests {
            pattern,
            requests,
            request_bytes: request_bytes.max(1),
            capacity: capacity.max(request_bytes).max(1),
            read_ratio,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            made: 0,
        }
    }
}

impl Iterator for PatternRequests {
    type Item = (u64, bool);

    fn next(&mut self) -> Option<(u64, bool)> {
        if self.made >= self.requests {
            return None;
        }
        let size = self.request_bytes;
        let address = match self.pattern {
            Pattern::Sequential => self.made * size,
            Pattern::Random => self.rng.random_range(0..(self.capacity / size).max(1)) * size,
            Pattern::Strided { stride } => self.made * stride,
        } % self.capacity;
        let write = self.rng.random_range(0.0..1.0) >= self.read_ratio;
        self.made += 1;
        Some((address, write))
    }
}

/// Where the generator's requests come from.
enum Source {
    Pattern(PatternRequests),
    Trace(Box<dyn Iterator<Item = Result<(u64, u64, bool), String>>>),
}

/// Issues requests and counts replies.
struct Generator {
    memory: ComponentId,
    bench: MemoryBench,
    source: Source,
    tck: Time,
    capacity: u64,
    issued: u64,
    completed: u64,
    error: Option<String>,
}

impl Generator {
    /// The next request: when (memory cycle, for open loops), where, and whether it writes.
    fn next_request(&mut self) -> Option<(Option<u64>, u64, bool)> {
        match &mut self.source {
            Source::Pattern(requests) => {
                let (address, write) = requests.next()?;
                let at = (self.bench.interval_cycles > 0).then(|| self.issued * self.bench.interval_cycles);
                Some((at, address, write))
            }
            Source::Trace(lines) => match lines.next()? {
                Ok((cycle, address, write)) => Some((Some(cycle), address % self.capacity, write)),
                Err(e) => {
                    self.error = Some(e);
                    None
                }
            },
        }
    }

    fn issue(&mut self, address: u64, write: bool, ctx: &mut Ctx<'_, Msg>) {
        let req = MemRequest {
            addr: address,
            bytes: self.bench.request_bytes,
            write,
            reply_to: ctx.me(),
            token: self.issued,
            reply_delay: Time::ZERO,
        };
        ctx.send(self.memory, Time::ZERO, Msg::Mem(req));
        self.issued += 1;
    }

    /// Open loop: issue every request due now, then wake for the next.
    fn open_loop(&mut self, ctx: &mut Ctx<'_, Msg>) {
        while let Some((at, address, write)) = self.next_request() {
            let due = Time::from_ps(at.unwrap_or(0) * self.tck.as_ps()).max(ctx.now());
            if due > ctx.now() {
                // Issue it when due: the wake carries the request.
                ctx.send_at(
                    ctx.me(),
                    due,
                    Msg::Mem(MemRequest {
                        addr: address,
                        bytes: 0,
                        write,
                        reply_to: ctx.me(),
                        token: 0,
                        reply_delay: Time::ZERO,
                    }),
                );
                return;
            }
            self.issue(address, write, ctx);
        }
    }
}

impl Component<Msg> for Generator {
    fn kind(&self) -> &'static str {
        "bench.generator"
    }

    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        let closed = matches!(self.source, Source::Pattern(_)) && self.bench.interval_cycles == 0;
        match msg {
            Msg::Wake { .. } => {
                if closed {
                    for _ in 0..self.bench.outstanding.max(1) {
                        let Some((_, address, write)) = self.next_request() else { break };
                        self.issue(address, write, ctx);
                    }
                } else {
                    self.open_loop(ctx);
                }
            }
            // A due request of an open loop, parked in a message to ourselves.
            Msg::Mem(req) => {
                self.issue(req.addr, req.write, ctx);
                self.open_loop(ctx);
            }
            Msg::Done { .. } => {
                self.completed += 1;
                if closed && let Some((_, address, write)) = self.next_request() {
                    self.issue(address, write, ctx);
                }
            }
            _ => {}
        }
    }
}

fn figures(stats: &sim_core::Stats, ps_per_unit: f64) -> LatencyFigures {
    stats
        .iter()
        .find(|s| s.name == "latency")
        .and_then(|s| match &s.value {
            StatValue::Distribution(d) if d.count > 0 => Some(LatencyFigures {
                mean: d.mean / ps_per_unit,
                p50: d.p50 as f64 / ps_per_unit,
                p99: d.p99 as f64 / ps_per_unit,
            }),
            _ => None,
        })
        .unwrap_or_default()
}

/// Drive the chiplet memory `mem` (of the hardware `name`) with `source`.
pub fn memory(name: &str, mem: &MemorySpec, bench: MemoryBench, source: RequestSource) -> Result<MemoryRun, String> {
    if bench.request_bytes == 0 {
        return Err("requests must move at least one byte".into());
    }
    let timing = mem.timing.resolve()?;
    let mut builder: SystemBuilder<Msg> = SystemBuilder::new();
    let memory = add_memory(&mut builder, "memory", mem, bench.model);
    let capacity = mem.capacity().get().max(bench.request_bytes);
    let source = match source {
        RequestSource::Pattern { pattern, requests } => Source::Pattern(PatternRequests::new(
            pattern,
            requests,
            bench.request_bytes,
            capacity,
            bench.read_ratio,
            bench.seed,
        )),
        RequestSource::Trace(lines) => Source::Trace(lines),
    };
    let generator = builder.add(
        "generator",
        Generator { memory, bench, source, tck: timing.t_ck, capacity, issued: 0, completed: 0, error: None },
    );
    builder.post(Time::ZERO, generator, Msg::Wake { token: 0 });
    let mut system = builder.build().map_err(|e| e.to_string())?;
    system.run_to_end();
    let g = system.get::<Generator>(generator).ok_or("the generator is missing")?;
    if let Some(e) = &g.error {
        return Err(e.clone());
    }
    let elapsed = system.now();
    let stats = system.stats();
    let m = &stats[memory.index()].stats;
    let value = |name: &str| m.scalar_value(name).unwrap_or(0);
    let (read, written) = (value("read_bytes"), value("write_bytes"));
    let seconds = elapsed.as_secs_f64();
    let per_s = |bytes: u64| if seconds > 0.0 { bytes as f64 / seconds } else { 0.0 };
    let channels = mem.pseudo_channel_count() as usize;
    let channel_bandwidth = (0..channels).map(|c| per_s(value(&format!("channel{c}.bytes")))).collect();
    let accesses = value("row_hits") + value("row_misses") + value("row_conflicts");
    let dynamic: f64 = memory_energy(mem).iter().map(|a| value(&a.stat) as f64 * a.joules_per_unit).sum();
    let background = mem.energy.background_per_stack.watts() * mem.stacks as f64 * seconds;
    Ok(MemoryRun {
        hardware: name.to_string(),
        model: format!("{:?}", bench.model).to_lowercase(),
        requests: g.issued,
        read_bytes: read,
        write_bytes: written,
        seconds,
        bandwidth_bytes_per_s: per_s(read + written),
        peak_bytes_per_s: mem.peak_bandwidth().bytes_per_s(),
        channel_bandwidth_bytes_per_s: channel_bandwidth,
        latency_ns: figures(m, 1e3),
        latency_cycles: figures(m, timing.t_ck.as_ps() as f64),
        row_hit_rate: (accesses > 0).then(|| value("row_hits") as f64 / accesses as f64),
        activates: value("actions.activate"),
        refreshes: value("actions.refresh"),
        energy_j: dynamic + background,
        events: system.events(),
    })
}
