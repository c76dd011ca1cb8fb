//! Parts of a system that microbenchmarks accept on their own: one chiplet's
//! memory (`micro memory`) or one network (`micro noc`). A file holding only
//! a `name` and a `[memory]` or `[noc]` table is such a minimal spec; any
//! other file is read as a whole system and the part taken from its chiplet.
//! Minimal specs have no `base`; their memory timing may still name a DRAM
//! timing preset.

use crate::input::{self, InputError};
use crate::presets::load_system;
use crate::spec::validate::{memory_checks, noc_checks};
use crate::spec::{CardSpec, MemorySpec, NocSpec, SystemSpec};
use serde::{Deserialize, Serialize};

/// One chiplet's memory alone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryPart {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub memory: MemorySpec,
}

/// One network alone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NocPart {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub noc: NocSpec,
}

/// A network to study: its name, the network, and the card whose chiplets
/// it belongs to when it came from a whole system (their meshes may be joined).
#[derive(Clone, Debug, PartialEq)]
pub struct NocInput {
    pub name: String,
    pub noc: NocSpec,
    pub card: Option<CardSpec>,
}

/// Whether `text` is a minimal spec holding the top-level table `key`.
fn is_part(text: &str, key: &str) -> bool {
    toml::from_str::<toml::Table>(text).is_ok_and(|t| t.contains_key(key) && !t.contains_key("node"))
}

fn no_presets(_: &str) -> Option<&'static str> {
    None
}

/// The memory of a whole system's chiplet.
pub fn memory_of(spec: &SystemSpec) -> Result<(String, MemorySpec), InputError> {
    match &spec.node.card {
        Some(card) => Ok((spec.name.clone(), card.chiplet.memory.clone())),
        None => Err(InputError::general(&spec.name, "this system has no accelerator card, so no device memory")),
    }
}

/// The network of a whole system's chiplet.
pub fn noc_of(spec: &SystemSpec) -> Result<NocInput, InputError> {
    match &spec.node.card {
        Some(card) => Ok(NocInput { name: spec.name.clone(), noc: card.chiplet.noc.clone(), card: Some(card.clone()) }),
        None => Err(InputError::general(&spec.name, "this system has no accelerator card, so no on-chip network")),
    }
}

/// A chiplet memory from a minimal memory spec or a whole system; `source` names it in errors.
pub fn load_memory(source: &str, text: &str) -> Result<(String, MemorySpec), InputError> {
    if !is_part(text, "memory") {
        return memory_of(&load_system(source, text)?);
    }
    let part: MemoryPart = input::load(source, text, &no_presets, |p: &MemoryPart| {
        let mut out = Vec::new();
        memory_checks(&mut out, "memory", &p.memory);
        out
    })?;
    Ok((part.name, part.memory))
}

/// A network from a minimal network spec or a whole system; `source` names it in errors.
pub fn load_noc(source: &str, text: &str) -> Result<NocInput, InputError> {
    if !is_part(text, "noc") {
        return noc_of(&load_system(source, text)?);
    }
    let part: NocPart = input::load(source, text, &no_presets, |p: &NocPart| {
        let mut out = Vec::new();
        noc_checks(&mut out, "noc", &p.noc, None);
        out
    })?;
    Ok(NocInput { name: part.name, noc: part.noc, card: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_noc_spec_loads_and_its_errors_name_the_field() {
        let text = r#"
name = "mesh4"
[noc]
topology = "mesh"
columns = 4
rows = 4
link_width = "32 B"
clock = "1 GHz"
router_latency_cycles = 2
link_latency_cycles = 1
virtual_channels = 2
buffer_flits = 8
"#;
        let got = load_noc("mesh4.toml", text).unwrap();
        assert_eq!((got.name.as_str(), got.noc.routers(), got.card), ("mesh4", 16, None));
        let bad = text.replace("virtual_channels = 2", "virtual_channels = 0");
        let e = load_noc("mesh4.toml", &bad).unwrap_err().to_string();
        assert!(e.contains("mesh4.toml:11:") && e.contains("noc.virtual_channels"), "{e}");
    }

    #[test]
    fn a_minimal_memory_spec_names_a_timing_preset() {
        let text = r#"
name = "one-hbm3e-stack"
[memory]
kind = "HBM3E"
stacks = 1
capacity_per_stack = "36 GB"
bus_width_bits = 1024
pin_rate = "9.6 Gb/s"
channels_per_stack = 16
pseudo_channels = 2
bank_groups = 4
banks_per_group = 4
page_size = "1 KiB"
address_mapping = "co:8 ch bg co ba ro"
[memory.timing]
preset = "HBM3E"
[memory.controller]
read_queue = 64
write_queue = 64
write_drain_high = 48
write_drain_low = 16
[memory.energy]
read = "3.5 pJ/bit"
write = "3.5 pJ/bit"
activate = "200 pJ"
refresh = "2 nJ"
background_per_stack = "2 W"
"#;
        match load_memory("m.toml", text) {
            Ok((name, m)) => assert_eq!((name.as_str(), m.pseudo_channel_count()), ("one-hbm3e-stack", 32)),
            Err(e) => panic!("{e}"),
        }
    }
}
