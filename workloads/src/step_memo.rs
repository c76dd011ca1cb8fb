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
use sim_core::{ComponentStats, Replayed, Stats, Time};
use std::collections::HashMap;
use std::sync::Arc;

/// What decides a step's device time, sizes bucketed (see [`bucket`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StepShape {
    /// Decoding requests and the tokens each computes (1 + drafts).
    decoders: u32,
    decode_tokens: u32,
    /// Their context in all, bucketed.
    context: u32,
    /// Each prompt chunk: (tokens, cached before it, whether it makes a token), bucketed and sorted.
    chunks: Vec<(u32, u32, u32)>,
}

/// `x` to within 1/32 of its power of two: buckets about 3 % wide (exact below 64).
pub fn bucket(x: u64) -> u32 {
    if x < 64 {
        return x as u32;
    }
    let power = 63 - x.leading_zeros();
    let fraction = (x >> (power - 5)) & 31;
    (power << 5 | fraction as u32) + 64
}

impl StepShape {
    pub fn of(requests: &[RequestStep]) -> StepShape {
        let decoding = |r: &&RequestStep| r.cached > 0 && r.new_tokens == r.logits;
        let decoders: Vec<&RequestStep> = requests.iter().filter(decoding).collect();
        let mut chunks: Vec<(u32, u32, u32)> = requests
            .iter()
            .filter(|r| !decoding(r))
            .map(|r| (bucket(r.new_tokens as u64), bucket(r.cached as u64), r.logits))
            .collect();
        chunks.sort_unstable();
        StepShape {
            decoders: decoders.len() as u32,
            decode_tokens: decoders.first().map_or(0, |r| r.new_tokens),
            context: bucket(decoders.iter().map(|r| r.cached as u64).sum()),
            chunks,
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
    /// Per component (by index), what its statistics grew by; empty for none.
    grown: Vec<Option<Arc<Stats>>>,
}

/// The driver's memory of step shapes and what replays added.
#[derive(Debug, Default)]
pub struct StepMemo {
    recorded: HashMap<StepShape, Recorded>,
    /// The shape being recorded, and the statistics at its launch.
    recording: Option<(StepShape, Vec<ComponentStats>)>,
    /// Per component: the recorded growth of every replayed step.
    replayed: Vec<Replayed>,
    pub hits: u64,
    pub misses: u64,
}

/// Components whose work a replayed step still simulates (the host's).
const SIMULATED_ANYWAY: [&str; 2] = ["host.runtime", "cpu"];

impl StepMemo {
    /// The device time of a step of `shape` if one was recorded, and its
    /// statistics booked as replayed; `None` to simulate it (and record it).
    pub fn replay(&mut self, shape: StepShape) -> Option<Time> {
        if let Some(r) = self.recorded.get(&shape) {
            self.hits += 1;
            if self.replayed.len() < r.grown.len() {
                self.replayed.resize_with(r.grown.len(), Replayed::default);
            }
            for (book, grown) in self.replayed.iter_mut().zip(&r.grown) {
                if let Some(g) = grown {
                    book.add(g);
                }
            }
            return Some(r.device_time);
        }
        self.misses += 1;
        self.recording = Some((shape, Vec::new()));
        None
    }

    pub fn launched(&mut self, stats: Vec<ComponentStats>) {
        if let Some((_, at_launch)) = self.recording.as_mut() {
            *at_launch = stats;
        }
    }

    pub fn logits_in(&mut self, device_time: Time, stats: Vec<ComponentStats>) {
        let Some((shape, at_launch)) = self.recording.take() else { return };
        let grown = stats
            .iter()
            .zip(&at_launch)
            .map(|(now, before)| {
                let g = now.stats.since(&before.stats);
                (!SIMULATED_ANYWAY.contains(&now.kind) && !g.is_empty()).then(|| Arc::new(g))
            })
            .collect();
        self.recorded.insert(shape, Recorded { device_time, grown });
    }

    /// `stats` (every component's, at the end) with the replayed steps' growth added.
    pub fn add_replayed(&self, mut stats: Vec<ComponentStats>) -> Vec<ComponentStats> {
        for (component, book) in stats.iter_mut().zip(&self.replayed) {
            component.stats = book.merge_into(std::mem::take(&mut component.stats), &["units."]);
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_about_three_percent_wide_and_ordered() {
        assert_eq!(bucket(10), 10);
        assert_eq!(bucket(2048), bucket(2048 + 63));
        assert_ne!(bucket(2048), bucket(2048 + 64));
        let mut last = 0;
        for x in 0..100_000u64 {
            assert!(bucket(x) >= last);
            last = bucket(x);
        }
    }

    #[test]
    fn shapes_ignore_order_and_small_context_changes() {
        let d = |cached| RequestStep { cached, new_tokens: 1, logits: 1 };
        let p = RequestStep { cached: 0, new_tokens: 700, logits: 1 };
        assert_eq!(StepShape::of(&[d(2000), p, d(2001)]), StepShape::of(&[p, d(2001), d(2002)]));
        assert_ne!(StepShape::of(&[d(2000), d(2001)]), StepShape::of(&[d(2000), d(2001), d(5)]));
        assert_ne!(StepShape::of(&[d(2000)]), StepShape::of(&[d(4000)]));
    }
}
