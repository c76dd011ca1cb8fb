//! DRAM attached to a chiplet: HBM stacks (or GDDR devices) with JEDEC timing.

use crate::memory::AddressMapping;
use crate::units::{Bandwidth, Bytes, Duration, Energy, EnergyPerBit, Power};
use serde::{Deserialize, Serialize};
use sim_core::Time;

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
    /// Row-buffer (page) size of one pseudo-channel.
    pub page_size: Bytes,
    /// How byte addresses map to pseudo-channel, bank group, bank, row and
    /// column, as digits from the least significant up (see
    /// [`crate::memory::AddressMapping`]), e.g. `"co:8 ch bg co ba ro"`.
    pub address_mapping: AddressMapping,
    pub controller: ControllerSpec,
    pub timing: DramTimingSpec,
    pub energy: MemoryEnergySpec,
}

/// The memory controller of each pseudo-channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerSpec {
    /// Reads (row-sized pieces of requests) waiting per pseudo-channel.
    pub read_queue: u32,
    /// Writes waiting per pseudo-channel.
    pub write_queue: u32,
    /// Writes queued at which the controller turns to draining them.
    pub write_drain_high: u32,
    /// Writes left at which it turns back to reads.
    pub write_drain_low: u32,
    /// The controller's and PHY's own pipeline, beyond the DRAM's timing:
    /// added to every request between its arrival and its reply. Zero when
    /// absent.
    #[serde(default, skip_serializing_if = "Duration::is_zero")]
    pub latency: Duration,
}

/// The memory standard's timing: a named preset (`models/presets/dram/`)
/// with any parameter overridden, or every parameter given.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DramTimingSpec {
    /// A JEDEC-class preset of the timing: "HBM2", "HBM3", "HBM3E" or "GDDR6".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<MemoryKind>,
    /// Command clock period.
    #[serde(rename = "tCK", default, skip_serializing_if = "Option::is_none")]
    pub t_ck: Option<Duration>,
    /// Activate to read/write.
    #[serde(rename = "tRCD", default, skip_serializing_if = "Option::is_none")]
    pub t_rcd: Option<Duration>,
    /// Read command to first data (CAS latency).
    #[serde(rename = "tCL", default, skip_serializing_if = "Option::is_none")]
    pub t_cl: Option<Duration>,
    /// Write command to first data.
    #[serde(rename = "tCWL", default, skip_serializing_if = "Option::is_none")]
    pub t_cwl: Option<Duration>,
    /// Precharge to activate.
    #[serde(rename = "tRP", default, skip_serializing_if = "Option::is_none")]
    pub t_rp: Option<Duration>,
    /// Activate to precharge, minimum.
    #[serde(rename = "tRAS", default, skip_serializing_if = "Option::is_none")]
    pub t_ras: Option<Duration>,
    /// Activate to activate, same bank.
    #[serde(rename = "tRC", default, skip_serializing_if = "Option::is_none")]
    pub t_rc: Option<Duration>,
    /// Activate to activate, different bank groups.
    #[serde(rename = "tRRD_S", default, skip_serializing_if = "Option::is_none")]
    pub t_rrd_s: Option<Duration>,
    /// Activate to activate, same bank group.
    #[serde(rename = "tRRD_L", default, skip_serializing_if = "Option::is_none")]
    pub t_rrd_l: Option<Duration>,
    /// Window in which at most four activates may issue.
    #[serde(rename = "tFAW", default, skip_serializing_if = "Option::is_none")]
    pub t_faw: Option<Duration>,
    /// Column command to column command, different bank groups (also the time a burst holds the data bus).
    #[serde(rename = "tCCD_S", default, skip_serializing_if = "Option::is_none")]
    pub t_ccd_s: Option<Duration>,
    /// Column command to column command, same bank group.
    #[serde(rename = "tCCD_L", default, skip_serializing_if = "Option::is_none")]
    pub t_ccd_l: Option<Duration>,
    /// Write recovery: end of write data to precharge.
    #[serde(rename = "tWR", default, skip_serializing_if = "Option::is_none")]
    pub t_wr: Option<Duration>,
    /// End of write data to read, different bank groups.
    #[serde(rename = "tWTR_S", default, skip_serializing_if = "Option::is_none")]
    pub t_wtr_s: Option<Duration>,
    /// End of write data to read, same bank group.
    #[serde(rename = "tWTR_L", default, skip_serializing_if = "Option::is_none")]
    pub t_wtr_l: Option<Duration>,
    /// Read to precharge.
    #[serde(rename = "tRTP", default, skip_serializing_if = "Option::is_none")]
    pub t_rtp: Option<Duration>,
    /// Refresh cycle time (all banks).
    #[serde(rename = "tRFC", default, skip_serializing_if = "Option::is_none")]
    pub t_rfc: Option<Duration>,
    /// Average interval between refreshes.
    #[serde(rename = "tREFI", default, skip_serializing_if = "Option::is_none")]
    pub t_refi: Option<Duration>,
    /// Beats per burst.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst_length: Option<u32>,
}

/// Timing parameters with every value known, in picoseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DramTiming {
    /// Command clock period.
    pub t_ck: Time,
    /// Activate to read/write.
    pub t_rcd: Time,
    /// Read command to first data (CAS latency).
    pub t_cl: Time,
    /// Write command to first data.
    pub t_cwl: Time,
    /// Precharge to activate.
    pub t_rp: Time,
    /// Activate to precharge, minimum.
    pub t_ras: Time,
    /// Activate to activate, same bank.
    pub t_rc: Time,
    /// Activate to activate, different bank groups.
    pub t_rrd_s: Time,
    /// Activate to activate, same bank group.
    pub t_rrd_l: Time,
    /// Window in which at most four activates may issue.
    pub t_faw: Time,
    /// Column command to column command, different bank groups (also the time a burst holds the data bus).
    pub t_ccd_s: Time,
    /// Column command to column command, same bank group.
    pub t_ccd_l: Time,
    /// Write recovery: end of write data to precharge.
    pub t_wr: Time,
    /// End of write data to read, different bank groups.
    pub t_wtr_s: Time,
    /// End of write data to read, same bank group.
    pub t_wtr_l: Time,
    /// Read to precharge.
    pub t_rtp: Time,
    /// Refresh cycle time (all banks).
    pub t_rfc: Time,
    /// Average interval between refreshes.
    pub t_refi: Time,
    pub burst_length: u32,
}

impl DramTimingSpec {
    /// The preset's values with this spec's overrides; `Err` names the first
    /// parameter that neither gives.
    pub fn resolve(&self) -> Result<DramTiming, String> {
        let base: Option<DramTimingSpec> =
            self.preset.map(|k| toml::from_str(k.timing_preset()).expect("shipped timing presets parse"));
        let get = |own: Option<Duration>, preset: Option<Duration>, name: &str| {
            own.or(preset).map(|d| d.time()).ok_or_else(|| format!("{name} is not given and no preset provides it"))
        };
        Ok(DramTiming {
            t_ck: get(self.t_ck, base.as_ref().and_then(|b| b.t_ck), "tCK")?,
            t_rcd: get(self.t_rcd, base.as_ref().and_then(|b| b.t_rcd), "tRCD")?,
            t_cl: get(self.t_cl, base.as_ref().and_then(|b| b.t_cl), "tCL")?,
            t_cwl: get(self.t_cwl, base.as_ref().and_then(|b| b.t_cwl), "tCWL")?,
            t_rp: get(self.t_rp, base.as_ref().and_then(|b| b.t_rp), "tRP")?,
            t_ras: get(self.t_ras, base.as_ref().and_then(|b| b.t_ras), "tRAS")?,
            t_rc: get(self.t_rc, base.as_ref().and_then(|b| b.t_rc), "tRC")?,
            t_rrd_s: get(self.t_rrd_s, base.as_ref().and_then(|b| b.t_rrd_s), "tRRD_S")?,
            t_rrd_l: get(self.t_rrd_l, base.as_ref().and_then(|b| b.t_rrd_l), "tRRD_L")?,
            t_faw: get(self.t_faw, base.as_ref().and_then(|b| b.t_faw), "tFAW")?,
            t_ccd_s: get(self.t_ccd_s, base.as_ref().and_then(|b| b.t_ccd_s), "tCCD_S")?,
            t_ccd_l: get(self.t_ccd_l, base.as_ref().and_then(|b| b.t_ccd_l), "tCCD_L")?,
            t_wr: get(self.t_wr, base.as_ref().and_then(|b| b.t_wr), "tWR")?,
            t_wtr_s: get(self.t_wtr_s, base.as_ref().and_then(|b| b.t_wtr_s), "tWTR_S")?,
            t_wtr_l: get(self.t_wtr_l, base.as_ref().and_then(|b| b.t_wtr_l), "tWTR_L")?,
            t_rtp: get(self.t_rtp, base.as_ref().and_then(|b| b.t_rtp), "tRTP")?,
            t_rfc: get(self.t_rfc, base.as_ref().and_then(|b| b.t_rfc), "tRFC")?,
            t_refi: get(self.t_refi, base.as_ref().and_then(|b| b.t_refi), "tREFI")?,
            burst_length: self
                .burst_length
                .or(base.as_ref().and_then(|b| b.burst_length))
                .ok_or("burst_length is not given and no preset provides it")?,
        })
    }
}

impl MemoryKind {
    /// The TOML text of this standard's timing preset.
    pub fn timing_preset(self) -> &'static str {
        match self {
            MemoryKind::Hbm2 | MemoryKind::Hbm2e => include_str!("../../presets/dram/hbm2.toml"),
            MemoryKind::Hbm3 => include_str!("../../presets/dram/hbm3.toml"),
            MemoryKind::Hbm3e => include_str!("../../presets/dram/hbm3e.toml"),
            MemoryKind::Gddr6 => include_str!("../../presets/dram/gddr6.toml"),
        }
    }
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
