//! The built `npusim` binary, as a user runs it: exit statuses, what goes to
//! stderr, and bad input under a 1 GiB address-space limit, one case per
//! reader. A refused input must fail cleanly (exit 2, a message that names
//! the file or option and the field) without first allocating what it asks
//! for: under the limit, an attempt to would abort instead.
//!
//! These tests belong to the root package because only a binary's own
//! package is told where cargo built it (`CARGO_BIN_EXE_npusim`).

use std::path::Path;
use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_npusim");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The address space a run of bad input may use, in KiB (1 GiB).
const ADDRESS_SPACE_KIB: u64 = 1 << 20;

struct Ran {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the binary in `dir` under the address-space limit.
fn npusim(dir: &Path, args: &[&str]) -> Ran {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {ADDRESS_SPACE_KIB} && exec \"$0\" \"$@\""))
        .arg(BINARY)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("sh runs");
    Ran {
        status: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `args` and checks exit status 2, nothing on stdout, and one error
/// line that holds each of `expected`.
fn refused(dir: &Path, args: &[&str], expected: &[&str]) {
    let ran = npusim(dir, args);
    assert_eq!(ran.status, Some(2), "{args:?}: exit {:?}, stderr: {}", ran.status, ran.stderr);
    assert!(ran.stdout.is_empty(), "{args:?} printed: {}", ran.stdout);
    assert!(ran.stderr.starts_with("error: "), "{args:?}: {}", ran.stderr);
    for e in expected {
        assert!(ran.stderr.contains(e), "{args:?}: `{e}` missing from: {}", ran.stderr);
    }
}

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("npusim-binary-").tempdir().expect("the temporary directory is writable")
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), contents).expect("the temporary directory is writable");
}

#[test]
fn help_and_version_exit_0_and_usage_errors_exit_2() {
    let dir = scratch();
    let help = npusim(dir.path(), &["--help"]);
    assert_eq!(help.status, Some(0));
    assert!(help.stdout.contains("Usage: npusim"), "{}", help.stdout);
    let version = npusim(dir.path(), &["--version"]);
    assert_eq!((version.status, version.stdout.trim()), (Some(0), concat!("npusim ", env!("CARGO_PKG_VERSION"))));
    let unknown = npusim(dir.path(), &["run", "--hardware", "x"]);
    assert_eq!(unknown.status, Some(2));
    assert!(unknown.stderr.contains("unexpected argument '--hardware'"), "{}", unknown.stderr);
}

#[test]
fn an_unwritable_output_exits_1_and_says_where() {
    let dir = scratch();
    write(dir.path(), "taken", "a file where the output directory should go");
    let ran = npusim(dir.path(), &["run", "--workload", "axk1-decode", "--out", "taken/run"]);
    assert_eq!(ran.status, Some(1), "{}", ran.stderr);
    assert!(ran.stderr.contains("taken/run: cannot create the directory"), "{}", ran.stderr);
}

#[test]
fn a_hardware_spec_of_absurd_size() {
    let dir = scratch();
    write(dir.path(), "cards.toml", "base = \"sovereign-node\"\nname = \"huge\"\n[node]\ncards = 4294967295\n");
    refused(dir.path(), &["run", "--hw", "cards.toml"], &["cards.toml:4:9", "node.cards", "simulation.max_cores"]);
}

#[test]
fn workloads_of_absurd_size() {
    let dir = scratch();
    write(dir.path(), "context.toml", "base = \"axk1-decode\"\n[scenario]\ncontext_tokens = 4294967295\n");
    refused(dir.path(), &["run", "--workload", "context.toml"], &["context.toml:3:18", "scenario.context_tokens"]);
    write(
        dir.path(),
        "many.toml",
        "base = \"axk1-decode\"\n[requests]\narrivals = \"poisson\"\nrate = 10.0\ncount = 4000000000\n",
    );
    refused(
        dir.path(),
        &["requests", "--workload", "many.toml", "--out", "r.csv"],
        &["many.toml", "count", "max_requests"],
    );
}

#[test]
fn a_request_trace_of_absurd_length() {
    let dir = scratch();
    write(dir.path(), "big.csv", "arrival_s,prompt_tokens,output_tokens\n0,4294967295,1\n");
    write(dir.path(), "t.toml", "base = \"axk1-decode\"\n[requests]\narrivals = \"trace\"\nfile = \"big.csv\"\n");
    refused(dir.path(), &["run", "--workload", "t.toml"], &["big.csv:2:3", "prompt_tokens", "16777216"]);
}

#[test]
fn a_routing_histogram_with_a_bad_count() {
    let dir = scratch();
    write(dir.path(), "routes.txt", "5 5 0 0 0 0 0 -1\n");
    let workload = "base = \"llama3.1-70b-decode\"\nname = \"h\"\nmodel = \"mixtral-8x7b\"\n[plan]\nexpert_parallel = 8\n\
                    [routing]\ndistribution = \"histogram\"\nfile = \"routes.txt\"\n";
    write(dir.path(), "w.toml", workload);
    refused(dir.path(), &["run", "--workload", "w.toml"], &["routes.txt:1:15", "routing.file", "`-1`"]);
}

#[test]
fn a_step_trace_with_an_absurd_transfer() {
    let dir = scratch();
    let example = std::fs::read_to_string(format!("{ROOT}/traces/examples/axk1-decode-b4.jsonl")).unwrap();
    let transfer = r#"{"from":{"host":0},"to":{"device":0},"bytes":4}"#;
    assert!(example.contains(transfer));
    let absurd = example.replacen(transfer, &transfer.replace(":4}", ":100000000000000000}"), 1);
    write(dir.path(), "absurd.jsonl", absurd);
    refused(dir.path(), &["trace", "replay", "absurd.jsonl"], &["absurd.jsonl:", "bytes"]);
}

/// `text` with the number after each of the first `n` occurrences of `key`
/// replaced by `with` (`key` is `"field": `).
fn replace_number(text: &str, key: &str, with: &str, n: usize) -> String {
    let mut out = String::new();
    let mut rest = text;
    for _ in 0..n {
        let Some(at) = rest.find(key) else { break };
        out.push_str(&rest[..at]);
        out.push_str(with);
        let after = &rest[at + key.len()..];
        rest = after.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

#[test]
fn a_chakra_trace_with_an_absurd_size() {
    let dir = scratch();
    let rank = r#"{ "version": "0.0.4" }
{ "id": "1", "name": "allreduce", "type": "COMM_COLL_NODE",
  "attr": [ { "name": "comm_type", "int64Val": "0" }, { "name": "comm_size", "int64Val": "9223372036854775807" } ] }
"#;
    write(dir.path(), "rank0.json", rank);
    refused(dir.path(), &["trace", "import-chakra", "rank0.json", "--out", "t.jsonl"], &["rank0.json", "comm_size"]);
    assert!(!dir.path().join("t.jsonl").exists(), "a refused import writes nothing");
}

#[test]
fn a_memory_trace_past_the_clock() {
    let dir = scratch();
    write(dir.path(), "late.trc", format!("0 0x0 R\n{} 0x40 R\n", u64::MAX));
    refused(dir.path(), &["micro", "memory", "--trace", "late.trc"], &["late.trc:2:1", "1099511627776"]);
}

#[test]
fn assembly_and_program_images_that_do_not_fit() {
    let dir = scratch();
    let example = std::fs::read_to_string(format!("{ROOT}/isa/examples/two_core_pipeline.s")).unwrap();
    write(dir.path(), "core999.s", example.replace(".core 1\n", ".core 999\n"));
    refused(dir.path(), &["asm", "run", "core999.s"], &["core999.s:", "`.core 999`", "16 cores"]);
    // An image whose length prefix claims 2^63 programs.
    write(dir.path(), "long.bin", b"NPUB\x01\xff\xff\xff\xff\xff\xff\xff\xff\x7f");
    refused(dir.path(), &["asm", "decode", "long.bin"], &["long.bin: corrupt program image"]);
}

#[test]
fn a_hugging_face_config_of_absurd_size() {
    let dir = scratch();
    let config = std::fs::read_to_string(format!("{ROOT}/workloads/fixtures/hf/llama3.1-8b.json")).unwrap();
    write(
        dir.path(),
        "huge.json",
        replace_number(&config, "\"num_hidden_layers\": ", "\"num_hidden_layers\": 4294967295", 1),
    );
    refused(dir.path(), &["model", "show", "huge.json"], &["huge.json", "layers", "4294967295"]);
}

#[test]
fn microbenchmark_sizes_that_would_exhaust_memory() {
    let dir = scratch();
    let max = u64::MAX.to_string();
    refused(
        dir.path(),
        &["micro", "gemm", "--m", "4000000000", "--n", "4000000000", "--k", "4000000000"],
        &["m x n x k"],
    );
    refused(dir.path(), &["micro", "collective", "--op", "allreduce", "--bytes", &max], &["--bytes", "64 GiB"]);
    refused(dir.path(), &["micro", "memory", "--request-bytes", &max], &["--request-bytes", "1 MiB"]);
}

#[test]
fn a_run_past_its_wall_time_limit_stops() {
    let dir = scratch();
    let sample = format!("{ROOT}/traces/examples/azure-sample.toml");
    refused(dir.path(), &["run", "--workload", &sample, "--max-wall", "1 s"], &["--max-wall", "1.000 s of wall time"]);
}
