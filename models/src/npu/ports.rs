//! A core's scratchpad ports as a bandwidth server that fills gaps: a
//! reservation takes the earliest spare capacity from its start, whether or
//! not a reservation made earlier lies later in time. A matrix multiply
//! reserves its operand traffic from when it will start, possibly ahead of
//! now; a peer's write arriving meanwhile still uses the cycles before it,
//! as the banks serve whichever requests are there.

use std::collections::VecDeque;

/// Cycles per slot of the calendar: fine enough that a transfer of a few
/// hundred bytes is not rounded far, coarse enough to stay short.
const SLOT: u64 = 16;

#[derive(Clone, Debug)]
pub struct Ports {
    /// Bytes the ports move per cycle.
    rate: u64,
    /// The slot `spare[0]` stands for.
    first: u64,
    /// Per slot from `first`: bytes not yet reserved.
    spare: VecDeque<u64>,
}

impl Ports {
    pub fn new(rate: u64) -> Ports {
        Ports { rate: rate.max(1), first: 0, spare: VecDeque::new() }
    }

    /// Reserve `bytes` from cycle `from` on (no earlier than `now`, which
    /// never goes back: slots before it are forgotten); returns the cycle
    /// by which they are through.
    pub fn reserve(&mut self, now: u64, from: u64, bytes: u64) -> u64 {
        let full = self.rate * SLOT;
        while self.first < now / SLOT {
            self.spare.pop_front();
            self.first += 1;
        }
        if bytes == 0 {
            return from;
        }
        let mut slot = (from / SLOT).max(self.first);
        let mut left = bytes;
        loop {
            let i = (slot - self.first) as usize;
            while self.spare.len() <= i {
                self.spare.push_back(full);
            }
            // The slot `from` falls in offers only its cycles from `from` on.
            let reach = if slot == from / SLOT { self.rate * (SLOT - from % SLOT) } else { full };
            let take = left.min(self.spare[i]).min(reach);
            self.spare[i] -= take;
            left -= take;
            if left == 0 {
                // Through at the end of what this slot has served so far.
                let served = full - self.spare[i];
                let end = slot * SLOT + served.div_ceil(self.rate);
                return end.max(from + bytes.div_ceil(self.rate));
            }
            slot += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_to_back_reservations_queue_and_an_early_one_fills_the_gap_before_a_late_one() {
        let mut p = Ports::new(128);
        // 128 B/cycle: 12,800 B take 100 cycles.
        assert_eq!(p.reserve(0, 0, 12_800), 100);
        assert_eq!(p.reserve(0, 0, 12_800), 200);
        // A reservation far ahead, then one now: the one now is not held behind it.
        let mut p = Ports::new(128);
        assert_eq!(p.reserve(0, 1_000, 12_800), 1_100);
        assert_eq!(p.reserve(0, 0, 12_800), 100);
        // Capacity is conserved: a third that overlaps the first waits for it
        // (to within a slot: a slot's spare bytes are not placed in time).
        let third = p.reserve(0, 1_000, 12_800);
        assert!((1_200 - SLOT..=1_200).contains(&third), "{third}");
    }
}
