//! A binary program image, decoded; what decodes must encode back the same.
#![no_main]
#[path = "../readers.rs"]
#[allow(dead_code)] // Each target calls one reader.
mod readers;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| readers::program_image(bytes));
