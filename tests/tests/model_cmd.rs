//! `npusim model show`: the figures a model config implies, from a shipped
//! name or an imported Hugging Face config.json.

use npusim_tests::{file, npusim};

fn shown(model: &str) -> serde_json::Value {
    let out = npusim(&["model", "show", model, "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    serde_json::from_str(&out.stdout).expect("model show --json prints JSON")
}

fn within(value: &serde_json::Value, expected: f64, tolerance: f64) -> bool {
    let v = value.as_f64().expect("a number");
    (v - expected).abs() <= tolerance * expected
}

#[test]
fn published_sizes_follow_from_the_configs() {
    for (model, total, active) in [
        ("axk1", 519e9, 33e9),
        ("deepseek-v3", 671e9, 37e9),
        ("llama3.1-70b", 70.6e9, 70.6e9),
        // The same from the shipped Hugging Face configs.
        ("../workloads/fixtures/hf/axk1.json", 519e9, 33e9),
        ("../workloads/fixtures/hf/deepseek-v3.json", 671e9, 37e9),
        ("../workloads/fixtures/hf/llama3.1-70b.json", 70.6e9, 70.6e9),
    ] {
        let f = shown(model);
        assert!(within(&f["total_parameters"], total, 0.01), "{model}: {}", f["total_parameters"]);
        assert!(within(&f["active_parameters"], active, 0.03), "{model}: {}", f["active_parameters"]);
    }
}

#[test]
fn kv_cache_and_flops_are_shown_in_text() {
    let out = npusim(&["model", "show", "axk1", "--context", "4096"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    // MLA's latent: (512 + 64) x 61 layers, one byte each in FP8.
    assert!(out.stdout.contains("per token in fp8                35136 bytes"), "{}", out.stdout);
    assert!(out.stdout.contains("FLOPs at a 4096-token context"), "{}", out.stdout);
    // Llama-3.1-70B: 2 x 8 KV heads x 128 x 80 layers x 2 bytes.
    let f = shown("llama3.1-70b");
    assert_eq!(f["kv_bytes_per_token"][1]["bytes"], 327_680);
}

#[test]
fn a_bad_config_json_is_located_and_exits_2() {
    let path = file(
        "config.json",
        "{\n  \"model_type\": \"mixtral\",\n  \"hidden_size\": 4096,\n  \"num_hidden_layers\": 32,\n  \"vocab_size\": 32000,\n  \"num_attention_heads\": 32,\n  \"intermediate_size\": 14336,\n  \"num_experts_per_tok\": 2\n}\n",
    );
    let out = npusim(&["model", "show", &path]);
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("config.json") && out.stderr.contains("num_local_experts"), "{}", out.stderr);
    let out = npusim(&["model", "show", "gpt-9"]);
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("neither a shipped model"), "{}", out.stderr);
}
