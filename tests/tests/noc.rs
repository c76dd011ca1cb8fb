//! The cycle-level on-chip network against what its topology and timing imply.

use models::noc::{Network, NetworkConfig, Traffic, Window};
use models::parts::{NocInput, noc_of};
use npusim_tests::{hardware, npusim};
use workloads::micro::{NocBench, NocPattern, NocRun, noc};

fn rebel() -> NocInput {
    noc_of(&hardware("rebel-quad")).expect("the preset has a card")
}

fn sweep(input: &NocInput, pattern: NocPattern) -> NocRun {
    noc(input, &NocBench { sweep: true, ..NocBench::new(pattern) }).expect("the sweep runs")
}

/// One packet: (source, destination, flits), created at cycle 0.
#[derive(Debug)]
struct One(Option<(u32, u32, u32)>);

impl Traffic for One {
    fn create(&mut self, _cycle: u64, node: u32) -> Option<(u32, u32)> {
        match self.0 {
            Some((src, dst, flits)) if src == node => self.0.take().map(|_| (dst, flits)),
            _ => None,
        }
    }
}

#[test]
fn zero_load_latency_is_hops_times_router_and_link_plus_serialisation() {
    let input = rebel();
    let n = &input.noc;
    let cfg = NetworkConfig {
        topology: n.topology(),
        virtual_channels: n.virtual_channels,
        buffer_flits: n.buffer_flits,
        router_cycles: n.router_latency_cycles,
        link_cycles: n.link_latency_cycles,
        die_to_die: None,
        clock: n.clock.clock(),
    };
    let (p, l) = (n.router_latency_cycles as u64, n.link_latency_cycles as u64);
    for (src, dst) in [(0, 63), (9, 54), (7, 56), (12, 12), (36, 37)] {
        for flits in [1, 4, 16] {
            let window = Window { warmup: 0, measure: 1, limit: 10_000 };
            let mut net = Network::new(cfg.clone(), window, Box::new(One(Some((src, dst, flits)))));
            while !net.finished() {
                net.step();
            }
            let hops = ((src % 8).abs_diff(dst % 8) + (src / 8).abs_diff(dst / 8)) as u64;
            let expected = hops * (p + l) + p + flits as u64 - 1;
            assert_eq!(net.figures().latency.max, expected, "{src} -> {dst}, {flits} flits");
        }
    }
    // At a light load the mean over random pairs is the mean of that formula.
    let light = noc(&input, &NocBench { rate: 0.005, ..NocBench::new(NocPattern::Uniform) }).expect("runs");
    let measured = light.points[0].latency_cycles.mean;
    let within = (measured - light.zero_load_latency_cycles).abs() / light.zero_load_latency_cycles;
    assert!(within < 0.03, "{measured} cycles against {} at zero load", light.zero_load_latency_cycles);
}

#[test]
fn accepted_throughput_follows_the_offered_load_below_saturation() {
    let input = rebel();
    for rate in [0.05, 0.1, 0.2, 0.3] {
        let run = noc(&input, &NocBench { rate, ..NocBench::new(NocPattern::Uniform) }).expect("runs");
        let p = &run.points[0];
        assert!(!p.saturated, "{rate}: {p:?}");
        assert!((p.accepted - rate).abs() < 0.03 * rate, "offered {rate}, accepted {}", p.accepted);
    }
}

/// Uniform traffic on a k x k mesh with dimension-order routing is bound by
/// its bisection: half of each half's traffic crosses k links each way, so no
/// router can accept more than 4/k flits per node per cycle. Input-queued
/// routers fall short of it: a flit waiting for a busy output blocks the
/// flits behind it in its virtual channel, and a separable allocator does not
/// find a maximum matching. BookSim's 8 x 8 mesh with 2 virtual channels
/// saturates at about 80 % of the bound; we hold ours between 65 % and 100 %,
/// to the resolution of the sweep (5 % of the bound).
#[test]
fn uniform_traffic_saturates_near_the_bisection_bound() {
    let run = sweep(&rebel(), NocPattern::Uniform);
    assert!((run.ideal_saturation - 4.0 / 8.0).abs() < 1e-12, "{}", run.ideal_saturation);
    let reached = run.saturation_rate.expect("the network kept up with the lightest load");
    assert!(
        reached >= 0.65 * run.ideal_saturation && reached < run.ideal_saturation,
        "kept up with {reached} of an ideal {}",
        run.ideal_saturation
    );
    assert!(run.points.last().is_some_and(|p| p.saturated), "the sweep ends at saturation");
    // Latency only grows with load.
    for pair in run.points.windows(2) {
        assert!(pair[1].latency_cycles.mean >= pair[0].latency_cycles.mean * 0.98, "{pair:?}");
    }
}

#[test]
fn transpose_saturates_before_uniform() {
    let input = rebel();
    let uniform = sweep(&input, NocPattern::Uniform);
    let transpose = sweep(&input, NocPattern::Transpose);
    assert!(transpose.ideal_saturation < uniform.ideal_saturation);
    let (t, u) = (transpose.saturation_rate.expect("kept up at first"), uniform.saturation_rate.expect("kept up"));
    assert!(t < u, "transpose kept up with {t}, uniform with {u}");
}

#[test]
fn a_minimal_ring_spec_runs_without_deadlock() {
    let dir = npusim_tests::scratch("ring");
    let path = dir.join("ring.toml");
    let text = "name = \"ring16\"\n[noc]\ntopology = \"ring\"\ncolumns = 16\nrows = 1\nlink_width = \"32 B\"\n\
                clock = \"1 GHz\"\nrouter_latency_cycles = 2\nlink_latency_cycles = 1\nvirtual_channels = 2\n\
                buffer_flits = 8\n";
    std::fs::write(&path, text).expect("writes");
    let out = npusim(&["micro", "noc", "--hw", path.to_str().expect("utf-8"), "--sweep", "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let run: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    // Past saturation every measured packet still arrives: the dateline keeps the ring free of deadlock.
    let points = run["points"].as_array().expect("points");
    assert!(points.len() >= 2 && points.iter().all(|p| p["latency_cycles"]["packets"].as_u64() > Some(0)));
    let bad = text.replace("virtual_channels = 2", "virtual_channels = 1");
    std::fs::write(&path, bad).expect("writes");
    let out = npusim(&["micro", "noc", "--hw", path.to_str().expect("utf-8")]);
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("noc.virtual_channels") && out.stderr.contains("dateline"), "{}", out.stderr);
}

#[test]
fn a_card_s_chiplets_join_into_one_mesh_over_their_die_to_die_links() {
    let input = rebel();
    let joined =
        noc(&input, &NocBench { rate: 0.01, joined: true, ..NocBench::new(NocPattern::Uniform) }).expect("runs");
    let alone = noc(&input, &NocBench { rate: 0.01, ..NocBench::new(NocPattern::Uniform) }).expect("runs");
    assert_eq!((joined.chiplets, joined.nodes, joined.topology.as_str()), (4, 256, "16x16 mesh"));
    // Packets that cross a chiplet edge pay the die-to-die latency, 11 ns at the mesh clock.
    assert!(joined.zero_load_latency_cycles > alone.zero_load_latency_cycles + 0.5 * 21.0);
    let p = &joined.points[0];
    assert!(!p.saturated);
    let within = (p.latency_cycles.mean - joined.zero_load_latency_cycles).abs() / joined.zero_load_latency_cycles;
    assert!(within < 0.05, "{} cycles against {} at zero load", p.latency_cycles.mean, joined.zero_load_latency_cycles);
    // The die-to-die links, slower than the mesh's, bound uniform traffic lower.
    assert!(joined.ideal_saturation < alone.ideal_saturation / 2.0);
}
