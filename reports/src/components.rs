//! Per-component figures of the memory and the networks: every link between
//! chips, every chiplet's memory channel by channel, and every chiplet's
//! on-chip network, with their busy time and bytes.

use serde::{Deserialize, Serialize};
use sim_core::{ComponentStats, Stats, Time};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Components {
    /// Links between chips (die-to-die, PCIe, peer, network), one direction each.
    pub links: Vec<LinkFigures>,
    /// Each chiplet's device memory.
    pub memories: Vec<MemoryFigures>,
    /// Each chiplet's on-chip network.
    pub networks: Vec<NetworkFigures>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkFigures {
    pub path: String,
    pub class: String,
    pub bytes: u64,
    /// Share of the simulated time the link was moving data.
    pub busy_fraction: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryFigures {
    pub path: String,
    pub read_bytes: u64,
    pub write_bytes: u64,
    /// Per (pseudo-)channel: share of the simulated time moving data, and bytes moved.
    pub channel_busy_fraction: Vec<f64>,
    pub channel_bytes: Vec<u64>,
    /// Accesses that found their row open (detailed memory model only).
    pub row_hit_rate: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkFigures {
    pub path: String,
    /// Bytes delivered.
    pub bytes: u64,
    /// Router-to-router links: mean and busiest share of the simulated time moving flits.
    pub link_busy_mean: f64,
    pub link_busy_max: f64,
    /// The busiest link, as (from router, to router).
    pub busiest_link: Option<(u64, u64)>,
    /// Injection and ejection ports: mean share of the time moving flits.
    pub port_busy_mean: f64,
}

fn fraction(busy_ps: u64, elapsed: Time) -> f64 {
    if elapsed == Time::ZERO { 0.0 } else { busy_ps as f64 / elapsed.as_ps() as f64 }
}

/// The values of `name{i}.{field}` for i = 0, 1, ... while present.
fn indexed(stats: &Stats, name: &str, field: &str) -> Vec<u64> {
    (0..).map_while(|i| stats.scalar_value(&format!("{name}{i}.{field}"))).collect()
}

impl Components {
    pub fn of(stats: &[ComponentStats], elapsed: Time) -> Components {
        let mut out = Components::default();
        for c in stats {
            let s = &c.stats;
            let value = |name: &str| s.scalar_value(name).unwrap_or(0);
            if c.kind.starts_with("link.") {
                out.links.push(LinkFigures {
                    path: c.path.clone(),
                    class: c.kind.to_string(),
                    bytes: value("bytes"),
                    busy_fraction: fraction(value(&format!("busy.{}", c.kind)), elapsed),
                });
            } else if c.kind == "memory.hbm" {
                let accesses = value("row_hits") + value("row_misses") + value("row_conflicts");
                out.memories.push(MemoryFigures {
                    path: c.path.clone(),
                    read_bytes: value("read_bytes"),
                    write_bytes: value("write_bytes"),
                    channel_busy_fraction: indexed(s, "channel", "busy")
                        .into_iter()
                        .map(|b| fraction(b, elapsed))
                        .collect(),
                    channel_bytes: indexed(s, "channel", "bytes"),
                    row_hit_rate: (accesses > 0).then(|| value("row_hits") as f64 / accesses as f64),
                });
            } else if c.kind == "noc.network" {
                let per_unit = |class: &str| {
                    let units = value(&format!("units.{class}")).max(1);
                    fraction(value(&format!("busy.{class}")), elapsed) / units as f64
                };
                out.networks.push(NetworkFigures {
                    path: c.path.clone(),
                    bytes: value("bytes"),
                    link_busy_mean: per_unit("noc.link"),
                    link_busy_max: fraction(value("busiest_link.busy"), elapsed),
                    busiest_link: s.scalar_value("busiest_link.from").zip(s.scalar_value("busiest_link.to")),
                    port_busy_mean: per_unit("noc.port"),
                });
            }
        }
        out
    }
}
