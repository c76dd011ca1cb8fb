//! Absurd sizes are refused before any work, by the built binary, with exit
//! status 2 and a message that names the field or argument, the value found
//! and what is allowed. Each of these used to hang, exhaust memory, panic or
//! print a wrong answer.

use npusim_tests::{file, npusim};

/// Runs the binary and checks that it refuses, naming each of `expected`.
fn refused(args: &[&str], expected: &[&str]) {
    let out = npusim(args);
    assert_eq!(out.status, 2, "{args:?} exited {}: {}", out.status, out.stderr);
    for e in expected {
        assert!(out.stderr.contains(e), "{args:?}: `{e}` missing from: {}", out.stderr);
    }
}

#[test]
fn a_system_past_the_core_limit_is_refused_and_the_limit_can_be_raised() {
    let huge = file("cards.toml", "base = \"sovereign-node\"\nname = \"huge\"\n[node]\ncards = 100000\n");
    let expected = ["cards.toml:4:9", "node.cards", "6400000 NPU cores", "65536", "simulation.max_cores"];
    refused(&["run", "--hw", &huge], &expected);
    refused(&["validate", &huge], &expected);
    let wrapping = file(
        "wrap.toml",
        "base = \"sovereign-node\"\nname = \"wrap\"\nnodes = 4294967295\n[node]\ncards = 4294967295\n",
    );
    refused(&["validate", &wrapping], &["node.cards", "more than 2^64 NPU cores"]);
    // Raised, the same check lets a larger system through.
    let raised = file(
        "raised.toml",
        "base = \"sovereign-node\"\nname = \"raised\"\n[node]\ncards = 100000\n[simulation]\nmax_cores = 10000000\n",
    );
    let out = npusim(&["validate", &raised]);
    assert!(!out.stderr.contains("node.cards"), "{}", out.stderr);
}

#[test]
fn workloads_past_the_length_request_and_draft_limits_are_refused() {
    let base = "base = \"axk1-decode\"\nname = \"x\"\n";
    let context = file("context.toml", &format!("{base}[scenario]\ncontext_tokens = 4294967295\n"));
    refused(&["run", "--workload", &context], &["context.toml:4:18", "scenario.context_tokens", "16777216"]);
    let drawn = file(
        "drawn.toml",
        &format!("{base}[scenario]\noutput_tokens = {{ distribution = \"uniform\", min = 1, max = 100000000 }}\n"),
    );
    refused(&["run", "--workload", &drawn], &["scenario.output_tokens", "found 100000000"]);
    let many =
        file("many.toml", &format!("{base}[requests]\narrivals = \"poisson\"\nrate = 10.0\ncount = 4000000000\n"));
    refused(&["run", "--workload", &many], &["requests.count", "1048576", "serving.max_requests"]);
    refused(&["requests", "--workload", &many, "--out", "requests.csv"], &["requests.count"]);
    let drafts =
        file("drafts.toml", &format!("{base}[scenario]\nmtp = {{ draft_tokens = 100000, acceptance = 0.8 }}\n"));
    refused(&["run", "--workload", &drafts], &["scenario.mtp.draft_tokens", "1 to 16", "100000"]);
    // A trace row of no prompt and no answer used to be served as one token.
    let rows = file("zero.csv", "arrival_s,prompt_tokens,output_tokens\n0,0,0\n");
    let trace = file("trace.toml", &format!("{base}[requests]\narrivals = \"trace\"\nfile = \"{rows}\"\n"));
    refused(&["run", "--workload", &trace], &["zero.csv:2:3", "prompt_tokens", "from 1 to 16777216", "`0`"]);
}

#[test]
fn microbenchmarks_refuse_sizes_that_would_hang_or_wrap_the_clock() {
    let max = u64::MAX.to_string();
    refused(&["micro", "memory", "--interval-cycles", &max], &["--interval-cycles", "1048576", &max]);
    refused(&["micro", "memory", "--request-bytes", &max], &["--request-bytes", "1 MiB"]);
    refused(&["micro", "memory", "--bytes", "1 TiB"], &["--bytes / --request-bytes", "requests"]);
    refused(&["micro", "noc", "--measure-cycles", &max], &["--warmup-cycles + --measure-cycles", "100000000"]);
    refused(&["micro", "collective", "--op", "allreduce", "--bytes", &max], &["--bytes", "64 GiB"]);
    refused(&["micro", "cpu", "--bytes", &max], &["--bytes", "1 PiB"]);
    let trace = file("late.trc", &format!("0 0x0 R\n{max} 0x40 R\n"));
    refused(&["micro", "memory", "--trace", &trace], &["late.trc:2:1", "at most 1099511627776"]);
}
