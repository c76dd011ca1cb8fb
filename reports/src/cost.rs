//! Cost per token from a spec's `[cost]` table: the purchase spread over its
//! years of depreciation, plus the electricity the run's average power
//! draws at the wall, per output token.

use models::spec::SystemSpec;
use serde::{Deserialize, Serialize};

/// What serving the run's tokens costs, where the spec has a `[cost]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// US dollars per million output tokens; null unless every figure it needs is given.
    pub usd_per_million_tokens: Option<f64>,
    /// The purchase, per hour of ownership.
    pub capital_usd_per_hour: Option<f64>,
    /// Electricity at the wall, per hour, at the run's average power.
    pub power_usd_per_hour: Option<f64>,
    /// Energy per output token drawn at the wall (joules per token x PUE).
    pub wall_joules_per_token: Option<f64>,
    /// The `[cost]` fields the missing figures need.
    pub missing: Vec<String>,
}

/// The cost of serving `tokens_per_s` at `average_power_w` (IT power) on `spec`.
pub fn cost(spec: &SystemSpec, tokens_per_s: f64, average_power_w: f64, joules_per_token: f64) -> Option<Cost> {
    let c = &spec.cost;
    if c.is_empty() {
        return None;
    }
    let capital = c.capital_usd_per_s(spec.nodes, spec.node.cards);
    let power = c.power_usd_per_s(average_power_w);
    let per_million = match (capital, power) {
        (Some(k), Some(p)) if tokens_per_s > 0.0 => Some((k + p) / tokens_per_s * 1e6),
        _ => None,
    };
    Some(Cost {
        usd_per_million_tokens: per_million,
        capital_usd_per_hour: capital.map(|k| k * 3600.0),
        power_usd_per_hour: power.map(|p| p * 3600.0),
        wall_joules_per_token: c.pue.map(|pue| joules_per_token * pue),
        missing: c.missing().into_iter().map(String::from).collect(),
    })
}
