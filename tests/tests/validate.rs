//! `npusim validate`: bad specs exit with status 2 and say where and what.

use npusim_tests::{file, npusim};

fn refused(text: &str) -> String {
    let path = file("spec.toml", text);
    let out = npusim(&["validate", &path]);
    assert_eq!(out.status, 2, "stdout: {}\nstderr: {}", out.stdout, out.stderr);
    assert!(out.stderr.contains(&path[..]), "the file is named: {}", out.stderr);
    out.stderr
}

#[test]
fn an_unknown_field() {
    let e = refused("base = \"rebel-quad\"\n[node.card.chiplet]\ncores_count = 4\n");
    assert!(e.contains(":3:1: field `node.card.chiplet.cores_count`: unknown field `cores_count`"), "{e}");
    assert!(e.contains("expected `cores`"), "the known fields are listed: {e}");
}

#[test]
fn a_size_where_a_bandwidth_belongs() {
    let e = refused("base = \"rebel-quad\"\n[node.card.d2d]\nbandwidth = \"1.2 TB\"\n");
    assert!(e.contains(":3:13: field `node.card.d2d.bandwidth`: expected a data rate"), "{e}");
    assert!(e.contains("found \"1.2 TB\""), "{e}");
}

#[test]
fn a_negative_count() {
    let e = refused("base = \"sovereign-node\"\n[node]\ncards = -8\n");
    assert!(e.contains(":3:9: field `node.cards`: expected a non-negative integer, found integer -8"), "{e}");
}

#[test]
fn a_toml_syntax_error() {
    let e = refused("base = \"rebel-quad\"\n[node.card.chiplet]\ncores = 16x\n");
    assert!(e.contains(":3:"), "line: {e}");
    assert!(e.contains("field `node.card.chiplet.cores`"), "field: {e}");
    assert!(e.contains("TOML syntax error"), "{e}");
}

#[test]
fn a_missing_field_and_an_inconsistent_one_are_both_explained() {
    let e = refused("base = \"rebel-quad\"\n[node]\ncards = 2\n[node.card.d2d]\ncolumns = 3\n");
    assert!(
        e.contains("field `node.card.d2d.columns`: a mesh of 4 chiplets needs columns dividing it, found 3"),
        "{e}"
    );
    let e = refused("name = \"bare\"\nnodes = 1\n");
    assert!(e.contains("field `node`: this required field is missing"), "{e}");
}

#[test]
fn an_unknown_base_preset() {
    let e = refused("base = \"rebel-octo\"\n");
    assert!(
        e.contains(":1:8: field `base`: expected the name of a preset or a .toml file, found \"rebel-octo\""),
        "{e}"
    );
}

#[test]
fn presets_and_overrides_are_valid() {
    for preset in ["sovereign-node", "rebel-quad", "atom", "agi-cpu", "h100-node"] {
        let out = npusim(&["validate", &file("spec.toml", &format!("base = \"{preset}\"\n"))]);
        assert_eq!(out.status, 0, "{preset}: {}", out.stderr);
    }
    let out = npusim(&["validate", &file("w.toml", "base = \"axk1-decode\"\n[scenario]\nbatch = 8\n")]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(out.stdout.contains("a valid workload"));
}

#[test]
fn a_bad_workload_field() {
    let path = file("w.toml", "base = \"axk1-decode\"\n[scenario]\nweight_dtype = \"fp4\"\n");
    let out = npusim(&["validate", &path]);
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains(":3:16: field `scenario.weight_dtype`: expected one of"), "{}", out.stderr);
}

#[test]
fn a_missing_file() {
    let out = npusim(&["validate", "no/such/file.toml"]);
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("no/such/file.toml: cannot read the file"), "{}", out.stderr);
}

#[test]
fn an_empty_operand_block() {
    let e =
        refused("base = \"h100-node\"\n[node.card.chiplet.core.matrix]\noperand_block = { rows = 0, cols = 256 }\n");
    assert!(e.contains("node.card.chiplet.core.matrix.operand_block"), "{e}");
    assert!(e.contains("found 0 x 256"), "{e}");
}

#[test]
fn a_memory_controller_latency_in_the_wrong_unit() {
    let e = refused("base = \"h100-node\"\n[node.card.chiplet.memory.controller]\nlatency = \"185 s\"\n");
    assert!(
        e.contains("field `node.card.chiplet.memory.controller.latency`: expected at most 1 ms, found 185000000000 ns"),
        "{e}"
    );
}
