//! The host's Arm CPU cluster.

mod cluster;

pub use cluster::{CacheLevel, CpuCluster, CpuConfig, HostTask, Served};
