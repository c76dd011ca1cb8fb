//! The on-chip network of a chiplet, and where its parts attach to it.

use crate::noc::{Topology, TopologyKind};
use crate::units::{Bytes, Frequency};
use serde::{Deserialize, Serialize};

/// A chiplet's network of routers. Routers are numbered row by row:
/// router `y·columns + x` sits at column `x`, row `y`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NocSpec {
    /// `mesh` (dimension-order routing, X first), `ring` (shortest way) or `crossbar`.
    pub topology: TopologyKind,
    /// Routers per row (for a ring or crossbar, `columns × rows` is the node count).
    pub columns: u32,
    pub rows: u32,
    /// Bytes one link carries per cycle in each direction: the flit size.
    pub link_width: Bytes,
    pub clock: Frequency,
    /// Cycles a flit spends in one router (its pipeline).
    pub router_latency_cycles: u32,
    /// Cycles a flit spends on a link between routers.
    pub link_latency_cycles: u32,
    /// Virtual channels per input port (a ring needs at least 2).
    pub virtual_channels: u32,
    /// Flits each virtual channel buffers.
    pub buffer_flits: u32,
    /// The router each core attaches to, core by core; by default the cores
    /// are spread evenly: core `i` of `n` at router `⌊(i + ½)·routers / n⌋`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_routers: Option<Vec<u32>>,
    /// The routers the memory controller's ports attach to; consecutive
    /// interleaving granules of the address space go to consecutive ports. By
    /// default one port per router of the west and east edges, as HBM
    /// stacks sit beside the die.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_routers: Option<Vec<u32>>,
    /// The routers the shared SRAM's banks attach to; by default the centre router.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sram_routers: Option<Vec<u32>>,
}

impl NocSpec {
    pub fn topology(&self) -> Topology {
        Topology { kind: self.topology, columns: self.columns, rows: self.rows }
    }

    pub fn routers(&self) -> u32 {
        self.columns * self.rows
    }

    /// The router of each of `cores` cores.
    pub fn core_routers(&self, cores: u32) -> Vec<u32> {
        self.core_routers.clone().unwrap_or_else(|| {
            let n = self.routers() as u64;
            (0..cores as u64).map(|i| ((2 * i + 1) * n / (2 * cores.max(1) as u64)) as u32).collect()
        })
    }

    /// The routers of the memory controller's ports.
    pub fn memory_routers(&self) -> Vec<u32> {
        self.memory_routers.clone().unwrap_or_else(|| {
            let (c, r) = (self.columns, self.rows);
            let mut out = Vec::new();
            for y in 0..r {
                out.push(y * c);
                if c > 1 {
                    out.push(y * c + c - 1);
                }
            }
            out
        })
    }

    /// The routers of the shared SRAM's banks.
    pub fn sram_routers(&self) -> Vec<u32> {
        self.sram_routers.clone().unwrap_or_else(|| vec![(self.rows / 2) * self.columns + self.columns / 2])
    }
}
