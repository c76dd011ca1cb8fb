//! A Chakra execution trace, `.et` protobuf or JSON, imported as one rank
#![no_main]
#[path = "../readers.rs"]
#[allow(dead_code)] // Each target calls one reader.
mod readers;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| readers::chakra(bytes));
