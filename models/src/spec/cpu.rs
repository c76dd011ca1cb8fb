//! The Arm CPU cluster of a node's host.

use crate::units::{Bandwidth, Bytes, Duration, EnergyPerBit, Frequency, Power};
use serde::{Deserialize, Serialize};

/// The host CPU: cores, caches and DRAM.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuSpec {
    /// Product and core, e.g. "Arm AGI CPU (136 x Neoverse V3)".
    pub model: String,
    /// Cores in the node (all sockets).
    pub cores: u32,
    /// Sustained all-core clock.
    pub clock: Frequency,
    /// Instructions decoded and issued per cycle per core.
    pub issue_width: u32,
    /// Width of one SIMD/SVE vector register, in bits.
    pub vector_bits: u32,
    /// SIMD pipes per core, each starting one vector fused multiply-add per cycle.
    pub vector_pipes: u32,
    /// Cache-line misses one core keeps in flight; with the DRAM latency this
    /// bounds the bandwidth a single core can draw.
    pub max_outstanding_misses: u32,
    /// Private level-1 data cache, per core.
    pub l1d: CacheSpec,
    /// Private level-2 cache, per core.
    pub l2: CacheSpec,
    /// Shared last-level cache, for the whole node; absent if the product has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llc: Option<CacheSpec>,
    pub dram: DramSpec,
    pub power: CpuPowerSpec,
}

/// One cache level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSpec {
    pub size: Bytes,
    /// Load-to-use latency, in core cycles.
    pub latency_cycles: u32,
    /// What one core streams from this level when its data fit there. When
    /// absent: its misses in flight over the latency (Little's law), at most
    /// a 64-byte line per cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Bandwidth>,
}

/// The host's main memory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DramSpec {
    /// DRAM channels in the node, shared by all cores.
    pub channels: u32,
    /// Peak data rate of one channel.
    pub channel_bandwidth: Bandwidth,
    /// Installed capacity in the node.
    pub capacity: Bytes,
    /// Unloaded load-to-use latency of a DRAM access.
    pub latency: Duration,
    /// Energy of moving one bit between DRAM and the CPU.
    pub energy_per_bit: EnergyPerBit,
}

/// Power figures of the CPU package(s).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuPowerSpec {
    /// Thermal design power of all sockets, for reference.
    pub tdp: Power,
    /// Power drawn with every core idle (static and uncore).
    pub idle: Power,
    /// Additional power of one core while it runs work.
    pub core_active: Power,
}
