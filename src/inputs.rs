//! Reading the user's inputs: a preset name or a TOML file, for hardware and workloads.

use crate::Failure;
use models::spec::SystemSpec;
use std::path::Path;
use workloads::Workload;

/// Which kind of document a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Hardware,
    Workload,
    /// A minimal spec of one chiplet's memory.
    Memory,
    /// A minimal spec of one network.
    Noc,
}

fn read(path: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| Failure::Input(format!("{path}: cannot read the file: {e}")))
}

fn looks_like_a_file(arg: &str) -> bool {
    arg.ends_with(".toml") || arg.contains('/') || Path::new(arg).is_file()
}

/// A hardware spec from a preset name or a file path.
pub fn hardware(arg: &str) -> Result<SystemSpec, Failure> {
    if !looks_like_a_file(arg) && models::presets::preset(arg).is_some() {
        return models::presets::load_preset(arg).map_err(Failure::from);
    }
    if !looks_like_a_file(arg) {
        let known: Vec<&str> = models::presets::PRESETS.iter().map(|p| p.name).collect();
        return Err(Failure::Input(format!("`{arg}` is neither a hardware preset ({}) nor a file", known.join(", "))));
    }
    let files = |path: &std::path::Path| std::fs::read_to_string(path).map_err(|e| e.to_string());
    models::presets::load_system_with(arg, &read(arg)?, &files).map_err(Failure::from)
}

/// A chiplet's memory: from a preset, a whole system's file, or a minimal memory spec.
pub fn memory(arg: &str) -> Result<(String, models::spec::MemorySpec), Failure> {
    if looks_like_a_file(arg) {
        return models::parts::load_memory(arg, &read(arg)?).map_err(Failure::from);
    }
    models::parts::memory_of(&hardware(arg)?).map_err(Failure::from)
}

/// A chiplet's network: from a preset, a whole system's file, or a minimal network spec.
pub fn noc(arg: &str) -> Result<models::parts::NocInput, Failure> {
    if looks_like_a_file(arg) {
        return models::parts::load_noc(arg, &read(arg)?).map_err(Failure::from);
    }
    models::parts::noc_of(&hardware(arg)?).map_err(Failure::from)
}

/// A workload from a preset name or a file path.
pub fn workload(arg: &str) -> Result<Workload, Failure> {
    let presets = workloads::workload::WORKLOAD_PRESETS;
    if !looks_like_a_file(arg) && presets.iter().any(|(n, _, _)| *n == arg) {
        return workloads::workload_preset(arg).map_err(Failure::from);
    }
    if !looks_like_a_file(arg) {
        let known: Vec<&str> = presets.iter().map(|(n, _, _)| *n).collect();
        return Err(Failure::Input(format!("`{arg}` is neither a workload preset ({}) nor a file", known.join(", "))));
    }
    workload_file(arg, &read)
}

/// A workload file and the files it names (a model, a routing histogram, a
/// request trace or length file), each read by `read` relative to it.
pub fn workload_file(arg: &str, read: &dyn Fn(&str) -> Result<String, Failure>) -> Result<Workload, Failure> {
    // Files a workload names are relative to it, as a user writing them next to it expects.
    let beside =
        |file: &str| Path::new(arg).parent().unwrap_or(Path::new(".")).join(file).to_string_lossy().into_owned();
    let model_file = |file: &str| {
        let path = beside(file);
        let text =
            read(&path).map_err(|e| models::input::InputError::general(arg, format!("model = \"{file}\": {e}")))?;
        workloads::model::load_model_file(&path, &text)
    };
    let mut workload = workloads::workload::load_workload_with(arg, &read(arg)?, &model_file)?;
    // A file the workload names that cannot be read: the error names the field that names it.
    let named = |field: &str, file: &str| {
        let path = beside(file);
        read(&path).map(|text| (path, text)).map_err(|e| match e {
            Failure::Input(why) => Failure::Input(format!("{arg}: field `{field}` = \"{file}\": {why}")),
            other => other,
        })
    };
    if let workloads::workload::Routing::Histogram { file, counts } = &mut workload.spec.routing {
        let (path, text) = named("routing.file", file)?;
        let m = &workload.model;
        *counts = workloads::routing::parse_histogram(&path, &text, m.ffn.routed_experts, m.moe_layers())?;
    }
    if let Some(workloads::workload::Requests::Trace { file, rows, .. }) = &mut workload.spec.requests {
        let (path, text) = named("requests.file", file)?;
        *rows = traces::requests::parse(&path, &text)?.1;
    }
    if let Some(lengths) = workload.spec.requests.as_mut().and_then(|r| r.lengths_mut()) {
        let (path, text) = named("requests.lengths", &lengths.file)?;
        let requests = traces::requests::parse(&path, &text)?.1;
        lengths.rows = requests.iter().map(|r| (r.prompt_tokens, r.output_tokens)).collect();
    }
    Ok(workload)
}

/// A model config from a shipped name, a TOML file or a Hugging Face `config.json`.
pub fn model(arg: &str) -> Result<workloads::model::ModelConfig, Failure> {
    let shipped = workloads::model::MODEL_PRESETS;
    if !looks_like_a_file(arg) && shipped.iter().any(|(n, _)| *n == arg) {
        return workloads::model::model_preset(arg).map_err(Failure::from);
    }
    if !looks_like_a_file(arg) && !arg.ends_with(".json") {
        let known: Vec<&str> = shipped.iter().map(|(n, _)| *n).collect();
        return Err(Failure::Input(format!("`{arg}` is neither a shipped model ({}) nor a file", known.join(", "))));
    }
    workloads::model::load_model_file(arg, &read(arg)?).map_err(Failure::from)
}

/// Guess what a file holds from its top-level keys: a workload (`scenario`,
/// `model`, `plan`, `routing`, `requests` or `serving`), a minimal memory or network spec (`memory` or `noc`, no
/// `node`), or else a hardware spec; a file that does not parse is treated as
/// hardware, whose loader then reports the syntax error.
pub fn kind_of(path: &str) -> Result<Kind, Failure> {
    let text = read(path)?;
    let Ok(table) = toml::from_str::<toml::Table>(&text) else { return Ok(Kind::Hardware) };
    let has = |key: &str| table.contains_key(key);
    let workload_keys = ["scenario", "model", "plan", "routing", "requests", "serving"];
    Ok(if workload_keys.iter().any(|k| has(k)) {
        Kind::Workload
    } else if has("memory") && !has("node") {
        Kind::Memory
    } else if has("noc") && !has("node") {
        Kind::Noc
    } else {
        Kind::Hardware
    })
}
