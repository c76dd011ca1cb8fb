//! The command line as a new user meets it.

use npusim_tests::{file, npusim, refused, scratch};

#[test]
fn presets_lists_every_preset_on_one_line_each() {
    let out = npusim(&["presets"]);
    assert_eq!(out.status, 0);
    for name in [
        "sovereign-node",
        "rebel-quad",
        "atom",
        "agi-cpu",
        "h100-node",
        "h200-node",
        "h800-node",
        "h20-node",
        "axk1-decode",
        "axk1",
    ] {
        assert!(
            out.stdout.lines().any(|l| l.split_whitespace().nth(1) == Some(name)),
            "{name} missing:\n{}",
            out.stdout
        );
    }
}

#[test]
fn show_prints_the_resolved_spec_and_derived_figures() {
    let out = npusim(&["show", "sovereign-node"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(out.stdout.contains("cards = 8"));
    assert!(out.stdout.contains("# peak fp8 per chiplet / card / system"), "{}", out.stdout);
    assert!(out.stdout.contains("500.0 TFLOP/s / 2.000 PFLOP/s / 16.000 PFLOP/s"), "{}", out.stdout);
    assert!(out.stdout.contains("1.2 TB/s / 4.8 TB/s"), "{}", out.stdout);
    // The printed spec is itself a valid spec that loads to the same thing.
    let resolved: String =
        out.stdout.lines().take_while(|l| !l.starts_with("# derived")).collect::<Vec<_>>().join("\n");
    let again = models::presets::load_system("resolved.toml", &resolved).expect("the resolved spec loads");
    assert_eq!(again, models::presets::load_preset("sovereign-node").unwrap());
}

#[test]
fn show_a_workload_prints_model_figures() {
    let out = npusim(&["show", "axk1-decode"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(out.stdout.contains("# parameters, total            518.98 B"), "{}", out.stdout);
}

#[test]
fn unknown_presets_and_arguments_exit_2() {
    let out = npusim(&["run", "--hw", "rebel-octo"]);
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("`rebel-octo` is neither a hardware preset"), "{}", out.stderr);
    let out = npusim(&["run", "--frobnicate"]);
    assert_eq!(out.status, 2);
    let out = npusim(&["--help"]);
    assert_eq!(out.status, 0);
    assert!(out.stdout.contains("Usage"));
}

#[test]
fn a_workload_the_hardware_cannot_run_is_explained() {
    // ATOM has no FP8 matrix path.
    let out = npusim(&["run", "--hw", "atom"]);
    assert_eq!(out.status, 2);
    assert!(
        out.stderr.contains("scenario.weight_dtype = fp8, but the matrix engine of `atom` supports only"),
        "{}",
        out.stderr
    );
    // A.X K1 does not fit one REBEL-Quad card: the error says by how much.
    let out = npusim(&["run", "--hw", "rebel-quad"]);
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("too much"), "{}", out.stderr);
    // The CPU-only host has no NPUs at all.
    let out = npusim(&["run", "--hw", "agi-cpu"]);
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("no accelerator chiplets"), "{}", out.stderr);
}

#[test]
fn run_writes_the_report_resolved_inputs_and_a_manifest() {
    let dir = scratch("out");
    let workload = file("w.toml", "base = \"axk1-decode\"\n[scenario]\noutput_tokens = 2\n");
    let out = npusim(&["run", "--workload", &workload, "--out", dir.to_str().unwrap(), "--seed", "7"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(out.stdout.contains("throughput"), "{}", out.stdout);
    assert!(out.stdout.contains("bottleneck"), "{}", out.stdout);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    for key in [
        "schema_version",
        "hardware",
        "workload",
        "simulated_seconds",
        "tokens_generated",
        "throughput_tokens_per_s",
        "latency",
        "energy_j",
        "joules_per_token",
        "average_power_w",
        "utilization",
        "bottleneck",
        "events",
    ] {
        assert!(report.get(key).is_some(), "report.json lacks {key}");
    }
    for latency in ["ttft_s", "tpot_s"] {
        for stat in ["mean", "p50", "p90", "p99"] {
            assert!(report["latency"][latency][stat].is_number(), "latency.{latency}.{stat}");
        }
    }
    assert_eq!(report["tokens_generated"], 128);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["seed"], 7);
    assert!(manifest["command_line"].as_array().unwrap().iter().any(|a| a == "--seed"));
    let hardware = std::fs::read_to_string(dir.join("hardware.toml")).unwrap();
    assert_eq!(
        models::presets::load_system("hardware.toml", &hardware).unwrap(),
        models::presets::load_preset("sovereign-node").unwrap()
    );
    let workload = std::fs::read_to_string(dir.join("workload.toml")).unwrap();
    assert_eq!(
        workloads::load_workload("workload.toml", &workload).unwrap().spec.scenario.output_tokens,
        workloads::lengths::Length::Fixed(2)
    );
    // Nothing half-written is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn bench_runs_the_events_it_is_asked_for_and_divides_by_its_time() {
    let out = npusim(&["bench", "--case", "engine", "--events", "200000", "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let cases: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(cases.as_array().unwrap().len(), 1, "only the case asked for");
    let engine = &cases[0];
    assert_eq!(engine["case"], "engine");
    assert_eq!(engine["events"], 200_000, "the system handles exactly the events asked for");
    let (events, seconds) = (engine["events"].as_f64().unwrap(), engine["wall_seconds"].as_f64().unwrap());
    assert!(seconds > 0.0);
    assert_eq!(engine["events_per_s"].as_f64().unwrap(), events / seconds);
    assert!(engine["meets_target"].is_null(), "the engine case has no wall-time target");
    let table = npusim(&["bench", "--case", "engine", "--events", "200000"]);
    assert!(table.stdout.starts_with("| case | wall time | events | events/s | target |"), "{}", table.stdout);
    npusim_tests::refused(&["bench", "--case", "nothing"], &["--case nothing", "first-decode-step"]);
}

/// The minimal memory spec models/README.md shows runs as shown.
#[test]
fn the_documented_minimal_memory_spec_runs() {
    let readme = include_str!("../../models/README.md");
    let start = readme.find("```toml\n").expect("a toml example") + "```toml\n".len();
    let example = &readme[start..start + readme[start..].find("```").expect("closed")];
    assert!(example.contains("[memory]"));
    let path = npusim_tests::file("one-stack.toml", example);
    let out = npusim(&["micro", "memory", "--hw", &path, "--bytes", "1 MiB", "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let run: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(run["hardware"], "one-hbm3e-stack");
    assert_eq!(run["read_bytes"], 1 << 20);
    let broken = example.replace("stacks = 1", "stacks = \"one\"");
    let path = npusim_tests::file("broken.toml", &broken);
    let out = npusim(&["micro", "memory", "--hw", &path]);
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("memory.stacks"), "{}", out.stderr);
}

#[test]
fn a_spec_file_based_on_another_runs_and_a_cycle_of_files_is_refused() {
    let dir = scratch("chained-specs");
    std::fs::write(
        dir.join("fast.toml"),
        "base = \"h100-node\"\nname = \"fast\"\n[node.card.chiplet]\nclock = \"2 GHz\"\n",
    )
    .unwrap();
    let mine = dir.join("mine.toml");
    std::fs::write(&mine, "base = \"fast.toml\"\nname = \"mine\"\n[node]\ncards = 4\n").unwrap();
    let out = npusim(&["show", mine.to_str().unwrap()]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(out.stdout.contains("clock = \"2 GHz\"") && out.stdout.contains("cards = 4"), "{}", out.stdout);
    std::fs::write(dir.join("a.toml"), "base = \"b.toml\"\n").unwrap();
    std::fs::write(dir.join("b.toml"), "base = \"a.toml\"\n").unwrap();
    let out = npusim(&["validate", dir.join("a.toml").to_str().unwrap()]);
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("field `base`") && out.stderr.contains("cycle"), "{}", out.stderr);
}

#[test]
fn the_validation_suite_lists_its_sourced_cases_and_runs_one() {
    let o = npusim(&["validate-suite", "--list"]);
    assert_eq!(o.status, 0, "{}", o.stderr);
    let cases: Vec<&str> = o.stdout.lines().collect();
    assert!(cases.len() >= 10, "at least ten published cases:\n{}", o.stdout);
    for id in ["P1-v4.1", "P2", "P3-offline", "P4", "P5", "P6-flashmla", "P7"] {
        assert!(cases.iter().any(|l| l.starts_with(&format!("{id} "))), "{id} is a case");
    }
    // One kernel case: its published figure, npusim's, and the signed error.
    let o = npusim(&["validate-suite", "--case", "P6-gemm-64x7168x16384", "--json"]);
    assert_eq!(o.status, 0, "{}", o.stderr);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "TFLOP/s and GB/s");
    for row in rows {
        let (published, predicted) = (row["published"].as_f64().unwrap(), row["predicted"].as_f64().unwrap());
        let error = row["error"].as_f64().unwrap();
        assert!((error - (predicted / published - 1.0)).abs() < 1e-12);
    }
    assert_eq!(rows[0]["published"], 336.0);
    assert_eq!(v["held_out"][0]["group"], "kernel");
    // An unknown case is bad input that names the cases there are.
    let o = npusim(&["validate-suite", "--case", "P99"]);
    assert_eq!(o.status, 2);
    assert!(o.stderr.contains("P99") && o.stderr.contains("P6-flashmla"), "{}", o.stderr);
}

#[test]
fn absurd_microbenchmark_sizes_are_refused_before_lowering() {
    // Lowered whole, these would take terabytes of programs.
    for args in [
        &["micro", "gemm", "--m", "10000000", "--n", "10000000", "--k", "1000000"][..],
        &["micro", "attention", "--queries", "100000000", "--context", "100000000"][..],
    ] {
        refused(args, &["tiles at the smallest tiling"]);
    }
}

#[test]
fn validate_makes_every_check_run_makes_and_both_name_the_inputs() {
    let base = "base = \"axk1-decode\"\nname = \"x\"\n";
    let tp7 = file("tp7.toml", &format!("{base}[plan]\nattention_tensor_parallel = 7\n"));
    let ep7 = file("ep7.toml", &format!("{base}[plan]\nexpert_parallel = 7\n"));
    let kv0 = file("kv0.toml", &format!("{base}[serving]\nkv_memory = \"0 B\"\n"));
    for (w, field) in [(&tp7, "attention_tensor_parallel = 7"), (&ep7, "expert_parallel = 7"), (&kv0, "kv_memory")] {
        let named = format!("{w} on sovereign-node: ");
        for args in [&["validate", &w[..]][..], &["run", "--workload", &w[..]][..]] {
            refused(args, &[&named, field]);
        }
    }
    // A plan that divides one system's chiplets and not another's: --hw picks the system.
    let tp4 = file("tp4.toml", &format!("{base}[plan]\nattention_tensor_parallel = 4\n"));
    let out = npusim(&["validate", &tp4]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(out.stdout.contains("runs on `sovereign-node`"), "{}", out.stdout);
    let out = npusim(&["validate", &tp4, "--hw", "h100-node"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let tp3 = file("tp3.toml", &format!("{base}[plan]\nattention_tensor_parallel = 3\n"));
    refused(&["validate", &tp3, "--hw", "h100-node"], &["on h100-node: plan.attention_tensor_parallel = 3"]);
}

#[test]
fn a_missing_file_a_workload_names_is_reported_with_the_field_that_names_it() {
    let base = "base = \"axk1-decode\"\nname = \"x\"\n[requests]\n";
    let trace = file("trace.toml", &format!("{base}arrivals = \"trace\"\nfile = \"missing.csv\"\n"));
    let lengths = file("lengths.toml", &format!("{base}arrivals = \"offline\"\ncount = 4\nlengths = \"nolen.csv\"\n"));
    for (w, field, name) in [(&trace, "requests.file", "missing.csv"), (&lengths, "requests.lengths", "nolen.csv")] {
        let expected = format!("{w}: field `{field}` = \"{name}\": ");
        refused(&["run", "--workload", w], &[&expected, "cannot read the file"]);
    }
}
