//! NPU assembly: parsed, then checked against a chiplet's scratchpad and cores.
#![no_main]
#[path = "../readers.rs"]
#[allow(dead_code)] // Each target calls one reader.
mod readers;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| readers::assembler(bytes));
