//! Memory controllers.

mod channels;

pub use channels::{ChannelMemory, ChannelMemoryConfig, Refresh};
