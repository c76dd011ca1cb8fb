//! What a system costs to own and run, for cost per token: purchase prices
//! spread over the years of depreciation, and the power it draws at the
//! wall. Every figure is optional; a cost is given only when all it needs
//! are.

use serde::{Deserialize, Serialize};

/// Purchase prices, depreciation and power price (US dollars).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostSpec {
    /// Purchase price of one accelerator card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_usd: Option<f64>,
    /// Purchase price of one node without its cards (host, chassis, switches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_usd: Option<f64>,
    /// Years over which the purchase is depreciated, straight line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub years: Option<f64>,
    /// Price of electricity, per kWh drawn at the wall.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usd_per_kwh: Option<f64>,
    /// Power usage effectiveness of the data centre: wall power over IT power.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pue: Option<f64>,
}

/// A year of 365.25 days, in seconds.
const YEAR_S: f64 = 365.25 * 86_400.0;

impl CostSpec {
    pub fn is_empty(&self) -> bool {
        *self == CostSpec::default()
    }

    /// Purchase cost per second of ownership for `nodes` nodes of `cards`
    /// cards each, where the prices and years are given.
    pub fn capital_usd_per_s(&self, nodes: u32, cards: u32) -> Option<f64> {
        let (card, host, years) = (self.card_usd?, self.host_usd?, self.years?);
        let nodes = f64::from(nodes);
        Some((nodes * f64::from(cards) * card + nodes * host) / (years * YEAR_S))
    }

    /// Electricity cost per second of drawing `it_watts` of IT power.
    pub fn power_usd_per_s(&self, it_watts: f64) -> Option<f64> {
        Some(it_watts * self.pue? / 1000.0 * self.usd_per_kwh? / 3600.0)
    }

    /// The figures a cost per token needs that are not given.
    pub fn missing(&self) -> Vec<&'static str> {
        let fields = [
            ("cost.card_usd", self.card_usd),
            ("cost.host_usd", self.host_usd),
            ("cost.years", self.years),
            ("cost.usd_per_kwh", self.usd_per_kwh),
            ("cost.pue", self.pue),
        ];
        fields.iter().filter(|(_, v)| v.is_none()).map(|(name, _)| *name).collect()
    }
}
