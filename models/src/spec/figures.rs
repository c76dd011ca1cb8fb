//! Figures derived from a spec, for checking it against a datasheet: peak
//! FLOP/s per dtype, memory bandwidth and capacity, link rates.

use super::{CardSpec, ChipletSpec, CpuSpec, MemorySpec, PcieSpec, SystemSpec};
use crate::units::{Bandwidth, Bytes};
use isa::Dtype;

impl PcieSpec {
    /// Usable data rate of one lane in one direction, after line encoding:
    /// 128b/130b for generations 3 to 5 (8, 16, 32 GT/s), and for generation 6
    /// (64 GT/s PAM4, FLIT mode) the 242 payload bytes of each 256-byte FLIT.
    /// Rounded down to a whole bit per second. Source: PCI-SIG base specifications.
    pub fn lane_rate(&self) -> Bandwidth {
        let bits_per_s = match self.generation {
            3 => 8_000_000_000u64 * 128 / 130,
            4 => 16_000_000_000 * 128 / 130,
            5 => 32_000_000_000 * 128 / 130,
            _ => 64_000_000_000 * 242 / 256,
        };
        Bandwidth::from_bits_per_s(bits_per_s)
    }
    /// Data rate of one port, one direction.
    pub fn port_bandwidth(&self) -> Bandwidth {
        self.lane_rate().times(self.lanes as u64)
    }
}

impl MemorySpec {
    /// Peak data rate of one stack: pins × pin rate.
    pub fn stack_bandwidth(&self) -> Bandwidth {
        self.pin_rate.times(self.bus_width_bits as u64)
    }
    pub fn peak_bandwidth(&self) -> Bandwidth {
        self.stack_bandwidth().times(self.stacks as u64)
    }
    pub fn capacity(&self) -> Bytes {
        Bytes(self.capacity_per_stack.get() * self.stacks as u64)
    }
    /// Independently scheduled pseudo-channels across all stacks.
    pub fn pseudo_channel_count(&self) -> u32 {
        self.stacks * self.channels_per_stack * self.pseudo_channels
    }
    /// Data pins of one pseudo-channel.
    pub fn pseudo_channel_bits(&self) -> u64 {
        self.bus_width_bits as u64 / (self.channels_per_stack as u64 * self.pseudo_channels as u64).max(1)
    }
    /// Bytes one burst moves on one pseudo-channel.
    pub fn burst_bytes(&self) -> u64 {
        let bl = self.timing.resolve().map_or(0, |t| t.burst_length as u64);
        bl * self.pseudo_channel_bits() / 8
    }
    /// The sizes the address mapping divides addresses by.
    pub fn organization(&self) -> crate::memory::Organization {
        crate::memory::Organization {
            channels: self.pseudo_channel_count() as u64,
            bank_groups: self.bank_groups as u64,
            banks_per_group: self.banks_per_group as u64,
            columns: self.page_size.get() / self.burst_bytes().max(1),
        }
    }
}

impl ChipletSpec {
    /// Peak dense FLOP/s in `dtype` (2 FLOPs per MAC); zero if unsupported.
    pub fn peak_flops(&self, dtype: Dtype) -> f64 {
        let m = &self.core.matrix;
        let rate = m.macs_per_pe.get(&dtype).copied().unwrap_or(0) as f64;
        2.0 * rate * m.rows as f64 * m.cols as f64 * m.engines as f64 * self.cores as f64 * self.clock.hz() as f64
    }
}

impl CardSpec {
    pub fn peak_flops(&self, dtype: Dtype) -> f64 {
        self.chiplet.peak_flops(dtype) * self.chiplets as f64
    }
    pub fn memory_bandwidth(&self) -> Bandwidth {
        self.chiplet.memory.peak_bandwidth().times(self.chiplets as u64)
    }
    pub fn memory_capacity(&self) -> Bytes {
        Bytes(self.chiplet.memory.capacity().get() * self.chiplets as u64)
    }
}

impl CpuSpec {
    /// Peak FP32 FLOP/s of all cores' SIMD pipes (fused multiply-add = 2 FLOPs).
    pub fn peak_fp32_flops(&self) -> f64 {
        let lanes = (self.vector_bits / 32) as f64;
        2.0 * lanes * self.vector_pipes as f64 * self.cores as f64 * self.clock.hz() as f64
    }
    pub fn dram_bandwidth(&self) -> Bandwidth {
        self.dram.channel_bandwidth.times(self.dram.channels as u64)
    }
}

/// A labelled derived figure, printed by `npusim show`.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub label: String,
    pub value: String,
}

fn flops(value: f64) -> String {
    if value >= 1e15 { format!("{:.3} PFLOP/s", value / 1e15) } else { format!("{:.1} TFLOP/s", value / 1e12) }
}

impl SystemSpec {
    /// Accelerator chiplets in the whole system.
    pub fn device_count(&self) -> u32 {
        self.nodes * self.node.cards * self.node.card.as_ref().map_or(0, |c| c.chiplets)
    }

    /// The derived figures a user checks against datasheets.
    pub fn figures(&self) -> Vec<Figure> {
        let mut out = Vec::new();
        let mut add = |label: String, value: String| out.push(Figure { label, value });
        let cpu = &self.node.cpu;
        add("cpu".into(), format!("{} cores x {} = {} FP32 SIMD", cpu.cores, cpu.clock, flops(cpu.peak_fp32_flops())));
        add("cpu.dram bandwidth".into(), cpu.dram_bandwidth().readable());
        add(
            "node host link (one direction)".into(),
            self.node.host_link.port_bandwidth().times(self.node.host_link.ports as u64).readable(),
        );
        if let Some(card) = &self.node.card {
            for dtype in Dtype::ALL {
                let per_chiplet = card.chiplet.peak_flops(dtype);
                if per_chiplet > 0.0 {
                    add(
                        format!("peak {dtype} per chiplet / card / system"),
                        format!(
                            "{} / {} / {}",
                            flops(per_chiplet),
                            flops(card.peak_flops(dtype)),
                            flops(card.peak_flops(dtype) * (self.node.cards * self.nodes) as f64)
                        ),
                    );
                }
            }
            add(
                "memory bandwidth per chiplet / card".into(),
                format!("{} / {}", card.chiplet.memory.peak_bandwidth(), card.memory_bandwidth()),
            );
            add(
                "memory capacity per card / system".into(),
                format!(
                    "{} / {}",
                    card.memory_capacity(),
                    Bytes(card.memory_capacity().get() * (self.node.cards * self.nodes) as u64)
                ),
            );
            add(
                "card PCIe (one direction)".into(),
                card.host_link.port_bandwidth().times(card.host_link.ports as u64).readable(),
            );
            if let Some(d2d) = &card.d2d {
                add("die-to-die link (one direction)".into(), format!("{} at {}", d2d.bandwidth, d2d.latency));
            }
            if let Some(peer) = &card.peer_link {
                add("peer link per card (one direction)".into(), peer.bandwidth.readable());
            }
            let power = &card.power;
            add(
                "card power (TDP / idle / active)".into(),
                format!("{} / {} / {}", power.tdp, power.idle, power.active),
            );
        }
        add("devices (chiplets) in the system".into(), self.device_count().to_string());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcie_rates_follow_the_standard() {
        let link = |generation| PcieSpec {
            generation,
            lanes: 16,
            ports: 1,
            latency: "1 ns".parse().unwrap(),
            energy_per_bit: "1 pJ/bit".parse().unwrap(),
        };
        // Gen5 x16: 32 GT/s x 16 x 128/130 = 63.0 GB/s per direction.
        let gen5 = link(5).port_bandwidth().bytes_per_s();
        assert!((gen5 / 1e9 - 63.015).abs() < 0.01, "{gen5}");
        let gen6 = link(6).port_bandwidth().bytes_per_s();
        assert!((gen6 / 1e9 - 121.0).abs() < 0.01, "{gen6}");
    }
}
