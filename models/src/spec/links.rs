//! Links: PCIe, die-to-die, accelerator-to-accelerator, and the scale-out network.

use crate::units::{Bandwidth, Duration, EnergyPerBit};
use serde::{Deserialize, Serialize};

/// A PCIe link: `ports` independent ports of `lanes` lanes each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcieSpec {
    /// PCIe generation, 3 to 6; sets the per-lane rate and encoding.
    pub generation: u8,
    /// Lanes per port: 1, 2, 4, 8 or 16.
    pub lanes: u32,
    /// Independent ports, each with its own lanes.
    #[serde(default = "one")]
    pub ports: u32,
    /// One-way latency of a transfer across the link (PHY, controller, flight).
    pub latency: Duration,
    /// Energy per bit moved across the link.
    pub energy_per_bit: EnergyPerBit,
}

fn one() -> u32 {
    1
}

/// How a card's chiplets are joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum D2dTopology {
    /// A 2-D grid, `columns` wide, each chiplet linked to its neighbours.
    Mesh,
    /// Each chiplet linked to the next, the last to the first.
    Ring,
    /// A link between every pair of chiplets.
    AllToAll,
}

/// Die-to-die links between the chiplets of a card (UCIe class).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct D2dSpec {
    pub topology: D2dTopology,
    /// Chiplets per row of the mesh; ignored by the other topologies.
    #[serde(default = "one")]
    pub columns: u32,
    /// Data rate of one link in each direction.
    pub bandwidth: Bandwidth,
    /// One-way latency of a link.
    pub latency: Duration,
    pub energy_per_bit: EnergyPerBit,
}

/// Accelerator-to-accelerator links through a node-level switch (NVLink class).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerLinkSpec {
    /// Data rate from one card into the switch, in each direction.
    pub bandwidth: Bandwidth,
    /// One-way latency from a card to the switch.
    pub latency: Duration,
    pub energy_per_bit: EnergyPerBit,
}

/// The scale-out network between nodes: each node's interfaces (NICs) into
/// a switched fabric whose core is non-blocking, so contention is at the
/// nodes' interfaces.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Data rate of one node's network interfaces together, in each direction.
    pub bandwidth: Bandwidth,
    /// Latency of a network interface, paid at each end.
    pub nic_latency: Duration,
    /// Switches between any two nodes: 1 for a single switch, 3 for leaf-spine.
    pub hops: u32,
    /// Latency through one switch.
    pub switch_latency: Duration,
    /// Energy per bit moved from one node to another, interfaces and switches included.
    pub energy_per_bit: EnergyPerBit,
}

impl NetworkSpec {
    /// One-way latency from one node to another.
    pub fn latency(&self) -> sim_core::Time {
        let switches = sim_core::Time::from_ps(self.switch_latency.time().as_ps() * self.hops as u64);
        self.nic_latency.time() + switches + self.nic_latency.time()
    }
}
