//! # traces: trace formats in and out
//!
//! Reading and writing the files npusim exchanges with other tools. Today:
//! memory request traces ([`memory`]: `<cycle> <hex address> <R|W>` per line,
//! as DRAM simulators use), read lazily so traces of any length stream
//! through; step traces ([`step`]: the op graph of one inference step as
//! JSON Lines, versioned, documented in traces/README.md), which
//! `npusim trace gen` writes and `npusim trace replay` simulates; and the
//! import of MLCommons Chakra execution traces into step traces ([`chakra`]);
//! and request traces ([`requests`]: arrivals and lengths as CSV, npusim's
//! form or the Azure LLM inference trace's). Timelines will join them. This crate parses and
//! prints; it holds no simulation logic, and it reads from `BufRead`s the
//! caller opens.

pub mod chakra;
pub mod memory;
pub mod requests;
pub mod step;
