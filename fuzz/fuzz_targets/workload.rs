//! A workload: parsed, validated, then checked on a system as `run` would.
#![no_main]
#[path = "../readers.rs"]
#[allow(dead_code)] // Each target calls one reader.
mod readers;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| readers::workload(bytes));
