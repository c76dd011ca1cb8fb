//! Memory controllers: the fast channel model the end-to-end runs use by
//! default, the detailed HBM controller, and the address mapping both share.

mod channels;
mod hbm;
mod mapping;

pub use channels::{ChannelMemory, ChannelMemoryConfig, NOT_REPLAYED, Refresh};
pub use hbm::{Hbm, HbmConfig};
pub use mapping::{AddressMapping, Coord, Field, Organization, Resolved};
