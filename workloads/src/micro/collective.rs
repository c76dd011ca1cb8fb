//! One collective over a system's devices, run as point-to-point transfers
//! through the sequencers and the fabric's links: time, algorithm and bus
//! bandwidth as NCCL's tests report them, and what each link carried.
//!
//! Only the communication is simulated here: the reductions' arithmetic,
//! which end-to-end runs do on the cores, is left out.

use super::driver::Driver;
use crate::collective::{Algorithm, CollectiveOp, schedule};
use models::fabric::{Endpoint, Link, Routes};
use models::machine;
use models::msg::Msg;
use models::spec::SystemSpec;
use serde::Serialize;
use sim_core::{SystemBuilder, Time};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq)]
pub struct CollectiveBench {
    pub op: CollectiveOp,
    /// The op's default when `None`: ring, or direct for all-to-all.
    pub algorithm: Option<Algorithm>,
    pub bytes: u64,
    /// System device indices in ring order; by default the chiplets of the
    /// first card (or every device, if cards hold one chiplet), in the order
    /// that keeps each ring hop shortest.
    pub devices: Option<Vec<u32>>,
}

/// One link that carried part of the collective.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinkUse {
    pub path: String,
    pub class: String,
    pub bytes: u64,
    /// Share of the collective's time the link was moving data.
    pub busy_fraction: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CollectiveRun {
    pub hardware: String,
    pub op: CollectiveOp,
    pub algorithm: Algorithm,
    pub devices: Vec<u32>,
    pub bytes: u64,
    pub transfers: usize,
    pub seconds: f64,
    /// `bytes / seconds`.
    pub algorithm_bandwidth_bytes_per_s: f64,
    /// The algorithm bandwidth times the share of the data each device sends.
    pub bus_bandwidth_bytes_per_s: f64,
    /// The slowest link on any route a transfer takes.
    pub link_bandwidth_bytes_per_s: f64,
    /// The share of `bytes` each device sends over that bandwidth: what a ring
    /// whose every hop has a link of its own cannot beat.
    pub lower_bound_seconds: f64,
    pub links: Vec<LinkUse>,
    pub events: u64,
}

/// The default devices: the first card's chiplets, or every device.
fn default_devices(spec: &SystemSpec, routes: &Routes) -> Vec<u32> {
    let per_card = spec.node.card.as_ref().map_or(0, |c| c.chiplets);
    let devices: Vec<u32> = if per_card > 1 { (0..per_card).collect() } else { (0..spec.device_count()).collect() };
    ring_order(&devices, routes)
}

/// Greedy: from the first device, always on to the nearest not yet visited.
fn ring_order(devices: &[u32], routes: &Routes) -> Vec<u32> {
    let latency =
        |a: u32, b: u32| routes.get(Endpoint::Device(a), Endpoint::Device(b)).map_or(Time::MAX, |r| r.latency);
    let mut left: Vec<u32> = devices.to_vec();
    let mut out = vec![left.remove(0)];
    while !left.is_empty() {
        let at = *out.last().unwrap_or(&0);
        let (k, _) = left.iter().enumerate().min_by_key(|&(_, &d)| (latency(at, d), d)).unwrap_or((0, &0));
        out.push(left.remove(k));
    }
    out
}

/// Run `bench` on `spec`.
pub fn collective(spec: &SystemSpec, bench: &CollectiveBench) -> Result<CollectiveRun, String> {
    let mut builder: SystemBuilder<Msg> = SystemBuilder::new();
    let m = machine::build(spec, &mut builder);
    let devices = match &bench.devices {
        Some(d) => d.clone(),
        None => default_devices(spec, &m.routes),
    };
    if let Some(&bad) = devices.iter().find(|&&d| d as usize >= m.devices.len()) {
        return Err(format!("device {bad} does not exist: `{}` has devices 0 to {}", spec.name, m.devices.len() - 1));
    }
    let algorithm = bench.algorithm.unwrap_or(bench.op.default_algorithm());
    let plan = schedule(bench.op, algorithm, &devices, bench.bytes)?;
    let lists = plan
        .command_lists(0)
        .into_iter()
        .zip(&devices)
        .map(|(list, &d)| (m.devices[d as usize].sequencer, Arc::new(list)))
        .collect();
    let driver = m.hosts[0].runtime;
    builder.place(driver, Driver::new(lists)).map_err(|e| e.to_string())?;
    for host in &m.hosts[1..] {
        builder.place(host.runtime, Driver::new(vec![])).map_err(|e| e.to_string())?;
    }
    builder.post(Time::ZERO, driver, Msg::Wake { token: 0 });
    let mut system = builder.build().map_err(|e| e.to_string())?;
    system.run_to_end();
    let done = system.get::<Driver>(driver).and_then(|d| d.done).ok_or("the collective did not finish")?;
    let seconds = done.as_secs_f64();

    // The slowest link any transfer crosses.
    let mut slowest = f64::INFINITY;
    for t in &plan.transfers {
        let (a, b) = (Endpoint::Device(devices[t.from as usize]), Endpoint::Device(devices[t.to as usize]));
        let route = m.routes.get(a, b).ok_or_else(|| format!("no route from {a:?} to {b:?}"))?;
        for &link in &route.links {
            if let Some(l) = system.get::<Link>(link) {
                slowest = slowest.min(l.bandwidth().bytes_per_s());
            }
        }
    }
    let stats = system.stats();
    let links = stats
        .iter()
        .filter(|c| c.kind.starts_with("link."))
        .filter_map(|c| {
            let bytes = c.stats.scalar_value("bytes").filter(|&b| b > 0)?;
            let busy = c.stats.scalar_value(&format!("busy.{}", c.kind)).unwrap_or(0);
            Some(LinkUse {
                path: c.path.clone(),
                class: c.kind.to_string(),
                bytes,
                busy_fraction: busy as f64 / done.as_ps().max(1) as f64,
            })
        })
        .collect();
    let share = bench.op.bus_factor(devices.len() as u32) * bench.bytes as f64;
    let per_s = |bytes: f64| if seconds > 0.0 { bytes / seconds } else { 0.0 };
    Ok(CollectiveRun {
        hardware: spec.name.clone(),
        op: bench.op,
        algorithm,
        bytes: bench.bytes,
        transfers: plan.transfers.len(),
        seconds,
        algorithm_bandwidth_bytes_per_s: per_s(bench.bytes as f64),
        bus_bandwidth_bytes_per_s: per_s(share),
        link_bandwidth_bytes_per_s: slowest,
        lower_bound_seconds: share / slowest,
        links,
        devices,
        events: system.events(),
    })
}
