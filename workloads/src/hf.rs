//! Import of a Hugging Face `config.json` into a [`ModelConfig`], for the
//! families npusim models: `llama`, `mixtral`, `qwen2_moe`, `deepseek_v3`
//! and `axk1` (DeepSeek-V3 with an RMSNorm after each MLP block).
//!
//! Only the fields that shape the compute and the memory are read; the rest
//! (tokeniser ids, RoPE scaling, dropout) are ignored. A field the family
//! needs but the file lacks, or one with the wrong type, is an error naming
//! the file, the line and column and the field.

use crate::model::{Attention, Ffn, ModelConfig, validate_model};
use models::input::{InputError, Invalid, Problem};
use serde::Deserialize;

/// The fields of a `config.json` npusim reads; all families share the names.
#[derive(Debug, Deserialize)]
struct HfConfig {
    model_type: String,
    #[serde(rename = "_name_or_path")]
    name_or_path: Option<String>,
    hidden_size: u32,
    num_hidden_layers: u32,
    vocab_size: u32,
    num_attention_heads: u32,
    num_key_value_heads: Option<u32>,
    head_dim: Option<u32>,
    intermediate_size: Option<u32>,
    #[serde(default)]
    tie_word_embeddings: bool,
    attention_bias: Option<bool>,
    // Mixtral.
    num_local_experts: Option<u32>,
    num_experts_per_tok: Option<u32>,
    // Qwen2-MoE.
    num_experts: Option<u32>,
    moe_intermediate_size: Option<u32>,
    shared_expert_intermediate_size: Option<u32>,
    decoder_sparse_step: Option<u32>,
    mlp_only_layers: Option<Vec<u32>>,
    // DeepSeek-V3 and A.X K1.
    n_routed_experts: Option<u32>,
    n_shared_experts: Option<u32>,
    first_k_dense_replace: Option<u32>,
    q_lora_rank: Option<u32>,
    kv_lora_rank: Option<u32>,
    qk_rope_head_dim: Option<u32>,
    qk_nope_head_dim: Option<u32>,
    v_head_dim: Option<u32>,
    num_nextn_predict_layers: Option<u32>,
}

/// The `model_type`s import understands.
pub const FAMILIES: &[&str] = &["llama", "mixtral", "qwen2_moe", "deepseek_v3", "axk1"];

/// Import `text`, a `config.json`, named `source` in errors. The model is
/// named after `_name_or_path` when present, else `fallback_name`.
pub fn import_hf_config(source: &str, text: &str, fallback_name: &str) -> Result<ModelConfig, InputError> {
    let hf: HfConfig = models::input::load_json(source, text, 1)?;
    let located = |problems: Vec<Invalid>| InputError {
        problems: problems.into_iter().map(|p| locate(source, text, p)).collect(),
    };
    let model = convert(&hf, fallback_name).map_err(|p| located(vec![p]))?;
    let problems = validate_model(&model);
    if problems.is_empty() { Ok(model) } else { Err(located(problems)) }
}

fn need(value: Option<u32>, field: &str, family: &str) -> Result<u32, Invalid> {
    value.ok_or_else(|| {
        Invalid::new(field, format!("expected a number (model_type \"{family}\" needs it), found nothing"))
    })
}

fn convert(hf: &HfConfig, fallback_name: &str) -> Result<ModelConfig, Invalid> {
    let family = hf.model_type.as_str();
    let name = hf.name_or_path.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| fallback_name.to_string());
    let gqa = |qkv_bias| {
        let heads = hf.num_attention_heads;
        Attention::Gqa {
            heads,
            kv_heads: hf.num_key_value_heads.unwrap_or(heads),
            head_dim: hf.head_dim.unwrap_or(hf.hidden_size / heads.max(1)),
            qkv_bias,
        }
    };
    let (attention, ffn, post_mlp_norm, mtp_layers) = match family {
        "llama" => {
            let ffn = Ffn {
                dense_layers: hf.num_hidden_layers,
                dense_intermediate: need(hf.intermediate_size, "intermediate_size", family)?,
                routed_experts: 0,
                shared_experts: 0,
                experts_per_token: 0,
                expert_intermediate: 0,
            };
            (gqa(hf.attention_bias.unwrap_or(false)), ffn, false, 0)
        }
        "mixtral" => {
            let ffn = Ffn {
                dense_layers: 0,
                dense_intermediate: 0,
                routed_experts: need(hf.num_local_experts, "num_local_experts", family)?,
                shared_experts: 0,
                experts_per_token: need(hf.num_experts_per_tok, "num_experts_per_tok", family)?,
                expert_intermediate: need(hf.intermediate_size, "intermediate_size", family)?,
            };
            (gqa(false), ffn, false, 0)
        }
        "qwen2_moe" => {
            if hf.decoder_sparse_step.unwrap_or(1) != 1 {
                return Err(Invalid::new("decoder_sparse_step", "expected 1 (every layer a MoE layer)"));
            }
            if hf.mlp_only_layers.as_ref().is_some_and(|l| !l.is_empty()) {
                return Err(Invalid::new("mlp_only_layers", "expected an empty list (every layer a MoE layer)"));
            }
            let expert = need(hf.moe_intermediate_size, "moe_intermediate_size", family)?;
            let shared = hf.shared_expert_intermediate_size.unwrap_or(0);
            if expert == 0 || !shared.is_multiple_of(expert) {
                return Err(Invalid::new(
                    "shared_expert_intermediate_size",
                    format!("expected a multiple of moe_intermediate_size ({expert}), found {shared}"),
                ));
            }
            let ffn = Ffn {
                dense_layers: 0,
                dense_intermediate: 0,
                routed_experts: need(hf.num_experts, "num_experts", family)?,
                shared_experts: shared / expert,
                experts_per_token: need(hf.num_experts_per_tok, "num_experts_per_tok", family)?,
                expert_intermediate: expert,
            };
            // Qwen2 attention always has q, k and v biases.
            (gqa(true), ffn, false, 0)
        }
        "deepseek_v3" | "axk1" => {
            let attention = Attention::Mla {
                heads: hf.num_attention_heads,
                q_lora_rank: need(hf.q_lora_rank, "q_lora_rank", family)?,
                kv_lora_rank: need(hf.kv_lora_rank, "kv_lora_rank", family)?,
                qk_rope_dim: need(hf.qk_rope_head_dim, "qk_rope_head_dim", family)?,
                qk_nope_dim: need(hf.qk_nope_head_dim, "qk_nope_head_dim", family)?,
                v_dim: need(hf.v_head_dim, "v_head_dim", family)?,
            };
            let ffn = Ffn {
                dense_layers: need(hf.first_k_dense_replace, "first_k_dense_replace", family)?,
                dense_intermediate: need(hf.intermediate_size, "intermediate_size", family)?,
                routed_experts: need(hf.n_routed_experts, "n_routed_experts", family)?,
                shared_experts: hf.n_shared_experts.unwrap_or(0),
                experts_per_token: need(hf.num_experts_per_tok, "num_experts_per_tok", family)?,
                expert_intermediate: need(hf.moe_intermediate_size, "moe_intermediate_size", family)?,
            };
            // A.X K1's architecture adds the post-MLP RMSNorm (reference.md C).
            (attention, ffn, family == "axk1", hf.num_nextn_predict_layers.unwrap_or(0))
        }
        other => {
            return Err(Invalid::new(
                "model_type",
                format!("expected one of {}, found \"{other}\"", FAMILIES.join(", ")),
            ));
        }
    };
    Ok(ModelConfig {
        name,
        description: format!("imported from a Hugging Face config (model_type \"{family}\")"),
        hidden: hf.hidden_size,
        layers: hf.num_hidden_layers,
        vocab: hf.vocab_size,
        tie_embeddings: hf.tie_word_embeddings,
        post_mlp_norm,
        mtp_layers,
        attention,
        ffn,
    })
}

/// Place a problem at the line and column of its key in the JSON text, if the key is there.
fn locate(source: &str, text: &str, invalid: Invalid) -> Problem {
    let key = invalid.path.split('.').next_back().unwrap_or_default();
    let at = text.find(&format!("\"{key}\"")).filter(|_| !key.is_empty());
    let (line, column) = match at {
        Some(offset) => {
            let before = &text[..offset];
            let line = before.matches('\n').count() + 1;
            let column = offset - before.rfind('\n').map_or(0, |n| n + 1) + 1;
            (Some(line), Some(column))
        }
        None => (None, None),
    };
    Problem { source: source.into(), line, column, path: invalid.path, message: invalid.message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::model_preset;

    /// Shipped configs of every family; each must import to the preset of the same model.
    const FIXTURES: &[(&str, &str, &str)] = &[
        ("axk1", "axk1.json", include_str!("../fixtures/hf/axk1.json")),
        ("deepseek-v3", "deepseek-v3.json", include_str!("../fixtures/hf/deepseek-v3.json")),
        ("llama3.1-70b", "llama3.1-70b.json", include_str!("../fixtures/hf/llama3.1-70b.json")),
        ("llama3.1-8b", "llama3.1-8b.json", include_str!("../fixtures/hf/llama3.1-8b.json")),
        ("llama2-70b", "llama2-70b.json", include_str!("../fixtures/hf/llama2-70b.json")),
        ("mixtral-8x7b", "mixtral-8x7b.json", include_str!("../fixtures/hf/mixtral-8x7b.json")),
        ("qwen1.5-moe-a2.7b", "qwen1.5-moe-a2.7b.json", include_str!("../fixtures/hf/qwen1.5-moe-a2.7b.json")),
    ];

    #[test]
    fn every_fixture_imports_to_its_preset() {
        for (preset, file, text) in FIXTURES {
            let imported = import_hf_config(file, text, preset).unwrap_or_else(|e| panic!("{file}: {e}"));
            let shipped = model_preset(preset).unwrap();
            let strip = |m: &ModelConfig| ModelConfig { name: String::new(), description: String::new(), ..m.clone() };
            assert_eq!(strip(&imported), strip(&shipped), "{file}");
            assert_eq!(imported.parameters(), shipped.parameters(), "{file}");
        }
    }

    #[test]
    fn a_missing_family_field_is_named_and_located() {
        let text = "{\n  \"model_type\": \"deepseek_v3\",\n  \"hidden_size\": 7168,\n  \"num_hidden_layers\": 61,\n  \
                    \"vocab_size\": 129280,\n  \"num_attention_heads\": 128\n}\n";
        let e = import_hf_config("c.json", text, "x").unwrap_err();
        assert_eq!(e.problems[0].path, "q_lora_rank");
        assert!(e.to_string().contains("model_type \"deepseek_v3\" needs it"), "{e}");
    }

    #[test]
    fn a_wrong_type_is_located() {
        let text = "{\n  \"model_type\": \"llama\",\n  \"hidden_size\": \"big\"\n}";
        let e = import_hf_config("c.json", text, "x").unwrap_err();
        let p = &e.problems[0];
        assert_eq!((p.path.as_str(), p.line), ("hidden_size", Some(3)));
        assert!(p.message.contains("expected u32"), "{}", p.message);
    }

    #[test]
    fn an_unknown_family_is_an_error_at_its_line() {
        let text = include_str!("../fixtures/hf/llama3.1-8b.json").replace("\"llama\"", "\"gpt2\"");
        let e = import_hf_config("c.json", &text, "x").unwrap_err();
        assert_eq!(e.problems[0].path, "model_type");
        assert!(e.problems[0].line.is_some());
        assert!(e.to_string().contains("found \"gpt2\""), "{e}");
    }
}
