//! A request trace CSV, in npusim's or the Azure trace's columns.
#![no_main]
#[path = "../readers.rs"]
#[allow(dead_code)] // Each target calls one reader.
mod readers;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| readers::request_csv(bytes));
