//! # traces: trace formats in and out
//!
//! This crate will read and write the files npusim exchanges with other
//! tools: step traces (the op graph of one inference step,
//! [`workloads::graph::StepGraph`], as versioned JSON Lines), request-arrival
//! traces, and timelines in the Chrome trace-event format that Perfetto opens.
//! It holds no simulation logic. No format is implemented yet.
