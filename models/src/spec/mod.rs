//! Hardware spec types: the single source of truth for every parameter.
//!
//! A spec describes a [`SystemSpec`]: identical nodes, each with an Arm CPU
//! host ([`CpuSpec`]) and accelerator cards ([`CardSpec`]) on PCIe; a card
//! holds chiplets ([`ChipletSpec`]) joined by die-to-die links; a chiplet holds
//! NPU cores ([`CoreSpec`]), an on-chip mesh ([`NocSpec`]) and DRAM stacks
//! ([`MemorySpec`]). Quantities carry their units (see [`crate::units`]).
//! Unknown fields are errors; defaults live only in the `default_*` functions
//! of this module tree.

mod cost;
mod cpu;
mod figures;
mod links;
mod memory;
mod noc;
mod npu;
pub mod validate;

pub use cost::CostSpec;
pub use cpu::{CacheSpec, CpuPowerSpec, CpuSpec, DramSpec};
pub use figures::Figure;
pub use links::{D2dSpec, D2dTopology, NetworkSpec, PcieSpec, PeerLinkSpec};
pub use memory::{ControllerSpec, DramTiming, DramTimingSpec, MemoryEnergySpec, MemoryKind, MemorySpec};
pub use noc::NocSpec;
pub use npu::{
    CardPowerSpec, CardSpec, ChipletEnergySpec, ChipletSpec, CoreSpec, Dataflow, DmaSpec, MatrixSpec, OperandBlock,
    ScratchpadSpec, SharedSramSpec, VectorSpec,
};
pub use validate::validate;

use crate::units::{Bytes, Duration};
use serde::{Deserialize, Serialize};

/// A whole system: `nodes` identical nodes joined by a scale-out network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemSpec {
    /// Short name, shown in reports.
    pub name: String,
    /// What the system models, naming the real products.
    #[serde(default)]
    pub description: String,
    /// Number of identical nodes.
    pub nodes: u32,
    pub node: NodeSpec,
    /// The scale-out network between nodes; required when `nodes > 1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkSpec>,
    /// How coarse a unit of work one event stands for.
    #[serde(default)]
    pub simulation: SimulationSpec,
    /// Prices and power cost, for cost per token; empty unless given.
    #[serde(default, skip_serializing_if = "CostSpec::is_empty")]
    pub cost: CostSpec,
}

/// One node: a CPU host and its accelerator cards behind a PCIe switch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub cpu: CpuSpec,
    /// Accelerator cards in the node.
    pub cards: u32,
    /// The accelerator card; required when `cards > 0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<CardSpec>,
    /// The host's PCIe link from the CPU's root port to the node's PCIe switch.
    pub host_link: PcieSpec,
    /// Latency of one pass through the node's PCIe switch.
    pub pcie_switch_latency: Duration,
}

/// Simulation granularity: how much work one event stands for. Smaller is
/// finer and slower; the defaults keep contention visible at link and channel level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulationSpec {
    /// Transfers between devices travel link by link in chunks of this size.
    #[serde(default = "default_fabric_chunk")]
    pub fabric_chunk: Bytes,
    /// How device memory is modelled: "channel", each pseudo-channel a data
    /// rate with refresh (fast); or "detailed", the command-level controller
    /// with banks and FR-FCFS scheduling (see models/README.md).
    #[serde(default)]
    pub memory_model: MemoryModel,
    /// Simulate each distinct kernel once, on a chiplet of its own, and
    /// replay its time and statistics wherever it recurs: much faster, and
    /// within the bound `tests/tests/runs.rs` checks (ARCHITECTURE.md says
    /// what it leaves out). `false` simulates every kernel where it runs.
    #[serde(default = "default_replay_kernels")]
    pub replay_kernels: bool,
    /// Simulate each distinct step shape once and replay its device time
    /// and statistics when a later step has the same shape: the number of
    /// decoders and their tokens, their total context and each prompt chunk
    /// (sizes bucketed to 1/32 of a power of two). For long serving runs;
    /// `tests/tests/serving.rs` bounds its difference from the full
    /// simulation. `false` (the default) simulates every step.
    #[serde(default)]
    pub replay_steps: bool,
    /// The most NPU cores (nodes x cards x chiplets x cores) a system may
    /// have: each is a component with its own state, and a system far
    /// beyond any real one would take more memory and time than a run
    /// should. Raise it for a larger system.
    #[serde(default = "default_max_cores")]
    pub max_cores: u64,
}

/// 65,536 cores take about 3 GB in the default decode run (256
/// REBEL-Quad cards, 16,384 cores, took 0.8 GB).
fn default_max_cores() -> u64 {
    1 << 16
}

fn default_replay_kernels() -> bool {
    true
}

/// Which device-memory model a run uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemoryModel {
    #[default]
    Channel,
    Detailed,
}

impl Default for SimulationSpec {
    fn default() -> Self {
        SimulationSpec {
            fabric_chunk: default_fabric_chunk(),
            memory_model: MemoryModel::default(),
            replay_kernels: default_replay_kernels(),
            replay_steps: false,
            max_cores: default_max_cores(),
        }
    }
}

fn default_fabric_chunk() -> Bytes {
    Bytes(64 << 10)
}
