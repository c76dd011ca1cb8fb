//! models
pub mod cpu;
pub mod energy;
pub mod fabric;
pub mod input;
pub mod machine;
pub mod memory;
pub mod msg;
pub mod npu;
pub mod presets;
pub mod spec;
pub mod units;
