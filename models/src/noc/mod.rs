//! On-chip networks: topologies with their routing ([`topology`]); the
//! cycle-stepped router network ([`network`]) that microbenchmarks drive
//! with synthetic traffic ([`traffic`]); and the transaction-level network
//! ([`transactions`]) that carries a chiplet's traffic in end-to-end runs,
//! agreeing with the cycle-level one at zero load.

pub mod network;
pub mod topology;
pub mod traffic;
pub mod transactions;

pub use network::{DieToDie, Network, NetworkConfig, NetworkFigures, Traffic, Window};
pub use topology::{Port, Topology, TopologyKind};
pub use traffic::{Bernoulli, Pattern};
pub use transactions::{Attachment, LinkLoad, TransactionNetwork, TransactionNetworkConfig};
