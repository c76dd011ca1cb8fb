//! The rules ARCHITECTURE.md states about the crates, checked from the
//! manifests and sources so that they stay true.

use std::collections::BTreeSet;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace")
}

fn local_dependencies(krate: &str) -> BTreeSet<String> {
    let manifest = root().join(krate).join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).expect("each crate has a manifest");
    let table: toml::Table = toml::from_str(&text).expect("manifests parse");
    let locals = ["sim-core", "isa", "models", "workloads", "traces", "reports"];
    table
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|d| d.keys().filter(|k| locals.contains(&k.as_str())).cloned().collect())
        .unwrap_or_default()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn crates_depend_only_on_what_the_architecture_allows() {
    let allowed = [
        ("sim-core", set(&[])),
        ("isa", set(&[])),
        ("models", set(&["sim-core", "isa"])),
        ("workloads", set(&["sim-core", "isa", "models"])),
        ("traces", set(&["sim-core", "isa", "models", "workloads"])),
        ("reports", set(&["sim-core", "isa", "models", "workloads"])),
    ];
    for (krate, allowed) in allowed {
        let actual = local_dependencies(krate);
        assert!(actual.is_subset(&allowed), "{krate} depends on {actual:?}; allowed: {allowed:?}");
    }
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn only_the_binary_and_the_formats_layer_touch_files() {
    for krate in ["sim-core", "isa", "models", "workloads", "reports"] {
        let mut files = Vec::new();
        rust_files(&root().join(krate).join("src"), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for needle in ["std::fs", "File::open", "File::create"] {
                assert!(!text.contains(needle), "{} uses {needle}", file.display());
            }
        }
    }
}

#[test]
fn every_library_opens_with_a_doc_comment() {
    for krate in ["sim-core", "isa", "models", "workloads", "traces", "reports", "tests", "."] {
        let lib = root().join(krate).join("src/lib.rs");
        let text = std::fs::read_to_string(&lib).unwrap();
        assert!(text.starts_with("//! # "), "{} should open with a titled doc comment", lib.display());
    }
}
