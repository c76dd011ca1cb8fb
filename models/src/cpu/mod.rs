//! The host's Arm CPU cluster.

mod cluster;

pub use cluster::{CpuCluster, CpuConfig, HostTask};
