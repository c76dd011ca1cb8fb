//! The NPU: cores with their engines, the chiplet's sequencer, the command
//! lists it runs, and the memo that replays recurring commands.

mod commands;
mod core;
pub mod memo;
mod ports;
mod prepared;
mod sequencer;
mod timing;

pub use self::core::{Core, CoreConfig};
pub use commands::{Command, CommandKind, CommandList};
pub use memo::ComputeMemo;
pub use prepared::PreparedProgram;
pub use sequencer::{Sequencer, SequencerConfig};
pub use timing::{MatrixShape, StageTiming, VectorShape};
