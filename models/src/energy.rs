//! Energy the Accelergy way: components count their actions; this table,
//! built from the spec, turns counts into joules; static power is charged over
//! the elapsed time. Timing code never computes energy.

use sim_core::{ComponentStats, Time};
use std::collections::{BTreeMap, HashMap};

/// The energy of one unit of a counted action.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionEnergy {
    /// The statistic counting the action, e.g. `actions.mac.fp8`.
    pub stat: String,
    /// The breakdown part the energy is charged to, e.g. `npu.matrix`.
    pub part: &'static str,
    pub joules_per_unit: f64,
}

impl ActionEnergy {
    pub fn new(stat: impl Into<String>, part: &'static str, joules_per_unit: f64) -> ActionEnergy {
        ActionEnergy { stat: stat.into(), part, joules_per_unit }
    }
}

/// Action energies per component path, and the static power of the machine.
#[derive(Clone, Debug, Default)]
pub struct EnergyModel {
    actions: HashMap<String, Vec<ActionEnergy>>,
    static_watts: Vec<(&'static str, f64)>,
}

/// Joules per part; the parts add up to the total.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnergyBreakdown {
    pub parts: BTreeMap<String, f64>,
}

impl EnergyBreakdown {
    /// The sum of the parts, added in the parts' order.
    pub fn total(&self) -> f64 {
        self.parts.values().sum()
    }

    /// The energy of the accelerator cards alone ([`is_accelerator`]), as
    /// published J/token figures measure it (GPU board power).
    pub fn accelerators(&self) -> f64 {
        self.parts.iter().filter(|(part, _)| is_accelerator(part)).map(|(_, j)| j).sum()
    }
}

/// Whether a breakdown part is drawn by the accelerator cards: their
/// chiplets, device memory, idle power and the links between their chips
/// (die to die, peer); not the host, its memory, or the PCIe and network
/// links that reach the cards.
pub fn is_accelerator(part: &str) -> bool {
    part.starts_with("npu.")
        || part.starts_with("memory.")
        || matches!(part, "static.npu" | "static.memory" | "link.peer" | "link.d2d")
}

impl EnergyModel {
    pub fn actions(&mut self, path: &str, actions: Vec<ActionEnergy>) {
        self.actions.insert(path.to_string(), actions);
    }

    pub fn static_power(&mut self, part: &'static str, watts: f64) {
        self.static_watts.push((part, watts));
    }

    /// Total static power, in watts.
    pub fn static_watts(&self) -> f64 {
        self.static_watts.iter().map(|(_, w)| w).sum()
    }

    pub fn account(&self, stats: &[ComponentStats], elapsed: Time) -> EnergyBreakdown {
        let mut parts: BTreeMap<String, f64> = BTreeMap::new();
        for component in stats {
            let Some(actions) = self.actions.get(&component.path) else { continue };
            for a in actions {
                let count = component.stats.scalar_value(&a.stat).unwrap_or(0);
                *parts.entry(a.part.to_string()).or_insert(0.0) += count as f64 * a.joules_per_unit;
            }
        }
        for (part, watts) in &self.static_watts {
            *parts.entry(part.to_string()).or_insert(0.0) += watts * elapsed.as_secs_f64();
        }
        EnergyBreakdown { parts }
    }
}
