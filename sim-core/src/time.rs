//! Simulated time and clock domains.
//!
//! Global time is an integer count of picoseconds ([`Time`]). Work inside a
//! component is counted in [`Cycles`] of that component's clock; the only way
//! between the two is a [`Clock`], so a cycle count can never be mistaken for
//! picoseconds.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, AddAssign, Sub};

const PS_PER_S: u128 = 1_000_000_000_000;

/// A point in, or a span of, simulated time, counted in picoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Time(u64);

impl Time {
    pub const ZERO: Time = Time(0);
    /// The end of simulated time; a run limit of `Time::MAX` means "no limit".
    pub const MAX: Time = Time(u64::MAX);

    pub const fn from_ps(ps: u64) -> Time {
        Time(ps)
    }
    pub const fn from_ns(ns: u64) -> Time {
        Time(ns * 1_000)
    }
    pub const fn from_us(us: u64) -> Time {
        Time(us * 1_000_000)
    }
    pub const fn from_ms(ms: u64) -> Time {
        Time(ms * 1_000_000_000)
    }
    pub const fn as_ps(self) -> u64 {
        self.0
    }
    /// Seconds, for reporting only: simulation arithmetic stays in integers.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 * 1e-12
    }
    pub fn as_ns_f64(self) -> f64 {
        self.0 as f64 * 1e-3
    }
    pub fn saturating_add(self, other: Time) -> Time {
        Time(self.0.saturating_add(other.0))
    }
    pub fn saturating_sub(self, other: Time) -> Time {
        Time(self.0.saturating_sub(other.0))
    }
    /// Time to move `amount` units at `per_second` units per second, rounded up
    /// to the next picosecond so that no transfer finishes early.
    pub fn for_rate(amount: u64, per_second: u64) -> Time {
        assert!(per_second > 0, "a rate of zero never finishes");
        let ps = (amount as u128 * PS_PER_S).div_ceil(per_second as u128);
        Time(u64::try_from(ps).unwrap_or(u64::MAX))
    }
}

impl Add for Time {
    type Output = Time;
    fn add(self, rhs: Time) -> Time {
        Time(self.0.checked_add(rhs.0).expect("simulated time overflowed u64 picoseconds"))
    }
}

impl AddAssign for Time {
    fn add_assign(&mut self, rhs: Time) {
        *self = *self + rhs;
    }
}

impl Sub for Time {
    type Output = Time;
    fn sub(self, rhs: Time) -> Time {
        Time(self.0.checked_sub(rhs.0).expect("subtracted a later time from an earlier one"))
    }
}

impl std::iter::Sum for Time {
    fn sum<I: Iterator<Item = Time>>(iter: I) -> Time {
        iter.fold(Time::ZERO, Add::add)
    }
}

impl fmt::Display for Time {
    /// Prints with the largest unit that keeps the value at or above one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ps = self.0 as f64;
        let (value, unit) = if self.0 >= 1_000_000_000_000 {
            (ps * 1e-12, "s")
        } else if self.0 >= 1_000_000_000 {
            (ps * 1e-9, "ms")
        } else if self.0 >= 1_000_000 {
            (ps * 1e-6, "us")
        } else if self.0 >= 1_000 {
            (ps * 1e-3, "ns")
        } else {
            (ps, "ps")
        };
        write!(f, "{value:.3} {unit}")
    }
}

/// A fixed rate of work (bytes, bits, operations per second), precomputed so
/// that the time for `n` units is a multiplication rather than a division.
/// Times are rounded up, never down: at most one picosecond plus `n / 2^32`
/// picoseconds above the exact value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rate {
    ps_per_unit_q32: u128,
}

impl Rate {
    /// `per_second` units per second; `None` for zero.
    pub fn per_second(per_second: u64) -> Option<Rate> {
        if per_second == 0 {
            return None;
        }
        Some(Rate { ps_per_unit_q32: (PS_PER_S << 32).div_ceil(per_second as u128) })
    }

    pub fn time_for(self, units: u64) -> Time {
        let ps = (units as u128 * self.ps_per_unit_q32 + (1 << 32) - 1) >> 32;
        Time(u64::try_from(ps).unwrap_or(u64::MAX))
    }
}

/// A number of cycles of some clock. Meaningless without its [`Clock`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cycles(pub u64);

impl Add for Cycles {
    type Output = Cycles;
    fn add(self, rhs: Cycles) -> Cycles {
        Cycles(self.0 + rhs.0)
    }
}

impl AddAssign for Cycles {
    fn add_assign(&mut self, rhs: Cycles) {
        self.0 += rhs.0;
    }
}

/// A clock domain: a frequency in whole hertz.
///
/// Cycle `k` of a clock starts at `ceil(k * 1e12 / hz)` picoseconds. Edges are
/// computed from the absolute cycle count, so a clock whose period is not a
/// whole number of picoseconds never drifts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Clock {
    hz: u64,
}

impl Clock {
    /// `None` for a zero frequency.
    pub const fn new(hz: u64) -> Option<Clock> {
        if hz == 0 { None } else { Some(Clock { hz }) }
    }
    pub const fn hz(self) -> u64 {
        self.hz
    }
    /// The time `cycles` take, rounded up to a whole picosecond.
    pub fn duration(self, cycles: Cycles) -> Time {
        Time::for_rate(cycles.0, self.hz)
    }
    /// Whole cycles completed within `time` (rounded down).
    pub fn cycles_in(self, time: Time) -> Cycles {
        Cycles(((time.0 as u128 * self.hz as u128) / PS_PER_S) as u64)
    }
    /// The first cycle whose edge is at or after `time`: the smallest `c`
    /// with `duration(c) >= time`, so that `cycles_covering(duration(c)) == c`.
    pub fn cycles_covering(self, time: Time) -> Cycles {
        if time.0 == 0 {
            return Cycles(0);
        }
        // duration(c) = ceil(c·10¹²/hz) >= t  <=>  c·10¹² > (t − 1)·hz.
        Cycles(((time.0 as u128 - 1) * self.hz as u128 / PS_PER_S) as u64 + 1)
    }
    /// The first clock edge at or after `time`.
    pub fn next_edge(self, time: Time) -> Time {
        self.duration(self.cycles_covering(time))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_gigahertz_cycle_is_a_nanosecond() {
        let clock = Clock::new(1_000_000_000).unwrap();
        assert_eq!(clock.duration(Cycles(7)), Time::from_ns(7));
        assert_eq!(clock.cycles_in(Time::from_ns(7)), Cycles(7));
    }

    #[test]
    fn fractional_periods_do_not_drift() {
        // 3 GHz: period 333.33 ps. A million cycles is exactly 333,333,334 ps
        // rounded up, not a million rounded periods.
        let clock = Clock::new(3_000_000_000).unwrap();
        assert_eq!(clock.duration(Cycles(1_000_000)).as_ps(), 333_333_334);
        assert_eq!(clock.duration(Cycles(3)).as_ps(), 1_000);
    }

    #[test]
    fn next_edge_is_at_or_after() {
        let clock = Clock::new(3_000_000_000).unwrap();
        assert_eq!(clock.next_edge(Time::from_ps(1_000)), Time::from_ps(1_000));
        assert_eq!(clock.next_edge(Time::from_ps(1_001)).as_ps(), 1_334);
        for ps in 0..2_000 {
            let t = Time::from_ps(ps);
            let edge = clock.next_edge(t);
            assert!(edge >= t);
            assert!(edge.as_ps() - ps < 334);
        }
    }

    #[test]
    fn edges_and_cycle_counts_agree() {
        for hz in [1_907_300_000u64, 3_000_000_000, 1_000_000_000, 976_562_500, 1_830_000_000] {
            let clock = Clock::new(hz).unwrap();
            for c in 0..20_000u64 {
                let edge = clock.duration(Cycles(c));
                assert_eq!(clock.cycles_covering(edge), Cycles(c), "{hz} Hz, cycle {c}");
                assert_eq!(clock.cycles_in(edge), Cycles(c), "{hz} Hz, cycle {c}");
                assert_eq!(clock.next_edge(edge), edge);
                if c > 0 {
                    // Just after an edge, the next edge is the following cycle's.
                    assert_eq!(clock.cycles_covering(edge + Time::from_ps(1)), Cycles(c + 1));
                }
            }
        }
    }

    #[test]
    fn rates_round_up() {
        assert_eq!(Time::for_rate(1, 3), Time::from_ps(333_333_333_334));
        assert_eq!(Time::for_rate(0, 3), Time::ZERO);
    }

    #[test]
    fn rates_round_up_within_a_picosecond() {
        for per_second in [1u64, 3, 1_000_000_000, 37_500_000_000, 1_200_000_000_000] {
            let rate = Rate::per_second(per_second).unwrap();
            for units in [0u64, 1, 7, 4096, 1 << 20, 123_456_789].into_iter().filter(|&u| u / per_second < 1_000_000) {
                let exact = Time::for_rate(units, per_second).as_ps();
                let fast = rate.time_for(units).as_ps();
                assert!(
                    fast >= exact && fast <= exact + 1 + (units >> 32),
                    "{units} at {per_second}/s: {fast} vs {exact}"
                );
            }
        }
        assert!(Rate::per_second(0).is_none());
    }

    #[test]
    fn zero_hertz_is_refused() {
        assert!(Clock::new(0).is_none());
    }
}
