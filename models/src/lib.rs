//! # models: the hardware
//!
//! Everything about the machine and nothing about transformers:
//!
//! - [`spec`]: the hardware spec types (serde, TOML), the single source of
//!   truth for every parameter, with units ([`units`]) and semantic
//!   [`spec::validate`]ion; [`input`] loads TOML with errors that name file,
//!   line, column and field, and applies `base` presets.
//! - [`presets`]: the shipped specs of real products, each figure sourced.
//! - The component models on the event engine: NPU [`npu::Core`]s and the
//!   chiplet [`npu::Sequencer`] that runs command lists, the
//!   [`memory::ChannelMemory`] controller, [`fabric::Link`]s with [`fabric::Routes`],
//!   and the host's [`cpu::CpuCluster`]. Components talk only through [`msg::Msg`].
//! - [`machine::build`] assembles all of them from a [`spec::SystemSpec`].
//! - [`energy`]: components count actions; the energy model, built from the
//!   spec, turns counts into joules.
//!
//! ```
//! use models::{machine, msg::Msg, presets};
//! use sim_core::SystemBuilder;
//!
//! let spec = presets::load_preset("sovereign-node").unwrap();
//! let mut builder: SystemBuilder<Msg> = SystemBuilder::new();
//! let machine = machine::build(&spec, &mut builder);
//! assert_eq!(machine.devices.len(), 32); // 8 cards x 4 chiplets
//! ```

pub mod cpu;
pub mod energy;
pub mod fabric;
pub mod input;
pub mod machine;
pub mod memory;
pub mod msg;
pub mod noc;
pub mod npu;
pub mod parts;
pub mod presets;
pub mod spec;
pub mod units;
