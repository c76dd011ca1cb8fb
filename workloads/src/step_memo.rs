//! Step replay (`simulation.replay_steps`): a long serving run repeats step
//! shapes (so many decoders with about so much context, so many prompt
//! tokens), so each distinct shape is simulated once and later steps of
//! that shape take its device time and statistics.
//!
//! The runtime pauses the engine at three points of a step: when the step
//! is planned (the driver says whether its shape was seen), when it is
//! launched, and when its logits are in (the driver snapshots every
//! component's statistics at both and keeps the difference). A replayed
//! step still runs its host work on the CPU model; only the devices' part,
//! from launch to logits, is replayed.

use crate::build::RequestStep;
use sim_core::{ComponentStats, Stat, StatValue, Time, Unit};
use std::collections::HashMap;

/// What decides a step's device time, sizes bucketed (see [`bucket_to`]).
///
/// A decode step is keyed by its decoders and their context in all, each
/// to within a quarter of its power of two (a decode step's time grows
/// slowly with both: it mostly streams weights). A step with prompt chunks
/// is keyed by its tokens in all, decoders' and chunks' together (to an
/// eighth), the chunks' attention (to a quarter) and roughly their number:
/// a prompt's tokens dominate such a step (the decoders' attention over
/// their cache is a fraction of a per cent of it), and a few chunks cost
/// about what their tokens and attention in all cost. Left out: which
/// chunks finish their prompt (a few rows of the LM head).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StepShape {
    Decode {
        /// Decoding requests and the tokens each computes (1 + drafts).
        decoders: u32,
        decode_tokens: u32,
        /// Their context in all.
        context: u32,
    },
    Prompts {
        /// Tokens computed, decoders' and chunks' together.
        tokens: u32,
        decode_tokens: u32,
        /// Chunks: 1, 2 to 3, 4 to 7, ...
        chunks: u32,
        /// Query-key pairs of the chunks' attention: each token sees the
        /// cache before the chunk and the chunk's tokens up to itself.
        pairs: u32,
    },
}

/// `x` to within 1/2^`bits` of its power of two (exact below 2^(bits+1)):
/// with 3 bits, buckets 6 to 12 % wide.
pub fn bucket_to(x: u64, bits: u32) -> u32 {
    if x < 1 << (bits + 1) {
        return x as u32;
    }
    let power = 63 - x.leading_zeros();
    let fraction = (x >> (power - bits)) & ((1 << bits) - 1);
    (power << bits | fraction as u32) + (1 << (bits + 1))
}

/// `x` to within 1/8 of its power of two: buckets 6 to 12 % wide (exact below 16).
pub fn bucket(x: u64) -> u32 {
    bucket_to(x, 3)
}

impl StepShape {
    pub fn of(requests: &[RequestStep]) -> StepShape {
        let decoding = |r: &&RequestStep| r.cached > 0 && r.new_tokens == r.logits;
        let decoders: Vec<&RequestStep> = requests.iter().filter(decoding).collect();
        let chunks: Vec<&RequestStep> = requests.iter().filter(|r| !decoding(r)).collect();
        let decode_tokens = decoders.first().map_or(0, |r| r.new_tokens);
        if chunks.is_empty() {
            return StepShape::Decode {
                decoders: bucket_to(decoders.len() as u64, 2),
                decode_tokens,
                context: bucket_to(decoders.iter().map(|r| r.cached as u64).sum(), 2),
            };
        }
        let pairs: u64 =
            chunks.iter().map(|r| r.new_tokens as u64 * (r.cached as u64 + r.new_tokens.div_ceil(2) as u64)).sum();
        StepShape::Prompts {
            tokens: bucket(requests.iter().map(|r| r.new_tokens as u64).sum()),
            decode_tokens,
            chunks: bucket_to(chunks.len() as u64, 0),
            pairs: bucket_to(pairs, 2),
        }
    }
}

/// Where the runtime paused the engine for the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pause {
    /// A step of this shape is planned: replay it or simulate it?
    Planned(StepShape),
    /// The step being recorded was launched.
    Launched,
    /// Its logits are in, `device_time` after launch.
    LogitsIn { device_time: Time },
}

/// A simulated step, for replay.
#[derive(Debug)]
struct Recorded {
    device_time: Time,
    /// The lane that ran it.
    lane: usize,
    /// What the statistics grew by: per component (by index), its scalars
    /// as (slot in that component's names, growth); components that did
    /// not change are absent.
    grown: Vec<(usize, Vec<(u32, u64)>)>,
    /// Per lane, how often the step was replayed there.
    replays: Vec<u64>,
}

/// One component's statistic names, by slot, as recordings met them.
#[derive(Debug, Default)]
struct Names {
    by_slot: Vec<(String, Unit, &'static str)>,
    slots: HashMap<String, u32>,
}

impl Names {
    fn slot(&mut self, stat: &Stat) -> u32 {
        if let Some(&s) = self.slots.get(&stat.name) {
            return s;
        }
        self.by_slot.push((stat.name.clone(), stat.unit, stat.description));
        self.slots.insert(stat.name.clone(), self.by_slot.len() as u32 - 1);
        self.by_slot.len() as u32 - 1
    }
}

/// The lanes that step on their own (independent data-parallel replicas,
/// or every device as one), by the paths of their chiplets' components.
/// A step recorded on one lane and replayed on another books its
/// statistics to the other's counterparts: the same place in the lane,
/// the same suffix of the path.
#[derive(Debug, Default)]
pub struct Lanes {
    /// Per lane, its chiplets' path prefixes (`node0.card2.chiplet0`).
    pub chiplets: Vec<Vec<String>>,
}

impl Lanes {
    /// The card of a chiplet's prefix: `node0.card2`.
    fn card(chiplet: &str) -> &str {
        chiplet.rsplit_once('.').map_or(chiplet, |(card, _)| card)
    }

    /// The lane whose chiplet holds `path`, or whose chiplets fill the card that does.
    fn owner(&self, path: &str) -> Option<usize> {
        let under =
            |prefix: &str| path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('.'));
        if let Some(l) = self.chiplets.iter().position(|c| c.iter().any(|p| under(p))) {
            return Some(l);
        }
        // A card's own components (its links) belong to a lane only if no other lane has a chiplet on it.
        let holders: Vec<usize> =
            (0..self.chiplets.len()).filter(|&l| self.chiplets[l].iter().any(|p| under(Lanes::card(p)))).collect();
        (holders.len() == 1).then(|| holders[0])
    }

    /// `path`, owned by lane `from`, as the counterpart in lane `to`.
    fn counterpart(&self, path: &str, from: usize, to: usize) -> Option<String> {
        for (a, b) in self.chiplets[from].iter().zip(&self.chiplets[to]) {
            for (a, b) in [(a.as_str(), b.as_str()), (Lanes::card(a), Lanes::card(b))] {
                if let Some(rest) = path.strip_prefix(a)
                    && (rest.is_empty() || rest.starts_with('.'))
                {
                    return Some(format!("{b}{rest}"));
                }
            }
        }
        None
    }
}

/// The driver's memory of step shapes and how often each was replayed.
/// A replay costs a count; the replayed statistics are summed once, at the end.
#[derive(Debug, Default)]
pub struct StepMemo {
    lanes: Lanes,
    recorded: HashMap<StepShape, usize>,
    records: Vec<Recorded>,
    /// Per component (by index), the names its recordings used.
    names: Vec<Names>,
    /// Per component (by index), the lane that owns it (`None`: shared).
    owners: Vec<Option<usize>>,
    /// Per lane, the shape it is recording and the statistics at its launch.
    recording: HashMap<usize, (StepShape, Vec<ComponentStats>)>,
    pub hits: u64,
    pub misses: u64,
}

/// Components whose work a replayed step still simulates (the host's).
const SIMULATED_ANYWAY: [&str; 2] = ["host.runtime", "cpu"];

impl StepMemo {
    pub fn new(lanes: Lanes) -> StepMemo {
        StepMemo { lanes, ..StepMemo::default() }
    }

    /// The device time of a step of `shape` on `lane` if one was recorded,
    /// and its statistics booked as replayed; `None` to simulate it (and record it).
    pub fn replay(&mut self, lane: usize, shape: StepShape) -> Option<Time> {
        if let Some(&i) = self.recorded.get(&shape) {
            self.hits += 1;
            let r = &mut self.records[i];
            r.replays.resize(r.replays.len().max(lane + 1), 0);
            r.replays[lane] += 1;
            return Some(r.device_time);
        }
        self.misses += 1;
        self.recording.insert(lane, (shape, Vec::new()));
        None
    }

    pub fn launched(&mut self, lane: usize, stats: Vec<ComponentStats>) {
        if let Some((_, at_launch)) = self.recording.get_mut(&lane) {
            *at_launch = stats;
        }
    }

    /// The step `lane` was recording is done: keep what its own components
    /// and the shared ones grew by (other lanes' steps in flight meanwhile
    /// are theirs to record).
    pub fn logits_in(&mut self, lane: usize, device_time: Time, stats: Vec<ComponentStats>) {
        let Some((shape, at_launch)) = self.recording.remove(&lane) else { return };
        if self.names.len() < stats.len() {
            self.names.resize_with(stats.len(), Names::default);
            self.owners = stats.iter().map(|c| self.lanes.owner(&c.path)).collect();
        }
        let mut grown = Vec::new();
        for (c, (now, before)) in stats.iter().zip(&at_launch).enumerate() {
            if SIMULATED_ANYWAY.contains(&now.kind) || self.owners[c].is_some_and(|o| o != lane) {
                continue;
            }
            let names = &mut self.names[c];
            let g: Vec<(u32, u64)> = now
                .stats
                .since(&before.stats)
                .iter()
                .filter_map(|stat| match stat.value {
                    StatValue::Scalar(v) => Some((names.slot(stat), v)),
                    StatValue::Distribution(_) => None,
                })
                .collect();
            if !g.is_empty() {
                grown.push((c, g));
            }
        }
        if self.recorded.contains_key(&shape) {
            return;
        }
        self.recorded.insert(shape, self.records.len());
        self.records.push(Recorded { device_time, lane, grown, replays: Vec::new() });
    }

    /// `stats` (every component's, at the end) with the replayed steps'
    /// growth added, each to the lane it was replayed on, but for what
    /// components are and what their clocks accrue through replayed steps
    /// anyway (memory refresh).
    pub fn add_replayed(&self, mut stats: Vec<ComponentStats>) -> Vec<ComponentStats> {
        let index: HashMap<&str, usize> = stats.iter().enumerate().map(|(i, c)| (c.path.as_str(), i)).collect();
        // Per (from lane, to lane), the counterpart of each component, found once.
        let mut maps: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
        let mut sums: Vec<HashMap<String, (Unit, &'static str, u64)>> = vec![HashMap::new(); stats.len()];
        for r in &self.records {
            for (to, &replays) in r.replays.iter().enumerate().filter(|(_, n)| **n > 0) {
                let map = maps.entry((r.lane, to)).or_insert_with(|| {
                    (0..stats.len())
                        .map(|c| {
                            if r.lane == to || self.owners.get(c).copied().flatten() != Some(r.lane) {
                                return c;
                            }
                            let there = self.lanes.counterpart(&stats[c].path, r.lane, to);
                            there.and_then(|p| index.get(p.as_str()).copied()).unwrap_or(c)
                        })
                        .collect()
                });
                for (c, grown) in &r.grown {
                    for &(slot, v) in grown {
                        let (name, unit, description) = &self.names[*c].by_slot[slot as usize];
                        let sum = sums[map[*c]].entry(name.clone()).or_insert((*unit, description, 0));
                        sum.2 += v * replays;
                    }
                }
            }
        }
        for (component, sums) in stats.iter_mut().zip(&sums) {
            if sums.values().all(|s| s.2 == 0) {
                continue;
            }
            let extra = sums.iter().map(|(name, &(unit, description, sum))| (name.as_str(), unit, description, sum));
            component.stats = std::mem::take(&mut component.stats).plus_scalars(extra, models::memory::NOT_REPLAYED);
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_an_eighth_of_a_power_of_two_wide_and_ordered() {
        assert_eq!(bucket(10), 10);
        assert_eq!(bucket_to(1000, 2), bucket_to(1023, 2));
        assert_ne!(bucket_to(1023, 2), bucket_to(1024, 2));
        assert_ne!(bucket(15), bucket(16));
        assert_eq!(bucket(2048), bucket(2048 + 255));
        assert_ne!(bucket(2048), bucket(2048 + 256));
        let mut last = 0;
        for x in 0..100_000u64 {
            assert!(bucket(x) >= last);
            last = bucket(x);
        }
    }

    #[test]
    fn shapes_ignore_order_and_small_context_changes() {
        let d = |cached| RequestStep { cached, new_tokens: 1, logits: 1, replica: None };
        let p = RequestStep { cached: 0, new_tokens: 700, logits: 1, replica: None };
        assert_eq!(StepShape::of(&[d(2000), p, d(2001)]), StepShape::of(&[p, d(2001), d(2002)]));
        assert_ne!(StepShape::of(&[d(2000), d(2001)]), StepShape::of(&[d(2000), d(2001), d(5)]));
        assert_ne!(StepShape::of(&[d(2000)]), StepShape::of(&[d(4000)]));
        // Prompt chunks count in all: two chunks against one of their size together.
        let q = RequestStep { cached: 0, new_tokens: 350, logits: 1, replica: None };
        assert_ne!(StepShape::of(&[d(2000), q, q]), StepShape::of(&[d(2000), p]));
        assert_eq!(StepShape::of(&[d(2000), p]), StepShape::of(&[d(2010), RequestStep { new_tokens: 690, ..p }]));
        assert_eq!(
            StepShape::of(&[d(2000), d(10), p]),
            StepShape::of(&[d(1000), RequestStep { new_tokens: 699, ..p }])
        );
        assert_ne!(StepShape::of(&[d(2000), p]), StepShape::of(&[d(2000), RequestStep { cached: 2000, ..p }]));
    }

    #[test]
    fn lanes_own_their_chiplets_and_whole_cards_and_map_a_path_to_its_counterpart() {
        // Lane 0 fills card 0; lanes 1 and 2 share card 1, a chiplet each.
        let lanes = Lanes {
            chiplets: vec![
                vec!["node0.card0.chiplet0".into(), "node0.card0.chiplet1".into()],
                vec!["node0.card1.chiplet0".into()],
                vec!["node0.card1.chiplet1".into()],
            ],
        };
        assert_eq!(lanes.owner("node0.card0.chiplet1.core3"), Some(0));
        assert_eq!(lanes.owner("node0.card0.link"), Some(0), "the card is lane 0's alone");
        assert_eq!(lanes.owner("node0.card1.chiplet1.hbm"), Some(2));
        assert_eq!(lanes.owner("node0.card1.link"), None, "two lanes share card 1");
        assert_eq!(lanes.owner("node0.card10.chiplet0"), None, "card10 is not card1");
        assert_eq!(lanes.owner("host.runtime"), None);
        assert_eq!(
            lanes.counterpart("node0.card1.chiplet0.core2", 1, 2).as_deref(),
            Some("node0.card1.chiplet1.core2")
        );
        assert_eq!(lanes.counterpart("node0.card0.chiplet0.hbm", 0, 1).as_deref(), Some("node0.card1.chiplet0.hbm"));
        assert_eq!(lanes.counterpart("node0.card0.link", 0, 1).as_deref(), Some("node0.card1.link"));
        assert_eq!(lanes.counterpart("host.runtime", 0, 1), None);
    }
}
