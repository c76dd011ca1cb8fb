//! Every input of the fuzz corpora (`fuzz/seeds`, what the fuzzers kept in
//! `fuzz/corpus`, and each crash they found in `fuzz/regressions`), read by
//! the same readers the fuzz targets call: none may panic, so a crash once
//! fixed stays fixed, on the stable toolchain and without libFuzzer.

#[path = "../../fuzz/readers.rs"]
mod readers;

use std::path::Path;

#[test]
fn every_input_of_the_fuzz_corpora_is_read_without_a_panic() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    for (target, read) in readers::READERS {
        let mut inputs = 0;
        for set in ["seeds", "corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(fuzz.join(set).join(target)) else { continue };
            for entry in entries {
                let path = entry.unwrap().path();
                let bytes = std::fs::read(&path).unwrap();
                let read_it = std::panic::catch_unwind(|| read(&bytes));
                assert!(read_it.is_ok(), "{target} panics on {}", path.display());
                inputs += 1;
            }
        }
        assert!(inputs > 0, "no seed inputs for {target} in fuzz/seeds/{target}");
    }
}
