//! Absurd sizes are refused before any work, by the built binary, with exit
//! status 2 and a message that names the field or argument, the value found
//! and what is allowed. Each of these used to hang, exhaust memory, panic or
//! print a wrong answer.

use npusim_tests::{file, npusim, refused};

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
    // Many nodes of a node that fits: the node count is named, where the user wrote it.
    let nodes = file(
        "nodes.toml",
        "base = \"sovereign-node\"\nname = \"n\"\nnodes = 100000\n[network]\nbandwidth = \"50 GB/s\"\n\
         nic_latency = \"1 us\"\nhops = 3\nswitch_latency = \"500 ns\"\nenergy_per_bit = \"10 pJ/bit\"\n",
    );
    refused(&["run", "--hw", &nodes], &["nodes.toml:3:9", "field `nodes`", "51200000 NPU cores"]);
    // Raised, the same check lets a larger system through.
    let raised = file(
        "raised.toml",
        "base = \"sovereign-node\"\nname = \"raised\"\n[node]\ncards = 100000\n[simulation]\nmax_cores = 10000000\n",
    );
    let out = npusim(&["validate", &raised]);
    assert!(!out.stderr.contains("node.cards"), "{}", out.stderr);
    // A matrix engine of 2^32 x 2^32 PEs used to pass.
    let array = file(
        "array.toml",
        "base = \"sovereign-node\"\nname = \"x\"\n[node.card.chiplet.core.matrix]\nrows = 4294967295\ncols = 4096\n",
    );
    refused(&["validate", &array], &["array.toml:4:8", "matrix.rows", "at most 1024", "array.toml:5:8", "matrix.cols"]);
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

#[test]
fn programs_naming_cores_past_the_chiplet_are_refused_by_check_and_run() {
    // A send to a missing core used to run in 0 cycles, and `asm check`
    // passed a `.core` that `asm run` refused.
    let example = include_str!("../../isa/examples/two_core_pipeline.s");
    let send = file("send99.s", &example.replace("core1:0x0", "core99:0x0"));
    let core = file("core999.s", &example.replace(".core 1\n", ".core 999\n"));
    for command in ["check", "run"] {
        refused(&["asm", command, &send], &["send99.s:10:1", "names core 99", "16 cores, 0 to 15"]);
        refused(&["asm", command, &core], &["core999.s:", "`.core 999`", "16 cores"]);
    }
}

#[test]
fn step_traces_with_absurd_kernels_or_transfers_are_refused_by_line_and_field() {
    use serde_json::{Value, json};
    let example = include_str!("../../traces/examples/axk1-decode-b4.jsonl");
    // In the first op with a transfer, or the first GEMM: the value at a JSON
    // pointer made absurd, and the field the error must name.
    let cases = [
        ("/transfers/0/bytes", json!(100_000_000_000_000_000u64), "transfers[0].bytes"),
        ("/compute/0/kernel/n", json!(4_000_000_000u64), "compute[0].kernel"),
        ("/compute/0/kernel/rows", json!([4_000_000_000u64]), "compute[0].kernel"),
    ];
    for (pointer, value, field) in cases {
        let mut lines: Vec<String> = example.lines().map(str::to_string).collect();
        let wanted = |op: &Value| match pointer.split('/').nth(1) {
            Some("transfers") => op["transfers"].as_array().is_some_and(|t| !t.is_empty()),
            _ => op["compute"][0]["kernel"]["kind"] == "gemm",
        };
        let (i, mut op) = lines
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, l)| (i, serde_json::from_str::<Value>(l).unwrap()))
            .find(|(_, op)| wanted(op))
            .unwrap();
        *op.pointer_mut(pointer).unwrap() = value;
        lines[i] = op.to_string();
        let trace = file("absurd.jsonl", &(lines.join("\n") + "\n"));
        let line = format!("absurd.jsonl:{}:", i + 1);
        refused(&["trace", "replay", &trace, "--hw", "sovereign-node"], &[&line, field]);
    }
}

#[test]
fn a_model_whose_counts_would_wrap_is_refused_by_field() {
    // Its parameter total used to wrap and print smaller than its parts.
    let config = file(
        "big.toml",
        "name = \"big\"\ndescription = \"x\"\nhidden = 4294967295\nlayers = 4294967295\nvocab = 4294967295\n\
         tie_embeddings = false\npost_mlp_norm = false\nmtp_layers = 0\n\
         [attention]\nkind = \"gqa\"\nheads = 64\nkv_heads = 8\nhead_dim = 128\n\
         [ffn]\ndense_layers = 0\ndense_intermediate = 4294967295\nrouted_experts = 0\nshared_experts = 0\n\
         experts_per_token = 0\nexpert_intermediate = 0\n",
    );
    refused(
        &["model", "show", &config],
        &["big.toml:3:10", "`hidden`: expected at most 131072", "`layers`", "`vocab`", "ffn.dense_intermediate"],
    );
}

#[test]
fn every_simulating_command_stops_at_the_limits_it_is_given() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../isa/examples/two_core_pipeline.s");
    let trace = concat!(env!("CARGO_MANIFEST_DIR"), "/../traces/examples/axk1-decode-b4.jsonl");
    let commands: [&[&str]; 7] = [
        &["run"],
        &["trace", "replay", trace],
        &["micro", "gemm", "--m", "2048", "--n", "2048", "--k", "2048"],
        &["micro", "memory"],
        &["micro", "noc"],
        &["asm", "run", example],
        &["validate-suite", "--case", "P6-gemm-4096x4096x7168"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.extend(["--max-events", "20"]);
        refused(&args, &["--max-events: a simulation reached its limit of 20 events", "raise it"]);
        // Given before the command, the option means the same.
        let mut first = vec!["--max-sim-time", "10 ns"];
        first.extend(command);
        refused(&first, &["--max-sim-time: a simulation reached its limit of 10.000 ns of simulated time"]);
    }
    refused(&["run", "--max-wall", "1 ms"], &["--max-wall: the work reached its limit of 0.001 s of wall time"]);
    refused(&["run", "--max-sim-time", "ten seconds"], &["--max-sim-time", "expected a duration such as"]);
    // Limits the run stays within change nothing.
    let plain = npusim(&["run", "--json"]);
    let bounded =
        npusim(&["run", "--json", "--max-events", "100000000", "--max-sim-time", "10 s", "--max-wall", "600 s"]);
    assert_eq!(bounded.status, 0, "{}", bounded.stderr);
    assert!(plain.stdout == bounded.stdout);
}
