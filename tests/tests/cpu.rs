//! The host CPU model on a Graviton4 (Neoverse V2, 96 cores, 12 x DDR5-5600,
//! 36 MB LLC), against the streaming measurements of docs/reference.md A2b.
//!
//! The single-core figures (321 / 95.1 / 78 / 37 GB/s from L1 / L2 / LLC /
//! DRAM) are the model's inputs: each cache level's bandwidth, and the
//! misses in flight that give one core's DRAM rate. What that test checks is
//! that a working set is served by the level that holds it. The all-core
//! figure, 465.5 GB/s, is not an input: it is what the shared channels give,
//! and the second test checks the model against it.

use models::spec::{CacheSpec, SystemSpec};
use models::units::{Bandwidth, Bytes, Frequency};
use workloads::micro::{CpuBench, CpuRun, cpu};

const MB: u64 = 1_000_000;

/// The AGI CPU preset made a Graviton4: its core count, clock, memory and
/// last-level cache. The caches' streaming bandwidths are the measured ones;
/// what the test checks is that a working set lands in the level that holds
/// it, and what the shared DRAM channels give all cores.
fn graviton4() -> SystemSpec {
    let mut spec = npusim_tests::hardware("agi-cpu");
    let cpu = &mut spec.node.cpu;
    cpu.cores = 96;
    cpu.clock = Frequency::from_hz(2_800_000_000);
    cpu.dram.channels = 12;
    cpu.dram.channel_bandwidth = Bandwidth::from_bytes_per_s(44_800_000_000);
    cpu.llc = Some(CacheSpec {
        size: Bytes(36 << 20),
        latency_cycles: 100,
        bandwidth: Some(Bandwidth::from_bytes_per_s(78_000_000_000)),
    });
    spec
}

fn gb_per_s(spec: &SystemSpec, threads: u32, bytes: u64, working_set: u64) -> (f64, CpuRun) {
    let run = cpu(spec, CpuBench { threads, bytes, working_set }).unwrap();
    (run.bandwidth_bytes_per_s / 1e9, run)
}

#[test]
fn one_core_streams_at_the_level_that_holds_its_working_set() {
    let spec = graviton4();
    for (working_set, measured) in [(32 << 10, 321.0), (1 << 20, 95.1), (16 << 20, 78.0), (4000 * MB, 37.0)] {
        let bytes = (4000 * MB).max(working_set);
        let (got, run) = gb_per_s(&spec, 1, bytes, working_set);
        println!("working set {working_set} B: {got:.1} GB/s (measured {measured}); served {:?}", run.served);
        assert!((got - measured).abs() / measured < 0.05, "{got:.1} GB/s against {measured}");
    }
}

/// 96 cores together: the model gives the channels' peak, 537.6 GB/s, 15.5 %
/// above the measured 465.5 GB/s (87 % of the peak). The host's channel
/// model has no DDR5 refresh, read-write turnaround or row conflicts, so it
/// is optimistic for all-core streaming; the test holds it to that known
/// error (above the measurement, by less than a fifth) and checks that the
/// cores share the channels.
#[test]
fn all_cores_share_the_dram_channels() {
    let spec = graviton4();
    let measured = 465.5;
    let (one, _) = gb_per_s(&spec, 1, 256 * MB, 0);
    let (all, _) = gb_per_s(&spec, 96, 256 * MB, 0);
    println!("one core {one:.1} GB/s, 96 cores {all:.1} GB/s (measured {measured})");
    assert!(all > measured && all < 1.2 * measured, "{all:.1} GB/s against {measured} measured");
    assert!(96.0 * one > 6.0 * all, "the cores together ask for far more than the channels give");
    let (half, _) = gb_per_s(&spec, 48, 256 * MB, 0);
    assert!(half > 0.95 * all, "48 cores already saturate the channels: {half:.1}");
}
