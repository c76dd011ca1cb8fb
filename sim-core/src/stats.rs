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
        let grown = |s: &Stat, v: u64, before: u64| {
            (v > before).then(|| Stat {
                name: s.name.clone(),
                unit: s.unit,
                description: s.description,
                value: StatValue::Scalar(v - before),
            })
        };
        // A component usually reports the same statistics in the same order.
        if self.0.len() == earlier.0.len() && self.0.iter().zip(&earlier.0).all(|(a, b)| a.name == b.name) {
            let pairs = self.0.iter().zip(&earlier.0).filter_map(|(now, then)| match (&now.value, &then.value) {
                (StatValue::Scalar(v), StatValue::Scalar(b)) => grown(now, *v, *b),
                (StatValue::Scalar(v), StatValue::Distribution(_)) => grown(now, *v, 0),
                (StatValue::Distribution(_), _) => None,
            });
            return Stats(pairs.collect());
        }
        let before: std::collections::HashMap<&str, u64> = earlier
            .0
            .iter()
            .filter_map(|s| match s.value {
                StatValue::Scalar(v) => Some((s.name.as_str(), v)),
                StatValue::Distribution(_) => None,
            })
            .collect();
        let all = self.0.iter().filter_map(|s| {
            let StatValue::Scalar(v) = s.value else { return None };
            grown(s, v, before.get(s.name.as_str()).copied().unwrap_or(0))
        });
        Stats(all.collect())
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

/// The names, units and descriptions of a component's scalars, in order.
#[derive(Debug, PartialEq)]
pub struct ScalarNames(Vec<(String, Unit, &'static str)>);

/// A component's scalars, recorded once to be replayed many times. Records
/// of the same component kind share their names (see [`Recorder`]), so a
/// record costs its values only.
#[derive(Debug)]
pub struct Recording {
    names: std::sync::Arc<ScalarNames>,
    values: Vec<u64>,
}

impl Recording {
    pub fn value(&self, name: &str) -> Option<u64> {
        self.names.0.iter().position(|(n, _, _)| n == name).map(|i| self.values[i])
    }
}

/// Makes [`Recording`]s, sharing the names of records with the same ones.
#[derive(Debug, Default)]
pub struct Recorder {
    names: Vec<std::sync::Arc<ScalarNames>>,
}

impl Recorder {
    /// The scalars of `stats` as a record (distributions are not additive and are left out).
    pub fn record(&mut self, stats: &Stats) -> Recording {
        let scalars = || {
            stats.iter().filter_map(|stat| match stat.value {
                StatValue::Scalar(v) => Some((stat, v)),
                StatValue::Distribution(_) => None,
            })
        };
        let values: Vec<u64> = scalars().map(|(_, v)| v).collect();
        let same = |names: &&std::sync::Arc<ScalarNames>| {
            names.0.len() == values.len()
                && names.0.iter().zip(scalars()).all(|((n, u, _), (stat, _))| *n == stat.name && *u == stat.unit)
        };
        let names = match self.names.iter().find(same) {
            Some(names) => std::sync::Arc::clone(names),
            None => {
                let names = ScalarNames(scalars().map(|(s, _)| (s.name.clone(), s.unit, s.description)).collect());
                self.names.push(std::sync::Arc::new(names));
                std::sync::Arc::clone(self.names.last().expect("just pushed"))
            }
        };
        Recording { names, values }
    }
}

/// Statistics of work a component did not simulate but is told it did:
/// recorded elsewhere (by a simulation of the same work) and replayed. A
/// component keeps one and adds it to what it reports. Replaying costs a
/// count; reading folds in only the records replayed since the last read,
/// so reading stays cheap however often it is done.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Each distinct record, by address (kept alive here, so never reused).
    index: std::collections::HashMap<usize, usize>,
    /// Each distinct record, the index of its names in `layouts`, and how often it was replayed.
    records: Vec<(std::sync::Arc<Recording>, usize, u64)>,
    /// Each distinct set of names met, and the slot of each of its names.
    layouts: Vec<(std::sync::Arc<ScalarNames>, Vec<usize>)>,
    /// The scalars' names, units and descriptions, by slot.
    names: Vec<(String, Unit, &'static str)>,
    slots: std::collections::HashMap<String, usize>,
    /// The records replayed since the sums were last folded. A record is
    /// listed once however often it was replayed in between.
    unfolded: Vec<usize>,
    folded: std::sync::Mutex<Folded>,
}

/// Sums by slot, and per record how many of its replays they include.
#[derive(Debug, Default)]
struct Folded {
    sums: Vec<u64>,
    times: Vec<u64>,
    /// How much of `Replayed::unfolded` is folded in.
    through: usize,
}

impl Replayed {
    /// `times` more replays of `recorded`.
    pub fn add(&mut self, recorded: &std::sync::Arc<Recording>, times: u64) {
        let at = std::sync::Arc::as_ptr(recorded) as usize;
        let i = match self.index.get(&at) {
            Some(&i) => i,
            None => {
                let layout = self.layout(&recorded.names);
                self.records.push((std::sync::Arc::clone(recorded), layout, 0));
                self.index.insert(at, self.records.len() - 1);
                self.records.len() - 1
            }
        };
        let folded = self.folded.get_mut().expect("replayed sums");
        if folded.through == self.unfolded.len() {
            // Everything listed is folded: start the list afresh.
            self.unfolded.clear();
            folded.through = 0;
        }
        folded.times.resize(self.records.len(), 0);
        if times > 0 && self.records[i].2 == folded.times[i] {
            self.unfolded.push(i);
        }
        self.records[i].2 += times;
    }

    /// The index of `names` in `layouts`, giving its names slots if they are new.
    fn layout(&mut self, names: &std::sync::Arc<ScalarNames>) -> usize {
        if let Some(l) = self.layouts.iter().position(|(n, _)| std::sync::Arc::ptr_eq(n, names)) {
            return l;
        }
        let slots = names.0.iter().map(|name| self.slot(name)).collect();
        self.layouts.push((std::sync::Arc::clone(names), slots));
        self.layouts.len() - 1
    }

    fn slot(&mut self, (name, unit, description): &(String, Unit, &'static str)) -> usize {
        if let Some(&s) = self.slots.get(name) {
            return s;
        }
        self.names.push((name.clone(), *unit, description));
        self.slots.insert(name.clone(), self.names.len() - 1);
        self.names.len() - 1
    }

    /// Every replayed scalar's name and its sum over all replays, in first-seen order.
    pub fn scalar_sums(&self) -> impl Iterator<Item = (&str, u64)> {
        self.names.iter().map(|(name, _, _)| name.as_str()).zip(self.sums())
    }

    fn sums(&self) -> Vec<u64> {
        let mut folded = self.folded.lock().expect("replayed sums");
        let Folded { sums, times, through } = &mut *folded;
        sums.resize(self.names.len(), 0);
        times.resize(self.records.len(), 0);
        for &i in &self.unfolded[*through..] {
            let (record, layout, now) = &self.records[i];
            let new = now - times[i];
            for (&slot, v) in self.layouts[*layout].1.iter().zip(&record.values) {
                sums[slot] += v * new;
            }
            times[i] = *now;
        }
        *through = self.unfolded.len();
        sums.clone()
    }

    /// `stats` with the replayed scalars added to those of the same name and
    /// the others appended in name order, except those whose name starts
    /// with one of `skip` (what a component is, such as `units.`, or what its
    /// own clock accrues). Distributions are not additive and are left out.
    pub fn merge_into(&self, stats: Stats, skip: &[&str]) -> Stats {
        if self.records.is_empty() {
            return stats;
        }
        let sums = self.sums();
        let named = self
            .names
            .iter()
            .zip(&sums)
            .map(|((name, unit, description), sum)| (name.as_str(), *unit, *description, *sum));
        stats.plus_scalars(named, skip)
    }
}

impl Stats {
    /// These statistics with `extra` scalars (name, unit, description, value)
    /// added to those of the same name and the others appended in name
    /// order, except those whose name starts with one of `skip`.
    pub fn plus_scalars<'a>(
        mut self,
        extra: impl Iterator<Item = (&'a str, Unit, &'static str, u64)>,
        skip: &[&str],
    ) -> Stats {
        let mut extra: std::collections::BTreeMap<&str, (Unit, &'static str, u64)> = extra
            .filter(|(name, ..)| !skip.iter().any(|p| name.starts_with(p)))
            .map(|(name, unit, description, value)| (name, (unit, description, value)))
            .collect();
        for stat in &mut self.0 {
            if let (StatValue::Scalar(v), Some((_, _, add))) = (&mut stat.value, extra.remove(stat.name.as_str())) {
                *v += add;
            }
        }
        for (name, (unit, description, value)) in extra {
            self.0.push(Stat { name: name.to_string(), unit, description, value: StatValue::Scalar(value) });
        }
        self
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
        let recorded = std::sync::Arc::new(
            Recorder::default()
                .record(&Stats::new().count("ops", "", 3).count("units.x", "", 1).bytes("bytes", "", 10)),
        );
        let mut r = Replayed::default();
        r.add(&recorded, 1);
        r.add(&recorded, 1);
        let merged = r.merge_into(Stats::new().count("ops", "", 1).count("units.x", "", 1), &["units."]);
        assert_eq!(merged.scalar_value("ops"), Some(7));
        assert_eq!(merged.scalar_value("units.x"), Some(1));
        assert_eq!(merged.scalar_value("bytes"), Some(20));
    }

    #[test]
    fn replayed_sums_stay_right_when_read_between_replays() {
        let mut recorder = Recorder::default();
        let a = std::sync::Arc::new(recorder.record(&Stats::new().count("ops", "", 3)));
        let b = std::sync::Arc::new(recorder.record(&Stats::new().count("ops", "", 100).bytes("bytes", "", 7)));
        let c = std::sync::Arc::new(recorder.record(&Stats::new().count("ops", "", 1000)));
        assert!(std::sync::Arc::ptr_eq(&a.names, &c.names), "records of the same names share them");
        let mut r = Replayed::default();
        let sum = |r: &Replayed, name: &str| r.scalar_sums().find(|(n, _)| *n == name).map(|(_, v)| v);
        r.add(&a, 1);
        assert_eq!(sum(&r, "ops"), Some(3));
        r.add(&a, 1);
        r.add(&b, 1);
        r.add(&a, 1);
        assert_eq!(sum(&r, "ops"), Some(109));
        assert_eq!(sum(&r, "ops"), Some(109), "reading twice adds nothing");
        r.add(&b, 1);
        assert_eq!(sum(&r, "ops"), Some(209));
        r.add(&a, 1);
        assert_eq!(sum(&r, "ops"), Some(212));
        assert_eq!(sum(&r, "bytes"), Some(14));
        r.add(&c, 1);
        assert_eq!(sum(&r, "ops"), Some(1212));
    }
}
