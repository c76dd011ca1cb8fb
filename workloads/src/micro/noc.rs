//! The on-chip network alone, cycle by cycle: synthetic traffic offered at a
//! rate, and the figures NoC simulators report (packet and network latency,
//! accepted throughput), one point or a sweep of offered load up to
//! saturation.

use models::noc::{
    Bernoulli, DieToDie, Network, NetworkConfig, NetworkFigures, Pattern, Topology, TopologyKind, Window,
};
use models::parts::NocInput;
use models::spec::D2dTopology;
use serde::Serialize;
use sim_core::{Summary, SystemBuilder, Time};

/// Where packets go; hotspot traffic sends a fraction of the packets to the
/// routers the memory controller's ports attach to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NocPattern {
    Uniform,
    Transpose,
    BitComplement,
    Hotspot { fraction: f64 },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NocBench {
    pub pattern: NocPattern,
    /// Offered load in flits per node per cycle (ignored by a sweep).
    pub rate: f64,
    pub packet_flits: u32,
    /// Sweep the offered load in twentieths of the ideal saturation rate, up
    /// to 1.2 times it, until the network saturates.
    pub sweep: bool,
    /// Join all the card's chiplets' meshes into one through their die-to-die links.
    pub joined: bool,
    pub warmup_cycles: u64,
    pub measure_cycles: u64,
    pub seed: u64,
}

impl NocBench {
    pub fn new(pattern: NocPattern) -> NocBench {
        NocBench {
            pattern,
            rate: 0.1,
            packet_flits: 4,
            sweep: false,
            joined: false,
            warmup_cycles: 2_000,
            measure_cycles: 10_000,
            seed: 1,
        }
    }
}

/// One offered load and what the network did with it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NocPoint {
    /// The load asked for, and the load the sources created in the measurement window, flits per node per cycle.
    pub offered_rate: f64,
    pub offered: f64,
    /// Flits per node per cycle ejected in the window.
    pub accepted: f64,
    /// Creation to tail ejection of the measured packets, in cycles.
    pub latency_cycles: LatencyCycles,
    /// Head injection to tail ejection, in cycles (excludes waiting at the source).
    pub network_latency_cycles: LatencyCycles,
    /// The sources' queues grow without bound: some source's queue grew over
    /// the measurement window by more than 5 % of the packets it created, or
    /// the measured packets did not all arrive within the run's limit.
    pub saturated: bool,
    /// The most any source's queue grew over the window, as a share of the packets it created.
    pub backlog_growth: f64,
    /// Flits per cycle on the busiest link, and on the mean link.
    pub link_utilization_max: f64,
    pub link_utilization_mean: f64,
    pub cycles: u64,
    pub events: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencyCycles {
    pub mean: f64,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
    pub packets: u64,
}

impl From<Summary> for LatencyCycles {
    fn from(s: Summary) -> LatencyCycles {
        LatencyCycles { mean: s.mean, p50: s.p50, p99: s.p99, max: s.max, packets: s.count }
    }
}

/// The network studied and its points.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NocRun {
    pub hardware: String,
    pub topology: String,
    pub nodes: u32,
    /// Chiplets joined into the network (1 unless `joined`).
    pub chiplets: u32,
    pub pattern: String,
    pub packet_flits: u32,
    pub flit_bytes: u64,
    pub clock_hz: u64,
    pub router_cycles: u32,
    pub link_cycles: u32,
    pub virtual_channels: u32,
    pub buffer_flits: u32,
    /// The mean over the pattern's source-destination pairs of a lone packet's latency.
    pub zero_load_latency_cycles: f64,
    /// The load at which the pattern's busiest channel is full under the topology's routing.
    pub ideal_saturation: f64,
    /// The most the network accepted at any point (above the saturation
    /// rate, flows clear of the busiest channels still grow).
    pub max_accepted: f64,
    /// In a sweep, the highest offered load the network kept up with: the
    /// point before the first saturated one.
    pub saturation_rate: Option<f64>,
    pub points: Vec<NocPoint>,
}

/// The network of `input` as the cycle-level model sees it, joined over the card's chiplets if asked.
fn network_config(input: &NocInput, joined: bool) -> Result<(NetworkConfig, u32, Vec<u32>), String> {
    let noc = &input.noc;
    let mut cfg = NetworkConfig {
        topology: noc.topology(),
        virtual_channels: noc.virtual_channels,
        buffer_flits: noc.buffer_flits,
        router_cycles: noc.router_latency_cycles,
        link_cycles: noc.link_latency_cycles,
        die_to_die: None,
        clock: noc.clock.clock(),
    };
    let memory = noc.memory_routers();
    if !joined {
        return Ok((cfg, 1, memory));
    }
    let card = input.card.as_ref().ok_or("joining chiplets needs a whole system's spec, with its card")?;
    let Some(d2d) = card.d2d.as_ref().filter(|d| d.topology == D2dTopology::Mesh) else {
        return Err("joining chiplets' meshes needs a card whose die-to-die topology is a mesh".into());
    };
    if noc.topology != TopologyKind::Mesh {
        return Err("joining chiplets needs each chiplet's network to be a mesh".into());
    }
    let (tiles_x, tiles_y) = (d2d.columns.max(1), card.chiplets / d2d.columns.max(1));
    let (c, r) = (noc.columns, noc.rows);
    cfg.topology = Topology { kind: TopologyKind::Mesh, columns: c * tiles_x, rows: r * tiles_y };
    // A die-to-die link's bandwidth is shared by the mesh links crossing that chiplet edge.
    let flit_rate = noc.link_width.get() as f64 * noc.clock.hz() as f64;
    let gap =
        |links: u32| ((flit_rate * links as f64 / d2d.bandwidth.bytes_per_s()) * 1000.0).ceil().max(1000.0) as u64;
    let latency = noc.clock.clock().cycles_covering(d2d.latency.time()).0;
    cfg.die_to_die = Some(DieToDie {
        tile_columns: c,
        tile_rows: r,
        latency_cycles: latency.max(1) as u32,
        millicycles_per_flit_x: gap(r),
        millicycles_per_flit_y: gap(c),
    });
    let width = c * tiles_x;
    let hotspots = (0..tiles_x * tiles_y)
        .flat_map(|tile| {
            let (ox, oy) = ((tile % tiles_x) * c, (tile / tiles_x) * r);
            memory.iter().map(move |&m| (oy + m / c) * width + ox + m % c)
        })
        .collect();
    Ok((cfg, tiles_x * tiles_y, hotspots))
}

fn run_point(
    cfg: &NetworkConfig,
    pattern: &Pattern,
    bench: &NocBench,
    rate: f64,
) -> Result<(NetworkFigures, u64), String> {
    let traffic = Bernoulli::new(pattern.clone(), cfg.topology, rate, bench.packet_flits, bench.seed)?;
    let window = Window {
        warmup: bench.warmup_cycles,
        measure: bench.measure_cycles.max(1),
        limit: bench.warmup_cycles + 4 * bench.measure_cycles.max(1),
    };
    let mut builder = SystemBuilder::new();
    let id = builder.add("network", Network::new(cfg.clone(), window, Box::new(traffic)));
    builder.post(Time::ZERO, id, models::msg::Msg::Wake { token: 0 });
    let mut system = builder.build().map_err(|e| e.to_string())?;
    system.run_to_end();
    let network = system.get::<Network>(id).ok_or("the network is missing")?;
    Ok((network.figures(), system.events()))
}

/// Offer `bench`'s traffic to the network of `input`.
pub fn noc(input: &NocInput, bench: &NocBench) -> Result<NocRun, String> {
    let (cfg, chiplets, hotspots) = network_config(input, bench.joined)?;
    let (pattern, name) = match bench.pattern {
        NocPattern::Uniform => (Pattern::Uniform, "uniform".to_string()),
        NocPattern::Transpose => (Pattern::Transpose, "transpose".into()),
        NocPattern::BitComplement => (Pattern::BitComplement, "bitcomp".into()),
        NocPattern::Hotspot { fraction } => (
            Pattern::Hotspot { nodes: hotspots, fraction },
            format!("hotspot ({:.0}% to memory ports)", fraction * 100.0),
        ),
    };
    pattern.check(&cfg.topology)?;
    if bench.packet_flits == 0 {
        return Err("--packet-flits must be at least 1".into());
    }
    let t = cfg.topology;
    let ideal = pattern.ideal_saturation(&t, |a, b| 1000.0 / cfg.link_timing(a, b).1 as f64);
    let nodes = t.nodes();
    let zero_load = (0..nodes)
        .flat_map(|s| pattern.destinations(s, &t).into_iter().map(move |(d, p)| (s, d, p)))
        .map(|(s, d, p)| p * cfg.zero_load_latency(s, d, bench.packet_flits) as f64)
        .sum::<f64>()
        / nodes as f64;
    let rates: Vec<f64> = if bench.sweep {
        // Past the ideal too: a network that reaches it shows where it stops.
        (1..=24).map(|k| (ideal * k as f64 / 20.0).min(1.0)).collect()
    } else {
        if !(bench.rate > 0.0 && bench.rate <= 1.0) {
            return Err(format!("--rate {}: expected flits per node per cycle above 0 and at most 1", bench.rate));
        }
        vec![bench.rate]
    };
    let mut points = Vec::new();
    for rate in rates {
        let (f, events) = run_point(&cfg, &pattern, bench, rate)?;
        let saturated = f.saturated || f.backlog_growth > 0.05;
        points.push(NocPoint {
            offered_rate: rate,
            offered: f.offered,
            accepted: f.accepted,
            latency_cycles: f.latency.into(),
            network_latency_cycles: f.network_latency.into(),
            saturated,
            backlog_growth: f.backlog_growth,
            link_utilization_max: f.link_utilization_max,
            link_utilization_mean: f.link_utilization_mean,
            cycles: f.cycles,
            events,
        });
        if saturated && bench.sweep {
            break;
        }
    }
    let kind = match t.kind {
        TopologyKind::Mesh => "mesh",
        TopologyKind::Ring => "ring",
        TopologyKind::Crossbar => "crossbar",
    };
    Ok(NocRun {
        hardware: input.name.clone(),
        topology: format!("{}x{} {kind}", t.columns, t.rows),
        nodes,
        chiplets,
        pattern: name,
        packet_flits: bench.packet_flits,
        flit_bytes: input.noc.link_width.get(),
        clock_hz: cfg.clock.hz(),
        router_cycles: cfg.router_cycles,
        link_cycles: cfg.link_cycles,
        virtual_channels: cfg.virtual_channels,
        buffer_flits: cfg.buffer_flits,
        zero_load_latency_cycles: zero_load,
        ideal_saturation: ideal,
        max_accepted: points.iter().map(|p| p.accepted).fold(0.0, f64::max),
        saturation_rate: bench
            .sweep
            .then(|| points.iter().take_while(|p| !p.saturated).map(|p| p.offered_rate).last())
            .flatten(),
        points,
    })
}
