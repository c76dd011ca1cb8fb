//! Summaries of microbenchmarks: a GEMM or hand-written programs on one chiplet.

use std::fmt::Write;
use workloads::micro::{GemmRun, MemoryRun, ProgramRun};

fn engines(s: &mut String, r: &ProgramRun) {
    let busy: Vec<String> = r.engines.busy_fraction.iter().map(|(k, v)| format!("{k} {:.1}%", v * 100.0)).collect();
    let _ = writeln!(s, "  busy (mean of cores) {}", busy.join(" | "));
    let retired: Vec<String> = r.engines.instructions_retired.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(s, "  instructions        {}", retired.join(" | "));
    if r.engines.stall_cycles.is_empty() {
        let _ = writeln!(s, "  stalls              none");
    } else {
        let stalls: Vec<String> = r.engines.stall_cycles.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(s, "  stalls (cycles, all cores; engine.waiting-on) {}", stalls.join(" | "));
    }
    let _ = writeln!(
        s,
        "  memory              {:.2} MB read, {:.2} MB written: {:.1} GB/s of {:.1} GB/s peak ({:.1}% of the {:.1}% the model can deliver)",
        r.memory_read_bytes as f64 / 1e6,
        r.memory_write_bytes as f64 / 1e6,
        r.memory_bandwidth_bytes_per_s / 1e9,
        r.memory_peak_bytes_per_s / 1e9,
        100.0 * r.memory_bandwidth_bytes_per_s / (r.memory_peak_bytes_per_s * r.memory_model_efficiency),
        100.0 * r.memory_model_efficiency
    );
    for (core, bells) in &r.doorbells {
        let list: Vec<String> = bells.iter().map(|(t, v)| format!("{v} at {:.3} us", t * 1e6)).collect();
        let _ = writeln!(s, "  doorbells core {core}   {}", list.join(", "));
    }
    let _ = writeln!(s, "  ({} events)", r.events);
}

pub fn gemm_summary(g: &GemmRun) -> String {
    let mut s = String::new();
    let r = &g.run;
    let _ = writeln!(
        s,
        "GEMM {} x {} x {} {} on {} ({} cores{})",
        g.m,
        g.n,
        g.k,
        g.dtype,
        r.hardware,
        r.cores,
        if r.compute_only { ", compute only" } else { "" }
    );
    let _ = writeln!(
        s,
        "  plan                cores {} x {}, blocks {} x {}, k tile {}",
        g.plan.grid.0, g.plan.grid.1, g.plan.block_m, g.plan.block_n, g.plan.tile_k
    );
    let _ = writeln!(s, "  time                {} cycles = {:.3} us", r.cycles, r.seconds * 1e6);
    let _ = writeln!(
        s,
        "  throughput          {:.1} TFLOP/s of {:.1} peak: {:.1}% utilisation",
        g.achieved_flops / 1e12,
        g.peak_flops / 1e12,
        g.utilization * 100.0
    );
    engines(&mut s, r);
    s
}

pub fn program_summary(r: &ProgramRun) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "programs on {} ({} cores{})",
        r.hardware,
        r.cores,
        if r.compute_only { ", compute only" } else { "" }
    );
    let _ = writeln!(s, "  time                {} cycles = {:.3} us", r.cycles, r.seconds * 1e6);
    engines(&mut s, r);
    s
}

pub fn memory_summary(r: &MemoryRun) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "memory of one {} chiplet, {} model: {} requests", r.hardware, r.model, r.requests);
    let _ = writeln!(
        s,
        "  moved               {:.2} MB read, {:.2} MB written in {:.3} us",
        r.read_bytes as f64 / 1e6,
        r.write_bytes as f64 / 1e6,
        r.seconds * 1e6
    );
    let _ = writeln!(
        s,
        "  bandwidth           {:.1} GB/s of {:.1} GB/s peak ({:.1}%)",
        r.bandwidth_bytes_per_s / 1e9,
        r.peak_bytes_per_s / 1e9,
        100.0 * r.bandwidth_bytes_per_s / r.peak_bytes_per_s
    );
    let (lo, hi) =
        r.channel_bandwidth_bytes_per_s.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &b| (lo.min(b), hi.max(b)));
    let _ = writeln!(
        s,
        "  per pseudo-channel  {:.2} to {:.2} GB/s over {} pseudo-channels",
        lo / 1e9,
        hi / 1e9,
        r.channel_bandwidth_bytes_per_s.len()
    );
    let _ = writeln!(
        s,
        "  read latency        mean {:.1} ns, p50 {:.1} ns, p99 {:.1} ns ({:.0} / {:.0} / {:.0} memory cycles)",
        r.latency_ns.mean,
        r.latency_ns.p50,
        r.latency_ns.p99,
        r.latency_cycles.mean,
        r.latency_cycles.p50,
        r.latency_cycles.p99
    );
    if let Some(hit) = r.row_hit_rate {
        let _ = writeln!(
            s,
            "  row buffer          {:.1}% hits, {} activates, {} refreshes",
            hit * 100.0,
            r.activates,
            r.refreshes
        );
    }
    let _ = writeln!(
        s,
        "  energy              {:.3} mJ ({:.2} pJ/bit moved)",
        r.energy_j * 1e3,
        r.energy_j * 1e12 / ((r.read_bytes + r.write_bytes) as f64 * 8.0).max(1.0)
    );
    let _ = writeln!(s, "  ({} events)", r.events);
    s
}
