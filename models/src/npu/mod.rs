//! The NPU: cores with their engines, the chiplet's sequencer, and the
//! command lists it runs.

mod commands;
mod core;
mod prepared;
mod sequencer;
mod timing;

pub use self::core::{Core, CoreConfig};
pub use commands::{Command, CommandKind, CommandList};
pub use prepared::PreparedProgram;
pub use sequencer::{Sequencer, SequencerConfig};
pub use timing::{MatrixShape, StageTiming, VectorShape};
