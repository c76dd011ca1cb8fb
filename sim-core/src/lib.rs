//! # sim-core: the deterministic discrete-event engine of npusim
//!
//! This crate knows nothing about NPUs, CPUs or transformers. It gives:
//!
//! - [`Time`]: integer picoseconds; [`Cycles`]: counts of a clock; [`Clock`]: the
//!   only bridge between them.
//! - [`Component`]: a struct that owns its state and handles messages addressed
//!   to it through a [`Ctx`], which lets it read the time and send messages.
//! - [`SystemBuilder`] wires components (reserve an id, hand it to senders, place
//!   the component) and freezes them into a [`System`] that runs.
//! - [`limits`]: how far a simulation may go (events, simulated and wall time).
//! - Statistics primitives ([`BusyTime`], [`Histogram`], [`Stats`]) that each
//!   component owns and hands over at the end of a run.
//!
//! ## Event order
//!
//! Events are handled in the total order (time, priority, insertion sequence):
//! at equal times the lower priority value runs first, then the event inserted
//! first. One set of inputs gives one order, bit for bit, on any machine.
//!
//! ```
//! use sim_core::{Component, Ctx, SystemBuilder, Time};
//!
//! /// Counts the ticks it is sent and re-arms itself ten times.
//! struct Ticker { ticks: u32 }
//!
//! impl Component<()> for Ticker {
//!     fn kind(&self) -> &'static str { "ticker" }
//!     fn handle(&mut self, _: (), ctx: &mut Ctx<'_, ()>) {
//!         self.ticks += 1;
//!         if self.ticks < 10 { ctx.wake_me(Time::from_ns(1), ()); }
//!     }
//! }
//!
//! let mut builder = SystemBuilder::new();
//! let ticker = builder.add("ticker", Ticker { ticks: 0 });
//! builder.post(Time::ZERO, ticker, ());
//! let mut system = builder.build().unwrap();
//! system.run_to_end();
//! assert_eq!(system.now(), Time::from_ns(9));
//! assert_eq!(system.get::<Ticker>(ticker).unwrap().ticks, 10);
//! ```

pub mod bench_system;
mod dataflow;
mod engine;
pub mod limits;
mod queue;
mod stats;
mod time;

pub use dataflow::Dataflow;
pub use engine::{BuildError, Component, ComponentId, ComponentStats, Ctx, RunOutcome, System, SystemBuilder};
pub use queue::{DEFAULT_PRIORITY, Priority};
pub use stats::{
    BusyTime, Histogram, Recorder, Recording, Replayed, ScalarNames, Stat, StatValue, Stats, Summary, Unit,
};
pub use time::{Clock, Cycles, Rate, Time};
