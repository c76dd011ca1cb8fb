//! Summaries of microbenchmarks: a GEMM or hand-written programs on one
//! chiplet, its memory, its network, and collectives over a system's links.

use std::fmt::Write;
use workloads::micro::{AttentionRun, CollectiveRun, CpuRun, GemmRun, MemoryRun, NocRun, ProgramRun};

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
    if r.shared_read_bytes + r.shared_write_bytes > 0 {
        let _ = writeln!(
            s,
            "  shared SRAM         {:.2} MB read, {:.2} MB written: {:.1} GB/s",
            r.shared_read_bytes as f64 / 1e6,
            r.shared_write_bytes as f64 / 1e6,
            (r.shared_read_bytes + r.shared_write_bytes) as f64 / r.seconds.max(1e-15) / 1e9
        );
    }
    let _ = writeln!(
        s,
        "  scratchpad ports    {:.2} MB moved, {:.1} GB/s per core",
        r.scratchpad_bytes as f64 / 1e6,
        r.scratchpad_bytes as f64 / r.seconds.max(1e-15) / 1e9 / r.cores.max(1) as f64
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
        "  plan                cores {} x {}, blocks {} x {}, k tile {}; staged in shared SRAM: {}",
        g.plan.grid.0, g.plan.grid.1, g.plan.block_m, g.plan.block_n, g.plan.tile_k, g.plan.staged
    );
    let _ = writeln!(s, "  time                {} cycles = {:.3} us", r.cycles, r.seconds * 1e6);
    let _ = writeln!(
        s,
        "  throughput          {:.1} TFLOP/s of {:.1} peak: {:.1}% utilisation",
        g.achieved_flops / 1e12,
        g.peak_flops / 1e12,
        g.utilization * 100.0
    );
    let _ = writeln!(
        s,
        "  device memory       {:.2} MB moved, {:.2}x the compulsory {:.2} MB (each operand and the output once)",
        (r.memory_read_bytes + r.memory_write_bytes) as f64 / 1e6,
        g.memory_traffic_ratio,
        g.compulsory_bytes as f64 / 1e6
    );
    engines(&mut s, r);
    s
}

pub fn attention_summary(run: &AttentionRun) -> String {
    let mut s = String::new();
    let (a, r) = (&run.shape, &run.run);
    let _ = writeln!(
        s,
        "attention {} requests x {} queries x {} keys, {} heads over {} KV heads, qk {} v {}, {} on {} ({} cores{})",
        a.requests,
        a.queries,
        a.context,
        a.heads,
        a.kv_heads,
        a.qk_dim,
        a.v_dim,
        a.dtype,
        r.hardware,
        r.cores,
        if r.compute_only { ", compute only" } else { "" }
    );
    let _ = writeln!(s, "  time                {} cycles = {:.3} us", r.cycles, r.seconds * 1e6);
    let _ = writeln!(
        s,
        "  bandwidth           {:.1} GB/s of compulsory bytes, of {:.1} GB/s peak: {:.1}%",
        run.achieved_bytes_per_s / 1e9,
        r.memory_peak_bytes_per_s / 1e9,
        100.0 * run.achieved_bytes_per_s / r.memory_peak_bytes_per_s.max(1.0)
    );
    let _ = writeln!(
        s,
        "  throughput          {:.1} TFLOP/s of {:.1} peak: {:.1}%",
        run.achieved_flops / 1e12,
        run.peak_flops / 1e12,
        100.0 * run.achieved_flops / run.peak_flops.max(1.0)
    );
    let _ = writeln!(
        s,
        "  device memory       {:.2} MB moved, {:.2}x the compulsory {:.2} MB (the cache read once, queries and outputs once)",
        (r.memory_read_bytes + r.memory_write_bytes) as f64 / 1e6,
        run.memory_traffic_ratio,
        run.compulsory_bytes as f64 / 1e6
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

pub fn noc_summary(r: &NocRun) -> String {
    let mut s = String::new();
    let chiplets = if r.chiplets > 1 { format!(", {} chiplets joined", r.chiplets) } else { String::new() };
    let _ =
        writeln!(s, "network of {}: {} ({} nodes{chiplets}), {} traffic", r.hardware, r.topology, r.nodes, r.pattern);
    let _ = writeln!(
        s,
        "  routers             {} cycles, links {} cycle(s), {} VCs x {} flits, {}-byte flits at {:.3} GHz; packets of {} flits",
        r.router_cycles,
        r.link_cycles,
        r.virtual_channels,
        r.buffer_flits,
        r.flit_bytes,
        r.clock_hz as f64 / 1e9,
        r.packet_flits
    );
    let per_node = |flits: f64| flits * r.flit_bytes as f64 * r.clock_hz as f64 / 1e9;
    let _ =
        writeln!(s, "  zero-load latency   {:.1} cycles (mean over the pattern's pairs)", r.zero_load_latency_cycles);
    let _ = writeln!(
        s,
        "  ideal saturation    {:.3} flits/node/cycle ({:.1} GB/s per node): the busiest channel full",
        r.ideal_saturation,
        per_node(r.ideal_saturation)
    );
    let _ = writeln!(
        s,
        "  {:>8} {:>8} {:>8} {:>10} {:>8} {:>8} {:>10} {:>9}",
        "offered", "created", "accepted", "latency", "p50", "p99", "network", "busiest"
    );
    for p in &r.points {
        let _ = writeln!(
            s,
            "  {:>8.3} {:>8.3} {:>8.3} {:>10.1} {:>8} {:>8} {:>10.1} {:>8.0}%{}",
            p.offered_rate,
            p.offered,
            p.accepted,
            p.latency_cycles.mean,
            p.latency_cycles.p50,
            p.latency_cycles.p99,
            p.network_latency_cycles.mean,
            p.link_utilization_max * 100.0,
            if p.saturated { "  saturated" } else { "" }
        );
    }
    let _ = writeln!(
        s,
        "  (loads in flits/node/cycle; latencies in cycles, creation or injection to tail ejection; busiest link's share of cycles)"
    );
    if let Some(rate) = r.saturation_rate {
        let _ = writeln!(
            s,
            "  saturation          kept up with {:.3} flits/node/cycle ({:.0}% of ideal, {:.1} GB/s per node), not with the next load",
            rate,
            100.0 * rate / r.ideal_saturation,
            per_node(rate)
        );
    }
    let _ = writeln!(
        s,
        "  most accepted       {:.3} flits/node/cycle ({:.1} GB/s per node)",
        r.max_accepted,
        per_node(r.max_accepted)
    );
    s
}

pub fn cpu_summary(r: &CpuRun) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} core(s) each reading {:.3} MB over a working set of {:.3} MB",
        r.threads,
        r.bytes_per_thread as f64 / 1e6,
        r.working_set_per_thread as f64 / 1e6
    );
    let _ = writeln!(s, "  time                {:.3} us", r.seconds * 1e6);
    let _ = writeln!(
        s,
        "  bandwidth           {:.1} GB/s in all, {:.1} GB/s per core",
        r.bandwidth_bytes_per_s / 1e9,
        r.bandwidth_bytes_per_s / 1e9 / r.threads.max(1) as f64
    );
    let total: u64 = r.served.iter().map(|(_, b)| b).sum();
    let parts: Vec<String> = r
        .served
        .iter()
        .map(|(level, bytes)| format!("{level} {:.1}%", 100.0 * *bytes as f64 / total.max(1) as f64))
        .collect();
    let _ = writeln!(s, "  served from         {}", parts.join(" | "));
    s
}

pub fn collective_summary(r: &CollectiveRun) -> String {
    let mut s = String::new();
    let devices: Vec<String> = r.devices.iter().map(u32::to_string).collect();
    let _ = writeln!(
        s,
        "{:?} ({:?}) of {:.2} MB over devices {} of {}: {} transfers",
        r.op,
        r.algorithm,
        r.bytes as f64 / 1e6,
        devices.join(","),
        r.hardware,
        r.transfers
    );
    let _ = writeln!(s, "  time                {:.3} us", r.seconds * 1e6);
    let _ = writeln!(
        s,
        "  bandwidth           algorithm {:.1} GB/s, bus {:.1} GB/s",
        r.algorithm_bandwidth_bytes_per_s / 1e9,
        r.bus_bandwidth_bytes_per_s / 1e9
    );
    let _ = writeln!(
        s,
        "  bound               {:.3} us at the slowest link's {:.1} GB/s: the run takes {:.1}% longer",
        r.lower_bound_seconds * 1e6,
        r.link_bandwidth_bytes_per_s / 1e9,
        100.0 * (r.seconds / r.lower_bound_seconds - 1.0)
    );
    let mut links = r.links.clone();
    links.sort_by(|a, b| b.busy_fraction.total_cmp(&a.busy_fraction).then(a.path.cmp(&b.path)));
    for l in links.iter().take(8) {
        let _ = writeln!(
            s,
            "  link {:<32} {:>10.2} MB, busy {:.1}%",
            l.path,
            l.bytes as f64 / 1e6,
            l.busy_fraction * 100.0
        );
    }
    if links.len() > 8 {
        let _ = writeln!(s, "  ... and {} more links (--json lists them all)", links.len() - 8);
    }
    let _ =
        writeln!(s, "  (communication only: the reductions' arithmetic is not simulated here; {} events)", r.events);
    s
}
