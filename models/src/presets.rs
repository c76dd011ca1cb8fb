//! The preset hardware specs shipped with npusim, compiled into the binary.

use crate::input::{self, InputError};
use crate::spec::{SystemSpec, validate};

/// A named preset: its one-line summary and its TOML text.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    pub name: &'static str,
    pub summary: &'static str,
    pub text: &'static str,
}

/// The preset `npusim run` uses when no hardware is named.
pub const DEFAULT: &str = "sovereign-node";

pub const PRESETS: &[Preset] = &[
    Preset {
        name: "sovereign-node",
        summary: "Arm AGI CPU host + 8 Rebellions REBEL-Quad cards (the default)",
        text: include_str!("../presets/sovereign-node.toml"),
    },
    Preset {
        name: "rebel-quad",
        summary: "one Rebellions REBEL-Quad card (4 chiplets, HBM3E, UCIe-A) in an AGI CPU host",
        text: include_str!("../presets/rebel-quad.toml"),
    },
    Preset {
        name: "atom",
        summary: "one Rebellions ATOM card (8 neural engines, GDDR6) in an AGI CPU host",
        text: include_str!("../presets/atom.toml"),
    },
    Preset {
        name: "agi-cpu",
        summary: "Arm AGI CPU host alone (136 Neoverse V3 cores), no accelerators",
        text: include_str!("../presets/agi-cpu.toml"),
    },
    Preset {
        name: "h100-node",
        summary: "8 x NVIDIA H100 SXM5 with NVLink and a dual-Xeon host (GPU baseline)",
        text: include_str!("../presets/h100-node.toml"),
    },
    Preset {
        name: "h200-node",
        summary: "8 x NVIDIA H200 SXM 141GB: h100-node with HBM3e at 4.8 TB/s",
        text: include_str!("../presets/h200-node.toml"),
    },
    Preset {
        name: "h800-node",
        summary: "8 x NVIDIA H800 SXM5: h100-node with NVLink at 400 GB/s (DeepSeek's published runs)",
        text: include_str!("../presets/h800-node.toml"),
    },
    Preset {
        name: "h20-node",
        summary: "8 x NVIDIA H20 96GB: 148 TFLOPS BF16, 4.0 TB/s HBM3",
        text: include_str!("../presets/h20-node.toml"),
    },
];

pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

fn preset_text(name: &str) -> Option<&'static str> {
    preset(name).map(|p| p.text)
}

/// Parse and validate a hardware spec; `source` names it in error messages.
pub fn load_system(source: &str, text: &str) -> Result<SystemSpec, InputError> {
    input::load(source, text, &preset_text, validate)
}

/// [`load_system`], with `base` spec files read by `files`.
pub fn load_system_with(source: &str, text: &str, files: input::FileReader<'_>) -> Result<SystemSpec, InputError> {
    input::load_with(source, text, &preset_text, Some(files), validate)
}

/// Load a preset by name.
pub fn load_preset(name: &str) -> Result<SystemSpec, InputError> {
    let preset = preset(name).ok_or_else(|| {
        let known: Vec<_> = PRESETS.iter().map(|p| p.name).collect();
        InputError::general(name, format!("no preset named `{name}`; presets are: {}", known.join(", ")))
    })?;
    load_system(&format!("preset {name}"), preset.text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use isa::Dtype;

    fn within(actual: f64, expected: f64, tolerance: f64) -> bool {
        (actual - expected).abs() <= tolerance * expected
    }

    #[test]
    fn every_preset_loads_and_validates() {
        for p in PRESETS {
            let spec = load_preset(p.name).unwrap_or_else(|e| panic!("{}: {e}", p.name));
            assert_eq!(spec.name, p.name);
        }
    }

    #[test]
    fn rebel_quad_reproduces_its_datasheet() {
        let spec = load_preset("rebel-quad").unwrap();
        let card = spec.node.card.as_ref().unwrap();
        assert!(within(card.peak_flops(Dtype::Fp8), 2.0e15, 0.001), "{}", card.peak_flops(Dtype::Fp8));
        assert!(within(card.peak_flops(Dtype::Bf16), 1.0e15, 0.001));
        assert_eq!(card.memory_bandwidth().bytes_per_s(), 4.8e12);
        assert_eq!(card.memory_capacity().get(), 144_000_000_000);
        assert_eq!(card.power.tdp.watts(), 600.0);
        assert_eq!(card.d2d.as_ref().unwrap().latency.time().as_ps(), 11_000);
    }

    #[test]
    fn h100_reproduces_its_datasheet() {
        let spec = load_preset("h100-node").unwrap();
        let card = spec.node.card.as_ref().unwrap();
        assert!(within(card.peak_flops(Dtype::Bf16), 989e12, 0.001), "{}", card.peak_flops(Dtype::Bf16));
        assert!(within(card.peak_flops(Dtype::Fp8), 1979e12, 0.001));
        assert_eq!(card.memory_bandwidth().bytes_per_s(), 3.35e12);
        assert_eq!(card.memory_capacity().get(), 80_000_000_000);
    }

    #[test]
    fn hopper_variants_reproduce_their_datasheets() {
        // A consistency check of each variant's derivations (stacks x pins x
        // rate, SMs x engines x clock) against the A3 table they come from.
        for (name, bf16, fp8, bandwidth, capacity, peer) in [
            ("h200-node", 989e12, 1979e12, 4.8e12, 141e9, 450e9),
            ("h800-node", 989e12, 1979e12, 3.35e12, 80e9, 200e9),
            ("h20-node", 148e12, 296e12, 4.0e12, 96e9, 450e9),
        ] {
            let spec = load_preset(name).unwrap();
            let card = spec.node.card.as_ref().unwrap();
            assert!(within(card.peak_flops(Dtype::Bf16), bf16, 0.001), "{name}: {}", card.peak_flops(Dtype::Bf16));
            assert!(within(card.peak_flops(Dtype::Fp8), fp8, 0.001), "{name}");
            assert!(within(card.memory_bandwidth().bytes_per_s(), bandwidth, 0.0001), "{name}");
            assert!(within(card.memory_capacity().get() as f64, capacity, 0.0001), "{name}");
            assert_eq!(card.peer_link.as_ref().unwrap().bandwidth.bytes_per_s(), peer, "{name}");
            assert_eq!(card.power.tdp.watts(), 700.0, "{name}");
        }
    }

    #[test]
    fn sovereign_node_is_eight_rebel_quads() {
        // 8 cards of 4 chiplets, each with 36 GB of HBM3E (144 GB a card,
        // docs/reference.md A1): 1,152 GB. Whether A.X K1 fits is a run's check
        // (tests/tests/runs.rs).
        let spec = load_preset("sovereign-node").unwrap();
        let card = spec.node.card.as_ref().unwrap();
        assert_eq!(spec.node.cards, 8);
        assert_eq!(card.memory_capacity().get(), 144_000_000_000);
        assert_eq!(spec.device_count(), 32);
    }

    #[test]
    fn atom_matches_published_compute_and_lacks_fp8() {
        let spec = load_preset("atom").unwrap();
        let card = spec.node.card.as_ref().unwrap();
        assert!(within(card.peak_flops(Dtype::Fp16), 32e12, 0.001));
        assert!(within(card.peak_flops(Dtype::Int8), 128e12, 0.001));
        assert_eq!(card.peak_flops(Dtype::Fp8), 0.0);
    }

    #[test]
    fn a_bandwidth_without_per_second_is_refused_with_its_place() {
        let text = "base = \"rebel-quad\"\n[node.card.d2d]\nbandwidth = \"1.2 TB\"\n";
        let e = load_system("mine.toml", text).unwrap_err();
        let p = &e.problems[0];
        assert_eq!((p.source.as_str(), p.line, p.column), ("mine.toml", Some(3), Some(13)));
        assert_eq!(p.path, "node.card.d2d.bandwidth");
        assert!(p.message.contains("expected a data rate") && p.message.contains("\"1.2 TB\""), "{}", p.message);
    }
}
