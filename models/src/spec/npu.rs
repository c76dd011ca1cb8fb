//! The accelerator card, its chiplets and their NPU cores.

use super::links::{D2dSpec, PcieSpec, PeerLinkSpec};
use super::memory::MemorySpec;
use super::noc::NocSpec;
use crate::units::{Bandwidth, Bytes, Duration, Energy, EnergyPerBit, Frequency, Power};
use isa::Dtype;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An accelerator card: chiplets on one package, a PCIe interface, optional peer links.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardSpec {
    /// Product name, e.g. "Rebellions REBEL-Quad".
    pub model: String,
    /// Identical compute chiplets on the card.
    pub chiplets: u32,
    pub chiplet: ChipletSpec,
    /// Links between chiplets; required when `chiplets > 1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d2d: Option<D2dSpec>,
    /// The card's PCIe interface to the node's switch; port `p` attaches to
    /// chiplet `p * chiplets / ports`.
    pub host_link: PcieSpec,
    /// Links to other cards through a node-level switch (NVLink class), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_link: Option<PeerLinkSpec>,
    pub power: CardPowerSpec,
}

/// Power figures of a card.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardPowerSpec {
    /// Thermal design power (or total board power), for reference.
    pub tdp: Power,
    /// Static power of the card while on, memory background excluded.
    pub idle: Power,
    /// Power the card draws beyond `idle` while its chiplets run kernels,
    /// whatever the kernels do: clocks held at the operating point, leakage
    /// at its voltage, instruction issue. Charged over each chiplet's busy
    /// time, split evenly between the chiplets. Absent: 0 W.
    #[serde(default)]
    pub active: Power,
}

/// One compute chiplet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChipletSpec {
    /// NPU cores on the chiplet.
    pub cores: u32,
    /// Clock of the cores.
    pub clock: Frequency,
    pub core: CoreSpec,
    /// On-chip SRAM shared by the chiplet's cores.
    pub shared_sram: SharedSramSpec,
    pub noc: NocSpec,
    pub memory: MemorySpec,
    pub energy: ChipletEnergySpec,
}

/// SRAM on the chiplet shared by its cores (or the L2 of a GPU).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedSramSpec {
    pub size: Bytes,
    /// Data rate of all its banks together.
    pub bandwidth: Bandwidth,
    /// Unloaded access latency.
    pub latency: Duration,
    /// Reading or writing one bit.
    pub energy_per_bit: EnergyPerBit,
}

/// One NPU core: matrix and vector engines, a scratchpad and DMA.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoreSpec {
    /// Instructions the matrix, vector and sync queues each hold; the
    /// sequencer stops dispatching, in program order, when one is full.
    pub queue_depth: u32,
    pub matrix: MatrixSpec,
    pub vector: VectorSpec,
    pub scratchpad: ScratchpadSpec,
    pub dma: DmaSpec,
}

/// How operands stay in, and flow through, a systolic array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dataflow {
    WeightStationary,
    OutputStationary,
    InputStationary,
}

/// The matrix engine(s) of a core.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixSpec {
    /// Matrix engines per core (tensor cores per SM on a GPU).
    #[serde(default = "one")]
    pub engines: u32,
    /// Processing elements along the reduction dimension.
    pub rows: u32,
    /// Processing elements along the output dimension.
    pub cols: u32,
    pub dataflow: Dataflow,
    /// Multiply-accumulates one processing element completes per cycle, per
    /// input dtype. A dtype not listed is not supported by the engine.
    pub macs_per_pe: BTreeMap<Dtype, u32>,
    /// The output block whose operands one instruction reads from the
    /// scratchpad once and broadcasts to every engine and processing element
    /// that uses them (Hopper's warpgroup MMA: 64 x 256). Without it each
    /// array tile streams its own operands: the inputs once per tile of
    /// columns, the weights once per tile of rows (by dataflow, see `npu::timing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operand_block: Option<OperandBlock>,
    /// Storage for accumulators beside the scratchpad (a GPU's register
    /// file, an NPU's accumulator SRAM). Programs address it after the
    /// scratchpad; partial sums kept there do not cross the scratchpad's
    /// ports. Without it accumulators live in the scratchpad.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accumulators: Option<Bytes>,
}

/// Rows and columns of an output block (see [`MatrixSpec::operand_block`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperandBlock {
    pub rows: u32,
    pub cols: u32,
}

/// The vector engine of a core.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorSpec {
    /// FP32 lanes; each completes one simple element operation per cycle.
    pub lanes: u32,
    /// Cycles per element of a transcendental operation (exp, rsqrt, sigmoid) on one lane.
    pub transcendental_cycles: u32,
    /// Cycles from issue to first result.
    pub pipeline_cycles: u32,
}

/// The scratchpad of a core.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScratchpadSpec {
    pub size: Bytes,
    pub banks: u32,
    /// Bytes one bank reads or writes per cycle.
    pub bank_width: Bytes,
}

/// The DMA engine of a core.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DmaSpec {
    /// Instructions the DMA engine's queue holds.
    pub queue_depth: u32,
    /// Memory transactions in flight at once.
    pub max_outstanding: u32,
    /// Size of one memory transaction; a load or store is split into these.
    pub transaction_size: Bytes,
    /// Cores that one load can feed at once (Hopper's TMA multicast to the
    /// SMs of a cluster): 1, no multicast, or 2, pairs of cores whose GEMM
    /// tiles share inputs each load half and pass it to the other.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub multicast: u32,
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// Energy of the chiplet's actions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChipletEnergySpec {
    /// One multiply-accumulate, per input dtype; every dtype the matrix engine supports needs one.
    pub mac: BTreeMap<Dtype, Energy>,
    /// One element operation on one vector lane.
    pub vector_op: Energy,
    /// Reading or writing one bit of scratchpad.
    pub sram: EnergyPerBit,
    /// Moving one bit across one hop of the mesh, or once across a crossbar.
    pub noc_hop: EnergyPerBit,
}

fn one() -> u32 {
    1
}
