//! A memory trace, one request a line.
#![no_main]
#[path = "../readers.rs"]
#[allow(dead_code)] // Each target calls one reader.
mod readers;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| readers::memory_trace(bytes));
