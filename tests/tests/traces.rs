//! Step traces: a step written to a file and replayed gives what the direct
//! run gives; the shipped samples are what `trace gen` writes today; bad
//! files are errors at their line.

use npusim_tests::{file, hardware, npusim, scratch};
use workloads::lengths::Length;
use workloads::{Workload, load_workload, record_step, replay, run};

fn example(name: &str) -> Workload {
    let path = format!("{}/../traces/examples/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("the example workloads ship");
    load_workload(&path, &text).expect("the example workloads load")
}

fn report(r: &workloads::RunResult) -> String {
    reports::Report::new(r, 0.0).to_json()
}

#[test]
fn a_step_written_and_replayed_gives_the_direct_runs_result() {
    let hw = hardware("sovereign-node");
    for name in ["axk1-decode-b4", "axk1-prefill-512"] {
        let workload = example(name);
        let direct = run(&hw, &workload, 7).unwrap();
        assert_eq!(direct.steps.len(), 1, "{name}: the example is one step");
        let text = traces::step::to_string(&record_step(&hw, &workload, 7, 0).unwrap(), "test");
        let read = traces::step::read("trace.jsonl", text.as_bytes()).unwrap();
        let replayed = replay(&hw, &read).unwrap();
        assert_eq!(replayed.simulated, direct.simulated, "{name}");
        assert_eq!(replayed.events, direct.events, "{name}");
        // Everything the report says, energy and per-component figures included.
        assert_eq!(report(&replayed), report(&direct), "{name}");
    }
}

#[test]
fn a_later_step_is_the_one_the_run_builds() {
    // Step 1 of a prefill workload is its first decode: one new token on top of the prompt.
    let hw = hardware("sovereign-node");
    let mut workload = example("axk1-prefill-512");
    workload.spec.scenario.output_tokens = Length::Fixed(3);
    let step = record_step(&hw, &workload, 1, 1).unwrap();
    assert!(step.requests.iter().all(|r| r.cached == 512 && r.new_tokens == 1), "{:?}", step.requests);
    let e = record_step(&hw, &workload, 1, 3).unwrap_err();
    assert!(e.0.contains("has steps 0 to 2"), "{e}");
}

#[test]
fn the_shipped_samples_are_what_trace_gen_writes() {
    for name in ["axk1-decode-b4", "axk1-prefill-512"] {
        let dir = format!("{}/../traces/examples", env!("CARGO_MANIFEST_DIR"));
        let shipped = std::fs::read_to_string(format!("{dir}/{name}.jsonl")).unwrap();
        let tmp = scratch(name);
        let out = tmp.join("t.jsonl");
        let written =
            npusim(&["trace", "gen", "--workload", &format!("{dir}/{name}.toml"), "--out", out.to_str().unwrap()]);
        assert_eq!(written.status, 0, "{}", written.stderr);
        assert!(
            std::fs::read_to_string(&out).unwrap() == shipped,
            "traces/examples/{name}.jsonl is stale: regenerate it with \
             `npusim trace gen --workload traces/examples/{name}.toml --out traces/examples/{name}.jsonl`"
        );
        // Replayed from the command line, the sample reports what the run of
        // its workload reports (trace gen's default seed is 1).
        let replayed = npusim(&["trace", "replay", &format!("{dir}/{name}.jsonl"), "--hw", "sovereign-node", "--json"]);
        assert_eq!(replayed.status, 0, "{}", replayed.stderr);
        let direct = run(&hardware("sovereign-node"), &example(name), 1).unwrap();
        assert!(replayed.stdout == report(&direct), "{name}: the replay's report differs from the run's");
    }
}

/// A change to one line of a trace.
type Edit = fn(&str) -> String;

fn sample_lines() -> Vec<String> {
    let path = format!("{}/../traces/examples/axk1-decode-b4.jsonl", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap().lines().map(String::from).collect()
}

#[test]
fn an_unknown_format_version_is_a_clear_error() {
    let mut lines = sample_lines();
    lines[0] = lines[0].replacen("\"version\":1", "\"version\":2", 1);
    let path = file("v2.jsonl", &lines.join("\n"));
    let out = npusim(&["trace", "replay", &path]);
    assert_eq!(out.status, 2);
    assert!(
        out.stderr
            .contains("v2.jsonl:1: field `version`: format version 2 is not one this npusim reads: it reads version 1"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_op_lines_are_errors_at_their_line() {
    let base = sample_lines();
    let cases: [(&str, Edit, &str); 4] = [
        (
            "forward dependency",
            |l: &str| l.replacen("\"deps\":[2]", "\"deps\":[9]", 1),
            "field `deps`: expected ids of earlier ops",
        ),
        (
            "device out of range",
            |l: &str| l.replacen("{\"device\":0,", "{\"device\":99,", 1),
            "field `compute[0].device`: expected a device below 32, found 99",
        ),
        (
            "zero size",
            |l: &str| l.replacen("\"n\":1536", "\"n\":0", 1),
            "field `compute[0].kernel.n`: expected at least 1, found 0",
        ),
        ("unknown field", |l: &str| l.replacen("\"flops\"", "\"flop\"", 1), "unknown field `flop`"),
    ];
    for (what, edit, expected) in cases {
        let mut lines = base.clone();
        // Line 5 of the file is op 3, `l0.attn.q_a`, which depends on op 2.
        lines[4] = edit(&lines[4]);
        assert_ne!(lines[4], base[4], "{what}: the edit applies");
        let path = file("bad.jsonl", &lines.join("\n"));
        let out = npusim(&["trace", "replay", &path]);
        assert_eq!(out.status, 2, "{what}");
        assert!(out.stderr.contains("bad.jsonl:5") && out.stderr.contains(expected), "{what}: {}", out.stderr);
    }
    // A cut-off file.
    let path = file("cut.jsonl", &base[..100].join("\n"));
    let out = npusim(&["trace", "replay", &path]);
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("the header announces 1584 ops but the file has 99"), "{}", out.stderr);
}

#[test]
fn chakra_traces_import_and_replay() {
    // Four ranks of a tensor-parallel layer in Chakra's JSON form: a GEMM,
    // an all-reduce of 8 MiB, a host-side op npusim cannot place, a GEMM.
    let dir = scratch("chakra");
    let mut ranks = Vec::new();
    for r in 0..4 {
        let text = r#"{ "version": "0.0.4" }
{ "id": "10", "name": "qkv", "type": "COMP_NODE",
  "attr": [ { "name": "num_ops", "int64Val": "68719476736" }, { "name": "tensor_size", "uint64Val": "33554432" } ] }
{ "id": "11", "name": "allreduce", "type": "COMM_COLL_NODE", "dataDeps": [ "10" ],
  "attr": [ { "name": "comm_type", "int64Val": "0" }, { "name": "comm_size", "int64Val": "8388608" } ] }
{ "id": "12", "name": "log", "type": "COMP_NODE", "dataDeps": [ "11" ],
  "attr": [ { "name": "is_cpu_op", "boolVal": true }, { "name": "num_ops", "int64Val": "10" } ] }
{ "id": "13", "name": "mlp", "type": "COMP_NODE", "dataDeps": [ "12" ],
  "attr": [ { "name": "num_ops", "int64Val": "137438953472" }, { "name": "tensor_size", "uint64Val": "67108864" } ] }
"#;
        let path = dir.join(format!("rank{r}.json"));
        std::fs::write(&path, text).unwrap();
        ranks.push(path.to_string_lossy().into_owned());
    }
    let out = dir.join("layer.jsonl");
    let mut args = vec!["trace", "import-chakra"];
    args.extend(ranks.iter().map(String::as_str));
    args.extend(["--out", out.to_str().unwrap()]);
    let imported = npusim(&args);
    assert_eq!(imported.status, 0, "{}", imported.stderr);
    assert!(imported.stdout.contains("12 Chakra nodes mapped, 4 not"), "{}", imported.stdout);
    assert!(imported.stdout.contains("not mapped: 4 x COMP_NODE on the CPU (is_cpu_op)"), "{}", imported.stdout);
    let replayed = npusim(&["trace", "replay", out.to_str().unwrap(), "--hw", "rebel-quad", "--json"]);
    assert_eq!(replayed.status, 0, "{}", replayed.stderr);
    let report: serde_json::Value = serde_json::from_str(&replayed.stdout).unwrap();
    // 64 + 128 GFLOP... per chiplet at 500 TFLOP/s of FP8 is >= 0.38 ms; BF16 runs at half that rate.
    let seconds = report["simulated_seconds"].as_f64().unwrap();
    assert!(seconds > 2.0 * 192e9 / 500e12, "{seconds}");
    // More ranks than the system has chiplets is an error.
    let small = npusim(&["trace", "replay", out.to_str().unwrap(), "--hw", "atom"]);
    assert_eq!(small.status, 2, "{}", small.stderr);
}

#[test]
fn chakra_nodes_that_share_an_id_are_refused() {
    // Found by the chakra fuzz target: two nodes with one id made the import
    // loop for ever (a finished node became ready again). The .et bytes it
    // found, and the same in the JSON form.
    let found = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/regressions/chakra/duplicate-ids-hang.et");
    let dir = scratch("twice");
    let out = dir.join("t.jsonl");
    let args = ["trace", "import-chakra", found, "--out", out.to_str().unwrap()];
    npusim_tests::refused(&args, &["duplicate-ids-hang.et", "node id 0 is given to two nodes"]);
    let json = "{ \"version\": \"0.0.4\" }\n\
                { \"id\": \"7\", \"name\": \"a\", \"type\": \"COMP_NODE\", \"attr\": [ { \"name\": \"num_ops\", \"int64Val\": \"10\" } ] }\n\
                { \"id\": \"7\", \"name\": \"b\", \"type\": \"COMP_NODE\", \"dataDeps\": [ \"7\" ] }\n";
    let rank = file("rank0.json", json);
    npusim_tests::refused(
        &["trace", "import-chakra", &rank, "--out", out.to_str().unwrap()],
        &["rank0.json", "node id 7"],
    );
    assert!(!out.exists());
}
