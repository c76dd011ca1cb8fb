//! # traces: trace formats in and out
//!
//! Reading and writing the files npusim exchanges with other tools. Today:
//! memory request traces ([`memory`]: `<cycle> <hex address> <R|W>` per line,
//! as DRAM simulators use), read lazily so traces of any length stream
//! through. Step traces and timelines will join them. This crate parses and
//! prints; it holds no simulation logic, and it reads from `BufRead`s the
//! caller opens.

pub mod memory;
