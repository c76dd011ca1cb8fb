//! Every reader of user input, each taking raw bytes as a user's file would
//! give them. They must return, never panic: the fuzz targets
//! (`fuzz_targets/`) call them with libFuzzer's inputs, and
//! `tests/tests/fuzz_corpus.rs` calls them with every input of the corpora,
//! so a crash once found stays fixed.

use std::sync::OnceLock;

/// A reader: takes a file's bytes, and returns whatever they hold.
pub type Reader = fn(&[u8]);

/// Each fuzz target's name and reader.
pub const READERS: &[(&str, Reader)] = &[
    ("hardware_spec", hardware_spec),
    ("workload", workload),
    ("step_trace", step_trace),
    ("chakra", chakra),
    ("request_csv", request_csv),
    ("memory_trace", memory_trace),
    ("assembler", assembler),
    ("program_image", program_image),
    ("hf_config", hf_config),
];

/// A hardware spec: parsed, resolved against its base preset, validated.
pub fn hardware_spec(bytes: &[u8]) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = models::presets::load_system("fuzz.toml", text);
    }
}

/// A workload: parsed, validated, then checked on a system as `run` checks it.
pub fn workload(bytes: &[u8]) {
    static SYSTEM: OnceLock<models::spec::SystemSpec> = OnceLock::new();
    let system = SYSTEM.get_or_init(|| models::presets::load_preset("rebel-quad").expect("shipped presets load"));
    if let Ok(Ok(workload)) = std::str::from_utf8(bytes).map(|text| workloads::load_workload("fuzz.toml", text)) {
        let _ = workloads::check(system, &workload, 1);
    }
}

/// A step trace (JSON Lines): header and ops, read and validated.
pub fn step_trace(bytes: &[u8]) {
    let _ = traces::step::read("fuzz.jsonl", bytes);
}

/// A Chakra execution trace, `.et` protobuf or JSON, imported as one rank
/// and as two ranks that share it.
pub fn chakra(bytes: &[u8]) {
    if let Ok(nodes) = traces::chakra::parse_rank("fuzz.et", bytes) {
        let _ = traces::chakra::import(&[("fuzz.et".to_string(), nodes.clone())]);
        let _ = traces::chakra::import(&[("a.et".to_string(), nodes.clone()), ("b.et".to_string(), nodes)]);
    }
}

/// A request trace CSV, in npusim's columns or the Azure trace's.
pub fn request_csv(bytes: &[u8]) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = traces::requests::parse("fuzz.csv", text);
    }
}

/// A memory trace, one request a line, read up to its first error.
pub fn memory_trace(bytes: &[u8]) {
    for request in traces::memory::read(bytes) {
        if request.is_err() {
            break;
        }
    }
}

/// NPU assembly: parsed, checked against a 4 MiB scratchpad and 16 cores,
/// and encoded; the image must decode.
pub fn assembler(bytes: &[u8]) {
    if let Ok(Ok(assembly)) = std::str::from_utf8(bytes).map(isa::asm::parse) {
        let _ = assembly.check(4 << 20, 16);
        isa::binary::decode(&isa::binary::encode(&assembly.programs)).expect("an encoded image decodes");
    }
}

/// A binary program image, decoded; what decodes must encode back the same.
pub fn program_image(bytes: &[u8]) {
    if let Ok(programs) = isa::binary::decode(bytes) {
        let again = isa::binary::decode(&isa::binary::encode(&programs)).expect("an encoded image decodes");
        assert_eq!(again, programs, "an image re-encoded decodes to the same programs");
    }
}

/// A Hugging Face `config.json`, imported as a model config.
pub fn hf_config(bytes: &[u8]) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = workloads::model::load_model_file("config.json", text);
    }
}
