//! A hardware spec: parsed, resolved against its base preset, validated.
#![no_main]
#[path = "../readers.rs"]
#[allow(dead_code)] // Each target calls one reader.
mod readers;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| readers::hardware_spec(bytes));
