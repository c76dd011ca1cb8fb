//! # npusim-tests: end-to-end tests across crates
//!
//! The tests live in `tests/`; this library holds what they share: running
//! the command line in-process, scratch directories, and small workloads.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use workloads::lengths::Length;

/// What a command-line run returned.
#[derive(Debug)]
pub struct Output {
    pub status: u8,
    pub stdout: String,
    pub stderr: String,
}

/// Run `npusim ARGS...` in-process.
pub fn npusim(args: &[&str]) -> Output {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let argv = std::iter::once("npusim").chain(args.iter().copied());
    let status = npusim::run(argv, &mut out, &mut err);
    Output { status, stdout: String::from_utf8_lossy(&out).into(), stderr: String::from_utf8_lossy(&err).into() }
}

/// Runs `npusim ARGS...` and checks that it refuses the input: exit status
/// 2, and a message that contains each of `expected`.
pub fn refused(args: &[&str], expected: &[&str]) {
    let out = npusim(args);
    assert_eq!(out.status, 2, "{args:?} exited {}: {}", out.status, out.stderr);
    for e in expected {
        assert!(out.stderr.contains(e), "{args:?}: `{e}` missing from: {}", out.stderr);
    }
}

/// A fresh, empty directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("npusim-test-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the temporary directory is writable");
    dir
}

/// Write `text` to `name` in a fresh scratch directory; returns the path as a string.
pub fn file(name: &str, text: &str) -> String {
    let path = scratch(name).join(name);
    std::fs::write(&path, text).expect("the temporary directory is writable");
    path.to_string_lossy().into_owned()
}

/// A shipped hardware preset.
pub fn hardware(name: &str) -> models::spec::SystemSpec {
    models::presets::load_preset(name).expect("shipped presets load")
}

/// The default A.X K1 decode workload, cut to `tokens` output tokens.
pub fn axk1_decode(tokens: u32) -> workloads::Workload {
    let mut w = workloads::workload_preset("axk1-decode").expect("shipped workloads load");
    w.spec.scenario.output_tokens = Length::Fixed(tokens);
    w
}

/// Mean decode step time of a run.
pub fn mean_step(r: &workloads::RunResult) -> f64 {
    r.steps.iter().map(|s| (s.end - s.start).as_secs_f64()).sum::<f64>() / r.steps.len() as f64
}
