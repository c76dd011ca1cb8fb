//! # npusim-tests: end-to-end tests across crates
//!
//! The tests live in `tests/`; this library holds what they share: running
//! the command line in-process, scratch directories, and small workloads.

use std::path::Path;
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

/// A fresh, empty directory for one test, removed when it is dropped.
#[derive(Debug)]
pub struct Scratch(tempfile::TempDir);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

/// A fresh, empty directory for one test, removed when it is dropped.
pub fn scratch(name: &str) -> Scratch {
    let dir = tempfile::Builder::new()
        .prefix(&format!("npusim-test-{name}-"))
        .tempdir()
        .expect("the temporary directory is writable");
    Scratch(dir)
}

/// A file written into its own scratch directory; both go when it is dropped.
/// It reads as its path (`&file` where a `&str` argument is expected).
#[derive(Debug)]
pub struct ScratchFile {
    _dir: Scratch,
    path: String,
}

impl std::ops::Deref for ScratchFile {
    type Target = str;
    fn deref(&self) -> &str {
        &self.path
    }
}

impl AsRef<Path> for ScratchFile {
    fn as_ref(&self) -> &Path {
        Path::new(&self.path)
    }
}

impl std::fmt::Display for ScratchFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.path)
    }
}

/// Write `text` to `name` in a fresh scratch directory.
pub fn file(name: &str, text: &str) -> ScratchFile {
    let dir = scratch(name);
    let path = dir.join(name);
    std::fs::write(&path, text).expect("the temporary directory is writable");
    ScratchFile { _dir: dir, path: path.to_string_lossy().into_owned() }
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
