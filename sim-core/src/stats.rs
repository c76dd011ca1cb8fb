//! Statistics primitives that components own: counters, busy-time
//! accumulators and histograms, and the typed, unit-carrying records a
//! component hands over at the end of a run.

use crate::time::Time;
use serde::Serialize;

/// The unit a statistic is counted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A plain count of things (instructions, requests, activates).
    Count,
    Bytes,
    Picoseconds,
    /// Cycles of the owning component's clock.
    Cycles,
}

/// A five-number-plus summary of a distribution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub count: u64,
    pub min: u64,
    pub max: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatValue {
    Scalar(u64),
    Distribution(Summary),
}

/// One statistic: a named, described value with its unit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stat {
    pub name: String,
    pub unit: Unit,
    pub description: &'static str,
    pub value: StatValue,
}

/// The statistics of one component.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Stats(Vec<Stat>);

impl Stats {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn scalar(mut self, name: impl Into<String>, unit: Unit, description: &'static str, value: u64) -> Self {
        self.0.push(Stat { name: name.into(), unit, description, value: StatValue::Scalar(value) });
        self
    }
    pub fn count(self, name: impl Into<String>, description: &'static str, value: u64) -> Self {
        self.scalar(name, Unit::Count, description, value)
    }
    pub fn bytes(self, name: impl Into<String>, description: &'static str, value: u64) -> Self {
        self.scalar(name, Unit::Bytes, description, value)
    }
    pub fn time(self, name: impl Into<String>, description: &'static str, value: Time) -> Self {
        self.scalar(name, Unit::Picoseconds, description, value.as_ps())
    }
    pub fn distribution(
        mut self,
        name: impl Into<String>,
        unit: Unit,
        description: &'static str,
        histogram: &Histogram,
    ) -> Self {
        self.0.push(Stat { name: name.into(), unit, description, value: StatValue::Distribution(histogram.summary()) });
        self
    }
    pub fn push(&mut self, stat: Stat) {
        self.0.push(stat);
    }
    pub fn extend(&mut self, other: Stats) {
        self.0.extend(other.0);
    }
    pub fn iter(&self) -> impl Iterator<Item = &Stat> {
        self.0.iter()
    }
    /// What the scalars grew by since `earlier` (a snapshot of the same
    /// component): the non-zero differences, in this snapshot's order.
    /// Distributions are not differences of snapshots and are left out.
    pub fn since(&self, earlier: &Stats) -> Stats {
        let before: std::collections::HashMap<&str, u64> = earlier
            .0
            .iter()
            .filter_map(|s| match s.value {
                StatValue::Scalar(v) => Some((s.name.as_str(), v)),
                StatValue::Distribution(_) => None,
            })
            .collect();
        let grown = self.0.iter().filter_map(|s| {
            let StatValue::Scalar(v) = s.value else { return None };
            let d = v.saturating_sub(before.get(s.name.as_str()).copied().unwrap_or(0));
            (d > 0).then(|| Stat {
                name: s.name.clone(),
                unit: s.unit,
                description: s.description,
                value: StatValue::Scalar(d),
            })
        });
        Stats(grown.collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scalar named `name`, if there is one.
    pub fn scalar_value(&self, name: &str) -> Option<u64> {
        self.0.iter().find(|s| s.name == name).and_then(|s| match s.value {
            StatValue::Scalar(v) => Some(v),
            StatValue::Distribution(_) => None,
        })
    }
}

/// One distinct record, its scalars as (slot, value), and how often it was replayed.
type ReplayedRecord = (std::sync::Arc<Stats>, Vec<(usize, u64)>, u64);

/// Statistics of work a component did not simulate but is told it did:
/// recorded elsewhere (by a simulation of the same work) and replayed. A
/// component keeps one and adds it to what it reports. Replaying costs a
/// count; the sums are made when statistics are read, over each distinct
/// record's scalars by slot, so reading stays cheap however often it is done.
#[derive(Clone, Debug, Default)]
pub struct Replayed {
    /// Each distinct record, by address (kept alive here, so never reused).
    index: std::collections::HashMap<usize, usize>,
    records: Vec<ReplayedRecord>,
    /// The scalars' names, units and descriptions, by slot.
    names: Vec<(String, Unit, &'static str)>,
    slots: std::collections::HashMap<String, usize>,
}

impl Replayed {
    /// One more replay of `recorded`.
    pub fn add(&mut self, recorded: &std::sync::Arc<Stats>) {
        let at = std::sync::Arc::as_ptr(recorded) as usize;
        let i = match self.index.get(&at) {
            Some(&i) => i,
            None => {
                let scalars = recorded
                    .iter()
                    .filter_map(|stat| match stat.value {
                        StatValue::Scalar(v) => Some((self.slot(stat), v)),
                        StatValue::Distribution(_) => None,
                    })
                    .collect();
                self.records.push((std::sync::Arc::clone(recorded), scalars, 0));
                self.index.insert(at, self.records.len() - 1);
                self.records.len() - 1
            }
        };
        self.records[i].2 += 1;
    }

    fn slot(&mut self, stat: &Stat) -> usize {
        if let Some(&s) = self.slots.get(&stat.name) {
            return s;
        }
        self.names.push((stat.name.clone(), stat.unit, stat.description));
        self.slots.insert(stat.name.clone(), self.names.len() - 1);
        self.names.len() - 1
    }

    /// Every replayed scalar's name and its sum over all replays, in first-seen order.
    pub fn scalar_sums(&self) -> impl Iterator<Item = (&str, u64)> {
        self.names.iter().map(|(name, _, _)| name.as_str()).zip(self.sums())
    }

    fn sums(&self) -> Vec<u64> {
        let mut sums = vec![0u64; self.names.len()];
        for (_, scalars, times) in &self.records {
            for &(slot, v) in scalars {
                sums[slot] += v * times;
            }
        }
        sums
    }

    /// Each distinct record and how often it was replayed, in first-replay order.
    pub fn records(&self) -> impl Iterator<Item = (&Stats, u64)> {
        self.records.iter().map(|(s, _, n)| (s.as_ref(), *n))
    }

    /// `stats` with the replayed scalars added to those of the same name and
    /// the others appended in name order, except those whose name starts
    /// with one of `skip` (what a component is, such as `units.`, or what its
    /// own clock accrues). Distributions are not additive and are left out.
    pub fn merge_into(&self, mut stats: Stats, skip: &[&str]) -> Stats {
        if self.records.is_empty() {
            return stats;
        }
        let mut extra: std::collections::BTreeMap<&str, (Unit, &'static str, u64)> = Default::default();
        for ((name, unit, description), sum) in self.names.iter().zip(self.sums()) {
            if !skip.iter().any(|p| name.starts_with(p)) {
                extra.insert(name.as_str(), (*unit, *description, sum));
            }
        }
        for stat in &mut stats.0 {
            if let (StatValue::Scalar(v), Some((_, _, add))) = (&mut stat.value, extra.remove(stat.name.as_str())) {
                *v += add;
            }
        }
        for (name, (unit, description, value)) in extra {
            stats.0.push(Stat { name: name.to_string(), unit, description, value: StatValue::Scalar(value) });
        }
        stats
    }
}

/// Total time during which a resource was busy.
///
/// Intervals are booked as they are decided, in order of start time, and may
/// overlap (an engine with several operations in flight): overlapping time is
/// counted once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BusyTime {
    total: Time,
    run_start: Time,
    busy_until: Time,
}

impl BusyTime {
    /// Book `[start, end)`. Starts must not decrease from one call to the next.
    pub fn record(&mut self, start: Time, end: Time) {
        debug_assert!(start >= self.run_start, "busy intervals booked out of order");
        if end <= start {
            return;
        }
        if start >= self.busy_until {
            self.total += end - start;
            self.run_start = start;
            self.busy_until = end;
        } else if end > self.busy_until {
            self.total += end - self.busy_until;
            self.busy_until = end;
        }
    }

    /// Busy time up to `now`; time booked beyond `now` is not counted.
    pub fn total_until(&self, now: Time) -> Time {
        if self.busy_until <= now {
            self.total
        } else {
            let beyond = self.busy_until - self.run_start.max(now);
            self.total.saturating_sub(beyond)
        }
    }

    /// The end of the latest booked interval.
    pub fn busy_until(&self) -> Time {
        self.busy_until
    }
}

/// A distribution of values: percentiles with bounded relative error (three
/// significant digits), the mean, minimum and maximum exact.
#[derive(Clone, Debug)]
pub struct Histogram {
    inner: hdrhistogram::Histogram<u64>,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    pub fn new() -> Self {
        let mut inner = hdrhistogram::Histogram::new(3).expect("three significant digits is a valid precision");
        // Grow to any value rather than saturate: latencies span picoseconds to seconds.
        inner.auto(true);
        Histogram { inner, sum: 0, min: u64::MAX, max: 0 }
    }
    pub fn record(&mut self, value: u64) {
        self.sum += value as u128;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        if self.inner.record(value).is_err() {
            self.inner.saturating_record(value);
        }
    }
    pub fn count(&self) -> u64 {
        self.inner.len()
    }
    pub fn summary(&self) -> Summary {
        if self.inner.is_empty() {
            return Summary::default();
        }
        Summary {
            count: self.inner.len(),
            min: self.min,
            max: self.max,
            mean: self.sum as f64 / self.inner.len() as f64,
            p50: self.inner.value_at_quantile(0.50),
            p90: self.inner.value_at_quantile(0.90),
            p99: self.inner.value_at_quantile(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(n: u64) -> Time {
        Time::from_ns(n)
    }

    #[test]
    fn overlapping_busy_intervals_count_once() {
        let mut b = BusyTime::default();
        b.record(ns(0), ns(10));
        b.record(ns(5), ns(12));
        b.record(ns(20), ns(25));
        assert_eq!(b.total_until(ns(100)), ns(17));
    }

    #[test]
    fn busy_time_past_the_end_is_clipped() {
        let mut b = BusyTime::default();
        b.record(ns(0), ns(10));
        b.record(ns(20), ns(40));
        assert_eq!(b.total_until(ns(30)), ns(20));
        assert_eq!(b.total_until(ns(15)), ns(10));
    }

    #[test]
    fn histogram_percentiles_are_within_three_digits() {
        let mut h = Histogram::new();
        for v in 1..=10_000 {
            h.record(v);
        }
        let s = h.summary();
        assert_eq!(s.count, 10_000);
        assert!((s.p50 as f64 - 5_000.0).abs() / 5_000.0 < 1e-3, "{s:?}");
        assert!((s.p99 as f64 - 9_900.0).abs() / 9_900.0 < 1e-3);
        assert_eq!(s.mean, 5_000.5);
        assert_eq!((s.min, s.max), (1, 10_000));
    }

    #[test]
    fn stats_carry_units() {
        let s = Stats::new().bytes("read", "bytes read", 64).count("ops", "operations", 3);
        assert_eq!(s.scalar_value("read"), Some(64));
        assert_eq!(s.iter().next().unwrap().unit, Unit::Bytes);
    }
}

#[cfg(test)]
mod replay_tests {
    use super::*;

    #[test]
    fn replayed_scalars_add_to_their_namesakes_and_skip_what_is_not_additive() {
        let recorded =
            std::sync::Arc::new(Stats::new().count("ops", "", 3).count("units.x", "", 1).bytes("bytes", "", 10));
        let mut r = Replayed::default();
        r.add(&recorded);
        r.add(&recorded);
        let merged = r.merge_into(Stats::new().count("ops", "", 1).count("units.x", "", 1), &["units."]);
        assert_eq!(merged.scalar_value("ops"), Some(7));
        assert_eq!(merged.scalar_value("units.x"), Some(1));
        assert_eq!(merged.scalar_value("bytes"), Some(20));
    }
}
