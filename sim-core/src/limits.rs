//! Limits on how far a simulation may go: events handled and simulated time
//! (per system), and wall-clock time (for the whole piece of work).
//!
//! A driver wraps its work in [`within`]; every [`System`](crate::System) run
//! on that thread checks the limits as it goes, and the first one to pass a
//! limit ends the work at once: `within` returns [`Exceeded`], with where the
//! run stood. The work is abandoned, not left half-done, so no caller has to
//! handle a partial result. Work handed to other threads takes the limits
//! along with [`carry`].
//!
//! ```
//! use sim_core::limits::{self, Limits};
//! use sim_core::{Component, Ctx, SystemBuilder, Time};
//!
//! struct Forever;
//! impl Component<()> for Forever {
//!     fn kind(&self) -> &'static str { "forever" }
//!     fn handle(&mut self, _: (), ctx: &mut Ctx<'_, ()>) { ctx.wake_me(Time::from_ns(1), ()); }
//! }
//!
//! let limits = Limits { max_events: Some(1_000), ..Limits::default() };
//! let stopped = limits::within(limits, || {
//!     let mut builder = SystemBuilder::new();
//!     let forever = builder.add("forever", Forever);
//!     builder.post(Time::ZERO, forever, ());
//!     builder.build().unwrap().run_to_end()
//! });
//! assert_eq!(stopped.unwrap_err().events, 1_000);
//! ```

use crate::Time;
use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

/// How far a simulation may go; `None` is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Events any one system may handle.
    pub max_events: Option<u64>,
    /// Simulated time any one system may reach.
    pub max_sim_time: Option<Time>,
    /// Wall-clock time the whole piece of work may take.
    pub max_wall: Option<Duration>,
}

impl Limits {
    pub fn is_none(&self) -> bool {
        *self == Limits::default()
    }
}

/// The limits in force on a thread, with the wall-clock deadline they fix.
#[derive(Clone, Copy, Debug)]
pub struct Active {
    limits: Limits,
    started: Instant,
    deadline: Option<Instant>,
}

/// Which limit a run passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Events(u64),
    SimTime(Time),
    Wall(Duration),
}

/// Where a run stood when it passed a limit.
#[derive(Clone, Debug, PartialEq)]
pub struct Exceeded {
    pub limit: Limit,
    /// Events the system had handled.
    pub events: u64,
    /// The system's simulated time.
    pub now: Time,
    /// Wall-clock time since the work began.
    pub wall: Duration,
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wall = self.wall.as_secs_f64();
        match self.limit {
            Limit::Events(n) => {
                write!(f, "a simulation reached its limit of {n} events, at {} simulated, after {wall:.3} s", self.now)
            }
            Limit::SimTime(t) => write!(
                f,
                "a simulation reached its limit of {t} of simulated time, after {} events and {wall:.3} s",
                self.events
            ),
            Limit::Wall(d) => {
                write!(f, "the work reached its limit of {:.3} s of wall time (at {wall:.3} s)", d.as_secs_f64())
            }
        }
    }
}

impl std::error::Error for Exceeded {}

thread_local! {
    static ACTIVE: Cell<Option<Active>> = const { Cell::new(None) };
}

/// Runs `work` under `limits`; the wall-clock limit counts from now.
pub fn within<R>(limits: Limits, work: impl FnOnce() -> R) -> Result<R, Exceeded> {
    let started = Instant::now();
    let active = Active { limits, started, deadline: limits.max_wall.map(|d| started + d) };
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| carry(Some(active), work)));
    match caught {
        Ok(result) => Ok(result),
        Err(payload) => match payload.downcast::<Exceeded>() {
            Ok(exceeded) => Err(*exceeded),
            Err(other) => std::panic::resume_unwind(other),
        },
    }
}

/// The limits in force on this thread, to hand to [`carry`] on another.
pub fn current() -> Option<Active> {
    ACTIVE.with(Cell::get)
}

/// Runs `work` on this thread under limits taken from another with
/// [`current`]; passing one unwinds to the [`within`] that set them.
pub fn carry<R>(active: Option<Active>, work: impl FnOnce() -> R) -> R {
    struct Restore(Option<Active>);
    impl Drop for Restore {
        fn drop(&mut self) {
            ACTIVE.with(|a| a.set(self.0));
        }
    }
    let _restore = Restore(ACTIVE.with(|a| a.replace(active)));
    work()
}

/// How often, in events, a system looks at the clock on the wall.
const WALL_CHECK_EVERY: u64 = 4096;

impl Active {
    /// Ends the work if a system that has handled `events`, the next at
    /// `next`, has passed a limit.
    #[inline]
    pub(crate) fn check(&self, events: u64, next: Time, now: Time) {
        let passed = if self.limits.max_events.is_some_and(|max| events >= max) {
            self.limits.max_events.map(Limit::Events)
        } else if self.limits.max_sim_time.is_some_and(|max| next > max) {
            self.limits.max_sim_time.map(Limit::SimTime)
        } else if events.is_multiple_of(WALL_CHECK_EVERY) && self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.limits.max_wall.map(Limit::Wall)
        } else {
            None
        };
        if let Some(limit) = passed {
            let exceeded = Exceeded { limit, events, now, wall: self.started.elapsed() };
            // Not a panic: resume_unwind skips the panic hook, so nothing is
            // printed; `within` catches it by its type.
            std::panic::resume_unwind(Box::new(exceeded));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Component, Ctx, SystemBuilder};

    /// Re-arms itself every nanosecond, for ever.
    struct Forever;
    impl Component<()> for Forever {
        fn kind(&self) -> &'static str {
            "forever"
        }
        fn handle(&mut self, _: (), ctx: &mut Ctx<'_, ()>) {
            ctx.wake_me(Time::from_ns(1), ());
        }
    }

    fn forever() {
        let mut builder = SystemBuilder::new();
        let id = builder.add("forever", Forever);
        builder.post(Time::ZERO, id, ());
        builder.build().unwrap().run_to_end();
    }

    #[test]
    fn simulated_time_stops_at_the_first_event_past_it() {
        let limits = Limits { max_sim_time: Some(Time::from_us(1)), ..Limits::default() };
        let e = within(limits, forever).unwrap_err();
        assert_eq!(e.limit, Limit::SimTime(Time::from_us(1)));
        // Events at 0, 1, ..., 1000 ns ran; the one at 1001 ns did not.
        assert_eq!((e.events, e.now), (1001, Time::from_ns(1000)));
        assert!(e.to_string().contains("limit of 1.000 us of simulated time"), "{e}");
    }

    #[test]
    fn wall_time_stops_an_endless_run() {
        let limits = Limits { max_wall: Some(Duration::from_millis(50)), ..Limits::default() };
        let e = within(limits, forever).unwrap_err();
        assert_eq!(e.limit, Limit::Wall(Duration::from_millis(50)));
        assert!(e.wall >= Duration::from_millis(50));
        assert_eq!(e.events % WALL_CHECK_EVERY, 0);
    }

    #[test]
    fn limits_end_with_their_work_and_travel_to_other_threads() {
        let limits = Limits { max_events: Some(10), ..Limits::default() };
        assert!(within(limits, forever).is_err());
        assert!(current().is_none(), "the limits outlived their work");
        let e = within(limits, || {
            let active = current();
            std::thread::scope(|s| s.spawn(move || carry(active, forever)).join()).unwrap_or_else(|p| {
                std::panic::resume_unwind(p);
            })
        })
        .unwrap_err();
        assert_eq!(e.limit, Limit::Events(10));
        // Other panics are not swallowed.
        let other = std::panic::catch_unwind(|| within(Limits::default(), || std::panic::resume_unwind(Box::new(7u8))));
        assert_eq!(*other.unwrap_err().downcast::<u8>().unwrap(), 7);
    }
}
