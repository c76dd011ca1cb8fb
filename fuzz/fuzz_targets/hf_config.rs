//! A Hugging Face `config.json`, imported as a model config.
#![no_main]
#[path = "../readers.rs"]
#[allow(dead_code)] // Each target calls one reader.
mod readers;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| readers::hf_config(bytes));
