//! The host CPU model under a streaming read: `threads` cores each read
//! `bytes` over a working set of `working_set` bytes, as the streaming
//! bandwidth microbenchmarks of reference.md (A2b) do. From it: what one
//! core draws from each cache level and from DRAM, and what all cores draw
//! from the shared DRAM channels.

use super::driver::{Driver, Work};
use models::cpu::HostTask;
use models::msg::Msg;
use models::spec::SystemSpec;
use serde::Serialize;
use sim_core::{SystemBuilder, Time};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuBench {
    pub threads: u32,
    /// Bytes each thread reads.
    pub bytes: u64,
    /// Distinct bytes each thread reads them from.
    pub working_set: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CpuRun {
    pub threads: u32,
    pub bytes_per_thread: u64,
    pub working_set_per_thread: u64,
    pub seconds: f64,
    /// All threads' bytes over the time.
    pub bandwidth_bytes_per_s: f64,
    /// Bytes served by each cache level (by name) and by DRAM.
    pub served: Vec<(String, u64)>,
}

/// Run `b` on the host CPU of `spec`'s first node.
pub fn cpu(spec: &SystemSpec, b: CpuBench) -> Result<CpuRun, String> {
    let mut builder: SystemBuilder<Msg> = SystemBuilder::new();
    let machine = models::machine::build(spec, &mut builder);
    let host = &machine.hosts[0];
    let task = HostTask {
        name: "stream",
        instructions: 0,
        ilp: 1.0,
        vector_flops: 0,
        bytes: b.bytes * b.threads as u64,
        working_set: b.working_set * b.threads as u64,
        threads: b.threads,
    };
    let stream = Driver::posting(vec![(host.cpu, Work::Task(Arc::new(task)))]);
    let place = |r: Result<(), sim_core::BuildError>| r.map_err(|e| format!("internal error: {e}"));
    place(builder.place(host.runtime, stream))?;
    for other in &machine.hosts[1..] {
        place(builder.place(other.runtime, crate::runtime::PassiveHost::default()))?;
    }
    builder.post(Time::ZERO, host.runtime, Msg::Wake { token: 0 });
    let mut system = builder.build().map_err(|e| format!("internal error: {e}"))?;
    system.run_to_end();
    let done =
        system.get::<Driver>(host.runtime).and_then(|d| d.done).ok_or("internal error: the stream never ended")?;
    let seconds = done.as_ps() as f64 * 1e-12;
    let stats = system.stats();
    let served = stats[host.cpu.index()]
        .stats
        .iter()
        .filter_map(|s| match (s.name.strip_prefix("served."), &s.value) {
            (Some(level), sim_core::StatValue::Scalar(v)) => Some((level.to_string(), *v)),
            _ => None,
        })
        .collect();
    Ok(CpuRun {
        threads: b.threads,
        bytes_per_thread: b.bytes,
        working_set_per_thread: b.working_set,
        seconds,
        bandwidth_bytes_per_s: (b.bytes * b.threads as u64) as f64 / seconds,
        served,
    })
}
