//! DRAM attached to a chiplet: HBM stacks (or GDDR devices) with JEDEC timing.

use crate::units::{Bandwidth, Bytes, Duration, Energy, EnergyPerBit, Power};
use serde::{Deserialize, Serialize};

/// The memory standard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemoryKind {
    #[serde(rename = "HBM2")]
    Hbm2,
    #[serde(rename = "HBM2E")]
    Hbm2e,
    #[serde(rename = "HBM3")]
    Hbm3,
    #[serde(rename = "HBM3E")]
    Hbm3e,
    #[serde(rename = "GDDR6")]
    Gddr6,
}

/// The DRAM of one chiplet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemorySpec {
    pub kind: MemoryKind,
    /// HBM stacks (or GDDR devices) attached to the chiplet.
    pub stacks: u32,
    pub capacity_per_stack: Bytes,
    /// Data pins per stack (1,024 for HBM, 32 per GDDR6 device).
    pub bus_width_bits: u32,
    /// Data rate of one pin.
    pub pin_rate: Bandwidth,
    /// Independent channels per stack.
    pub channels_per_stack: u32,
    /// Pseudo-channels per channel.
    pub pseudo_channels: u32,
    pub bank_groups: u32,
    pub banks_per_group: u32,
    /// Consecutive bytes mapped to one pseudo-channel before moving to the next.
    pub interleave: Bytes,
    /// Row-buffer (page) size of one pseudo-channel.
    pub page_size: Bytes,
    pub timing: DramTiming,
    pub energy: MemoryEnergySpec,
}

/// JEDEC timing parameters, named as in the standard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DramTiming {
    /// Activate to read/write.
    #[serde(rename = "tRCD")]
    pub t_rcd: Duration,
    /// Read command to first data (CAS latency).
    #[serde(rename = "tCL")]
    pub t_cl: Duration,
    /// Write command to first data.
    #[serde(rename = "tCWL")]
    pub t_cwl: Duration,
    /// Precharge to activate.
    #[serde(rename = "tRP")]
    pub t_rp: Duration,
    /// Activate to precharge, minimum.
    #[serde(rename = "tRAS")]
    pub t_ras: Duration,
    /// Activate to activate, same bank.
    #[serde(rename = "tRC")]
    pub t_rc: Duration,
    /// Activate to activate, different bank groups.
    #[serde(rename = "tRRD_S")]
    pub t_rrd_s: Duration,
    /// Activate to activate, same bank group.
    #[serde(rename = "tRRD_L")]
    pub t_rrd_l: Duration,
    /// Window in which at most four activates may issue.
    #[serde(rename = "tFAW")]
    pub t_faw: Duration,
    /// Column command to column command, different bank groups.
    #[serde(rename = "tCCD_S")]
    pub t_ccd_s: Duration,
    /// Column command to column command, same bank group.
    #[serde(rename = "tCCD_L")]
    pub t_ccd_l: Duration,
    /// Write recovery: end of write data to precharge.
    #[serde(rename = "tWR")]
    pub t_wr: Duration,
    /// End of write data to read, different bank groups.
    #[serde(rename = "tWTR_S")]
    pub t_wtr_s: Duration,
    /// End of write data to read, same bank group.
    #[serde(rename = "tWTR_L")]
    pub t_wtr_l: Duration,
    /// Read to precharge.
    #[serde(rename = "tRTP")]
    pub t_rtp: Duration,
    /// Refresh cycle time (all banks).
    #[serde(rename = "tRFC")]
    pub t_rfc: Duration,
    /// Average interval between refreshes.
    #[serde(rename = "tREFI")]
    pub t_refi: Duration,
    /// Beats per burst.
    pub burst_length: u32,
}

/// Energy of DRAM actions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryEnergySpec {
    /// Reading one bit, array to pins to controller.
    pub read: EnergyPerBit,
    /// Writing one bit.
    pub write: EnergyPerBit,
    /// One activate-precharge pair.
    pub activate: Energy,
    /// One all-bank refresh of one pseudo-channel.
    pub refresh: Energy,
    /// Background power of one stack while the chip runs.
    pub background_per_stack: Power,
}
