//! The detailed HBM model against what its timing parameters imply.

use models::spec::{DramTiming, MemoryModel, MemorySpec, SystemSpec};
use npusim_tests::hardware;
use workloads::micro::{MemoryBench, MemoryRun, Pattern, RequestSource, memory};

fn bench(model: MemoryModel, request_bytes: u64) -> MemoryBench {
    MemoryBench { model, request_bytes, read_ratio: 1.0, interval_cycles: 0, outstanding: 1024, seed: 3 }
}

fn run(spec: &SystemSpec, b: MemoryBench, pattern: Pattern, bytes: u64) -> MemoryRun {
    memory(&spec.name, mem(spec), b, RequestSource::Pattern { pattern, requests: bytes / b.request_bytes }).unwrap()
}

fn mem(spec: &SystemSpec) -> &MemorySpec {
    &spec.node.card.as_ref().unwrap().chiplet.memory
}

/// A timing parameter in whole command-clock cycles, as the controller rounds it.
fn cycles(t: sim_core::Time, timing: &DramTiming) -> u64 {
    t.as_ps().div_ceil(timing.t_ck.as_ps())
}

/// The peak the model can deliver: one burst per tCCD_S on every pseudo-channel.
fn model_peak(m: &MemorySpec) -> f64 {
    let t = m.timing.resolve().unwrap();
    let burst_time = cycles(t.t_ccd_s, &t) as f64 * t.t_ck.as_ps() as f64 * 1e-12;
    m.burst_bytes() as f64 / burst_time * m.pseudo_channel_count() as f64
}

fn refresh_share(t: &DramTiming) -> f64 {
    cycles(t.t_rfc, t) as f64 / cycles(t.t_refi, t) as f64
}

#[test]
fn unloaded_read_latency_is_the_sum_of_its_timing_components() {
    let spec = hardware("rebel-quad");
    let m = mem(&spec);
    let t = m.timing.resolve().unwrap();
    let ck = t.t_ck.as_ps() as f64 * 1e-3;
    // Pseudo-channel 16 of 32 (bytes 4096..4352): its first refresh is half an interval away.
    for (bytes, bursts) in [(32, 1u64), (64, 2), (256, 8)] {
        let trace = vec![Ok((0, 4096, false))];
        let b = MemoryBench { request_bytes: bytes, ..bench(MemoryModel::Detailed, bytes) };
        let r = memory(&spec.name, mem(&spec), b, RequestSource::Trace(Box::new(trace.into_iter()))).unwrap();
        // Activate, then tRCD to the first column command, tCCD_L between the
        // bursts of one bank, tCL to the data, and the last burst on the bus.
        let expected =
            cycles(t.t_rcd, &t) + cycles(t.t_cl, &t) + (bursts - 1) * cycles(t.t_ccd_l, &t) + cycles(t.t_ccd_s, &t);
        assert_eq!(r.latency_cycles.mean, expected as f64, "{bytes} bytes");
        assert!((r.latency_ns.mean - expected as f64 * ck).abs() < 1e-6);
    }
}

#[test]
fn streaming_reads_reach_the_peak_less_refresh() {
    let spec = hardware("rebel-quad");
    let m = mem(&spec);
    let t = m.timing.resolve().unwrap();
    let r = run(&spec, bench(MemoryModel::Detailed, 4096), Pattern::Sequential, 64 << 20);
    // Refresh blocks each pseudo-channel tRFC of every tREFI (11.5 % here);
    // re-opening rows after each refresh costs a little more.
    let ceiling = model_peak(m) * (1.0 - refresh_share(&t));
    assert!(r.bandwidth_bytes_per_s <= ceiling, "{} above {ceiling}", r.bandwidth_bytes_per_s);
    assert!(r.bandwidth_bytes_per_s >= 0.95 * ceiling, "{} below 95% of {ceiling}", r.bandwidth_bytes_per_s);
    // Each 1 KB row is read in four 256-byte pieces: three of four find it open.
    let hits = r.row_hit_rate.unwrap();
    assert!((0.70..=0.75).contains(&hits), "{hits}");
}

#[test]
fn mixing_writes_in_costs_the_turnarounds() {
    let spec = hardware("rebel-quad");
    let reads = run(&spec, bench(MemoryModel::Detailed, 4096), Pattern::Sequential, 32 << 20);
    let mixed = run(
        &spec,
        MemoryBench { read_ratio: 0.5, ..bench(MemoryModel::Detailed, 4096) },
        Pattern::Sequential,
        32 << 20,
    );
    assert!(
        mixed.bandwidth_bytes_per_s < 0.97 * reads.bandwidth_bytes_per_s,
        "{} vs {}",
        mixed.bandwidth_bytes_per_s,
        reads.bandwidth_bytes_per_s
    );
    assert_eq!(mixed.read_bytes + mixed.write_bytes, 32 << 20);
}

#[test]
fn random_small_reads_are_bound_by_activates() {
    // A deep scheduling window, so that the scheduler can always find a bank
    // to activate: then the activate rate the timing allows is the limit.
    let mut spec = hardware("rebel-quad");
    spec.node.card.as_mut().unwrap().chiplet.memory.controller.read_queue = 512;
    let m = mem(&spec);
    let t = m.timing.resolve().unwrap();
    let banks = (m.bank_groups * m.banks_per_group) as f64;
    let per_cycle =
        [4.0 / cycles(t.t_faw, &t) as f64, 1.0 / cycles(t.t_rrd_s, &t) as f64, banks / cycles(t.t_rc, &t) as f64];
    let activates_per_cycle = per_cycle.iter().copied().fold(f64::MAX, f64::min);
    let bound = activates_per_cycle / (t.t_ck.as_ps() as f64 * 1e-12)
        * 64.0
        * m.pseudo_channel_count() as f64
        * (1.0 - refresh_share(&t));
    let r =
        run(&spec, MemoryBench { outstanding: 8192, ..bench(MemoryModel::Detailed, 64) }, Pattern::Random, 32 << 20);
    assert!(r.bandwidth_bytes_per_s <= bound * 1.001, "{} above the bound {bound}", r.bandwidth_bytes_per_s);
    assert!(r.bandwidth_bytes_per_s >= 0.9 * bound, "{} below 90% of the bound {bound}", r.bandwidth_bytes_per_s);
    assert!(r.row_hit_rate.unwrap() < 0.01);
}

#[test]
fn latency_grows_with_offered_load() {
    let spec = hardware("rebel-quad");
    let mut previous = 0.0;
    for interval in [64, 16, 4, 2, 1] {
        let b = MemoryBench { interval_cycles: interval, ..bench(MemoryModel::Detailed, 64) };
        let r = run(&spec, b, Pattern::Random, 4 << 20);
        assert!(r.latency_ns.mean > previous, "interval {interval}: {} ns after {previous} ns", r.latency_ns.mean);
        previous = r.latency_ns.mean;
    }
}

#[test]
fn the_fast_model_stays_near_the_detailed_one_on_streams() {
    // End-to-end runs use the channel model; on the large sequential requests
    // they make, it must agree with the detailed controller.
    let spec = hardware("rebel-quad");
    for read_ratio in [1.0, 0.0] {
        let b = |model| MemoryBench { read_ratio, outstanding: 64, ..bench(model, 1 << 20) };
        let fast = run(&spec, b(MemoryModel::Channel), Pattern::Sequential, 128 << 20);
        let detailed = run(&spec, b(MemoryModel::Detailed), Pattern::Sequential, 128 << 20);
        let ratio = fast.bandwidth_bytes_per_s / detailed.bandwidth_bytes_per_s;
        assert!(
            (0.95..=1.05).contains(&ratio),
            "reads {read_ratio}: fast {} vs detailed {}",
            fast.bandwidth_bytes_per_s,
            detailed.bandwidth_bytes_per_s
        );
    }
}

#[test]
fn timing_presets_resolve_and_overrides_win() {
    for kind in ["HBM2", "HBM3", "HBM3E", "GDDR6"] {
        let timing = |extra: &str| {
            let text =
                format!("base = \"rebel-quad\"\n[node.card.chiplet.memory.timing]\npreset = \"{kind}\"\n{extra}");
            let spec = models::presets::load_system("t.toml", &text).unwrap_or_else(|e| panic!("{kind}: {e}"));
            mem(&spec).timing.resolve().unwrap()
        };
        let (preset, overridden) = (timing(""), timing("tCK = \"500 ps\"\n"));
        assert_eq!(overridden.t_ck.as_ps(), 500);
        assert_ne!(preset.t_ck.as_ps(), 500, "{kind}: the override must change something");
        // Every other parameter keeps the preset's value, in time: an override
        // of the clock does not rescale timings the standard gives in ns.
        assert_eq!(DramTiming { t_ck: preset.t_ck, ..overridden }, preset, "{kind}");
    }
    let e = models::presets::load_system(
        "t.toml",
        "base = \"rebel-quad\"\n[node.card.chiplet.memory.timing]\npreset = \"HBM9\"\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("timing.preset"), "{e}");
}

#[test]
fn a_written_trace_replays_as_the_pattern_it_came_from() {
    let dir = npusim_tests::scratch("trace");
    let trace = dir.join("random.trace");
    let trace = trace.to_str().expect("utf-8");
    let args = |extra: &[&str]| -> Vec<String> {
        let common = ["micro", "memory", "--hw", "rebel-quad", "--pattern", "random", "--read-ratio", "0.7"];
        let sizes = ["--bytes", "256 KiB", "--interval-cycles", "3", "--seed", "9"];
        common.iter().chain(&sizes).chain(extra).map(|s| s.to_string()).collect()
    };
    let run = |args: Vec<String>| npusim_tests::npusim(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let wrote = run(args(&["--write-trace", trace]));
    assert_eq!(wrote.status, 0, "{}", wrote.stderr);
    let text = std::fs::read_to_string(trace).expect("the trace was written");
    assert_eq!(text.lines().count(), 4096);
    assert!(text.lines().any(|l| l.ends_with(" W")) && text.starts_with("0 0x"));
    let direct = run(args(&["--json"]));
    let replay = npusim_tests::npusim(&["micro", "memory", "--hw", "rebel-quad", "--trace", trace, "--json"]);
    assert_eq!((direct.status, replay.status), (0, 0), "{}{}", direct.stderr, replay.stderr);
    assert_eq!(direct.stdout, replay.stdout);
}
