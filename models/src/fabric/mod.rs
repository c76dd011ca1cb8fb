//! Links between devices and hosts, and the routes transfers take over them.

mod link;
mod routes;

pub use link::{Link, LinkConfig};
pub use routes::{Endpoint, Route, Routes, RoutesBuilder};
