//! `run --out DIR`: the directory holds everything the run read, and running
//! from it again writes the same report, byte for byte.

use npusim_tests::{npusim, scratch};
use std::fs;

#[test]
fn rerunning_from_an_out_directory_reproduces_the_report_byte_for_byte() {
    let inputs = scratch("inputs");
    fs::create_dir(inputs.join("data")).unwrap();
    // A workload that names a model file, a routing histogram and a request
    // trace, in a folder of its own: each must be copied for the rerun.
    fs::write(inputs.join("mixtral.toml"), include_str!("../../workloads/presets/models/mixtral-8x7b.toml")).unwrap();
    fs::write(inputs.join("data/routes.txt"), "9 5 3 1 1 1 0 0\n".repeat(32)).unwrap();
    fs::write(
        inputs.join("data/requests.csv"),
        "arrival_s,prompt_tokens,output_tokens\n0,64,3\n0.01,128,2\n0.02,32,4\n",
    )
    .unwrap();
    let workload = "base = \"llama3.1-70b-decode\"\nname = \"copied\"\nmodel = \"mixtral.toml\"\n\
                    [scenario]\nbatch = 4\n\
                    [plan]\nexpert_parallel = 8\n\
                    [routing]\ndistribution = \"histogram\"\nfile = \"data/routes.txt\"\n\
                    [requests]\narrivals = \"trace\"\nfile = \"data/requests.csv\"\n";
    fs::write(inputs.join("w.toml"), workload).unwrap();
    let w = inputs.join("w.toml");

    let first = scratch("first");
    let out = npusim(&[
        "run",
        "--hw",
        "h100-node",
        "--workload",
        w.to_str().unwrap(),
        "--seed",
        "3",
        "--out",
        first.to_str().unwrap(),
    ]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    for copied in ["inputs/mixtral.toml", "inputs/routes.txt", "inputs/requests.csv"] {
        assert!(first.join(copied).is_file(), "{copied} was not copied");
    }
    // The original inputs go, so the rerun can only read the copies.
    drop(inputs);
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(first.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest["wall_seconds"].as_f64().unwrap() > 0.0);
    let rerun: Vec<&str> = manifest["rerun"].as_str().unwrap().split(' ').collect();
    assert_eq!(rerun[..2], ["npusim", "run"]);

    let second = scratch("second");
    let mut args = rerun[1..].to_vec();
    args.extend(["--out", second.to_str().unwrap()]);
    let again = npusim(&args);
    assert_eq!(again.status, 0, "{}", again.stderr);
    for name in ["report.json", "requests.csv", "hardware.toml", "workload.toml"] {
        let (a, b) = (fs::read(first.join(name)).unwrap(), fs::read(second.join(name)).unwrap());
        assert!(a == b, "{name} differs between the run and its rerun");
    }
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(first.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["tokens_generated"], 9, "the trace's 3 + 2 + 4 tokens");
    // --json prints the same bytes as report.json.
    let json = npusim(&["run", "--hw", rerun[3], "--workload", rerun[5], "--seed", "3", "--json"]);
    assert_eq!(json.stdout, fs::read_to_string(first.join("report.json")).unwrap());
}
