//! The figures a model config implies, as `npusim model show` prints them:
//! parameters by part, weight bytes per dtype, KV-cache bytes per token and
//! FLOPs per token. Everything here is arithmetic on the config; nothing is
//! simulated.

use crate::model::{Attention, ModelConfig};
use crate::workload::Phase;
use isa::Dtype;
use serde::Serialize;

/// Derived figures of one model at one context length.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelFigures {
    pub name: String,
    pub description: String,
    pub total_parameters: u64,
    pub active_parameters: u64,
    /// Parameters by part, over all layers; they sum to the total.
    pub breakdown: Vec<Part>,
    /// Multi-token-prediction layers, left out of the totals as in published counts.
    pub mtp_layers: u32,
    /// Bytes of all weights stored in each dtype.
    pub weight_bytes: Vec<DtypeBytes>,
    /// What one token's KV cache holds: full keys and values, or MLA's latent.
    pub kv_cache_form: &'static str,
    /// Bytes one token adds to the KV cache, over all layers, in each dtype.
    pub kv_bytes_per_token: Vec<DtypeBytes>,
    /// The context the FLOPs figures are for.
    pub context_tokens: u32,
    /// Forward FLOPs of one decoded token with `context_tokens` tokens before it.
    pub decode_flops_per_token: f64,
    /// Forward FLOPs per token of prefilling a `context_tokens`-token prompt (on average over its tokens).
    pub prefill_flops_per_token: f64,
    /// Forward FLOPs of the whole prefill.
    pub prefill_flops: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Part {
    pub part: &'static str,
    pub parameters: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DtypeBytes {
    pub dtype: Dtype,
    pub bytes: u64,
}

/// The storage dtypes figures are given for.
const DTYPES: [Dtype; 3] = [Dtype::Fp8, Dtype::Bf16, Dtype::Fp32];

impl ModelFigures {
    pub fn of(model: &ModelConfig, context_tokens: u32) -> ModelFigures {
        let p = model.parameters();
        let f = &model.ffn;
        let (layers, moe) = (model.layers as u64, model.moe_layers() as u64);
        let breakdown = vec![
            Part { part: "embedding", parameters: p.embedding },
            Part { part: "lm_head", parameters: p.lm_head },
            Part { part: "attention", parameters: layers * p.attention_per_layer },
            Part { part: "dense_mlp", parameters: model.dense_layers() as u64 * p.dense_mlp },
            Part { part: "routed_experts", parameters: moe * f.routed_experts as u64 * p.expert },
            Part { part: "shared_experts", parameters: moe * f.shared_experts as u64 * p.expert },
            Part { part: "router", parameters: moe * p.router },
            Part { part: "norms", parameters: layers * p.norms_per_layer + model.hidden as u64 },
        ];
        let context = context_tokens as u64;
        let prefill_per_token = model.flops_per_token(Phase::Prefill, context);
        ModelFigures {
            name: model.name.clone(),
            description: model.description.clone(),
            total_parameters: p.total,
            active_parameters: p.active,
            breakdown,
            mtp_layers: model.mtp_layers,
            weight_bytes: DTYPES.iter().map(|&dtype| DtypeBytes { dtype, bytes: p.total * dtype.bytes() }).collect(),
            kv_cache_form: match model.attention {
                Attention::Mla { .. } => "MLA latent (kv_lora_rank + qk_rope_dim per layer)",
                Attention::Gqa { .. } => "keys and values (2 x kv_heads x head_dim per layer)",
            },
            kv_bytes_per_token: DTYPES
                .iter()
                .map(|&dtype| DtypeBytes { dtype, bytes: model.kv_bytes_per_token(dtype) })
                .collect(),
            context_tokens,
            decode_flops_per_token: model.flops_per_token(Phase::Decode, context),
            prefill_flops_per_token: prefill_per_token,
            prefill_flops: prefill_per_token * context as f64,
        }
    }

    /// The figures as aligned text, with units.
    pub fn text(&self) -> String {
        let mut out = format!("model {}: {}\n", self.name, self.description);
        let b = |n: u64| format!("{:.2} B", n as f64 / 1e9);
        out +=
            &format!("  parameters, total             {:>14}  ({})\n", b(self.total_parameters), self.total_parameters);
        out += &format!(
            "  parameters, active per token  {:>14}  ({})\n",
            b(self.active_parameters),
            self.active_parameters
        );
        for part in &self.breakdown {
            out += &format!("    {:26} {:>14}\n", part.part, b(part.parameters));
        }
        if self.mtp_layers > 0 {
            out += &format!("  multi-token-prediction layers {:>14}  (not in the totals)\n", self.mtp_layers);
        }
        for w in &self.weight_bytes {
            out +=
                &format!("  weights in {:18} {:>14}\n", w.dtype.to_string(), format!("{:.1} GB", w.bytes as f64 / 1e9));
        }
        out += &format!("  KV cache: {}\n", self.kv_cache_form);
        for kv in &self.kv_bytes_per_token {
            out += &format!("    per token in {:15} {:>14}\n", kv.dtype.to_string(), format!("{} bytes", kv.bytes));
        }
        let g = |f: f64| format!("{:.2} GFLOP", f / 1e9);
        out += &format!("  FLOPs at a {}-token context\n", self.context_tokens);
        out += &format!("    decode, per token          {:>14}\n", g(self.decode_flops_per_token));
        out += &format!("    prefill, per token         {:>14}\n", g(self.prefill_flops_per_token));
        out += &format!("    prefill, whole prompt      {:>14}\n", format!("{:.2} TFLOP", self.prefill_flops / 1e12));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::model_preset;

    #[test]
    fn the_breakdown_sums_to_the_total() {
        for (name, _) in crate::model::MODEL_PRESETS {
            let f = ModelFigures::of(&model_preset(name).unwrap(), 2048);
            assert_eq!(f.breakdown.iter().map(|p| p.parameters).sum::<u64>(), f.total_parameters, "{name}");
            assert!(f.prefill_flops_per_token < f.decode_flops_per_token, "{name}: a prompt token sees less context");
        }
    }
}
