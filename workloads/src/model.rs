//! Transformer model configs and the figures derived from them.

use crate::workload::Phase;
use isa::Dtype;
use models::input::{self, InputError, Invalid};
use serde::{Deserialize, Serialize};

/// A decoder-only transformer: attention, then a dense or mixture-of-experts MLP, per layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub hidden: u32,
    pub layers: u32,
    pub vocab: u32,
    /// Whether the LM head shares the embedding's weights.
    pub tie_embeddings: bool,
    /// An RMSNorm after each MLP block (A.X K1).
    pub post_mlp_norm: bool,
    /// Multi-token-prediction layers (used for speculative decoding; not run unless asked).
    pub mtp_layers: u32,
    pub attention: Attention,
    pub ffn: Ffn,
}

/// The attention of every layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Attention {
    /// Multi-head Latent Attention: queries and keys/values pass through low-rank latents;
    /// the KV cache holds the `kv_lora_rank` latent plus the `qk_rope_dim` rotary key per token.
    Mla { heads: u32, q_lora_rank: u32, kv_lora_rank: u32, qk_rope_dim: u32, qk_nope_dim: u32, v_dim: u32 },
    /// Grouped-query attention: `heads` query heads share `kv_heads`
    /// key/value heads; `qkv_bias` adds biases to the q, k and v projections (Qwen).
    Gqa {
        heads: u32,
        kv_heads: u32,
        head_dim: u32,
        #[serde(default)]
        qkv_bias: bool,
    },
}

/// The MLP of every layer: the first `dense_layers` dense, the rest mixtures of experts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ffn {
    pub dense_layers: u32,
    pub dense_intermediate: u32,
    pub routed_experts: u32,
    pub shared_experts: u32,
    pub experts_per_token: u32,
    pub expert_intermediate: u32,
}

/// Parameter counts, split by where they live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Parameters {
    pub embedding: u64,
    pub lm_head: u64,
    /// Attention weights and norms, per layer.
    pub attention_per_layer: u64,
    /// Weights of one dense MLP.
    pub dense_mlp: u64,
    /// Weights of one routed expert.
    pub expert: u64,
    /// The router's weights, per MoE layer.
    pub router: u64,
    /// Norms outside attention, per layer.
    pub norms_per_layer: u64,
    pub total: u64,
    /// Parameters one token's forward pass touches.
    pub active: u64,
}

impl Attention {
    pub fn heads(&self) -> u32 {
        match *self {
            Attention::Mla { heads, .. } | Attention::Gqa { heads, .. } => heads,
        }
    }

    /// Weights per layer (projections and their norms).
    pub fn parameters(&self, hidden: u64) -> u64 {
        match *self {
            Attention::Mla { heads, q_lora_rank, kv_lora_rank, qk_rope_dim, qk_nope_dim, v_dim } => {
                let (h, q, kv) = (heads as u64, q_lora_rank as u64, kv_lora_rank as u64);
                let (rope, nope, v) = (qk_rope_dim as u64, qk_nope_dim as u64, v_dim as u64);
                let q_a = hidden * q + q;
                let q_b = q * h * (nope + rope);
                let kv_a = hidden * (kv + rope) + kv;
                let kv_b = kv * h * (nope + v);
                let o = h * v * hidden;
                q_a + q_b + kv_a + kv_b + o
            }
            Attention::Gqa { heads, kv_heads, head_dim, qkv_bias } => {
                let (h, kvh, d) = (heads as u64, kv_heads as u64, head_dim as u64);
                let bias = if qkv_bias { (h + 2 * kvh) * d } else { 0 };
                hidden * h * d + 2 * hidden * kvh * d + h * d * hidden + bias
            }
        }
    }

    /// Elements of KV cache one token adds per layer.
    pub fn kv_elements_per_token(&self) -> u64 {
        match *self {
            Attention::Mla { kv_lora_rank, qk_rope_dim, .. } => (kv_lora_rank + qk_rope_dim) as u64,
            Attention::Gqa { kv_heads, head_dim, .. } => 2 * (kv_heads * head_dim) as u64,
        }
    }
}

impl ModelConfig {
    pub fn moe_layers(&self) -> u32 {
        if self.ffn.routed_experts == 0 { 0 } else { self.layers - self.ffn.dense_layers.min(self.layers) }
    }

    pub fn dense_layers(&self) -> u32 {
        self.layers - self.moe_layers()
    }

    pub fn is_dense_layer(&self, layer: u32) -> bool {
        layer < self.ffn.dense_layers || self.ffn.routed_experts == 0
    }

    /// Parameter counts derived from the config (the MTP layers excluded, as in published totals).
    pub fn parameters(&self) -> Parameters {
        let h = self.hidden as u64;
        let f = &self.ffn;
        let embedding = self.vocab as u64 * h;
        let lm_head = if self.tie_embeddings { 0 } else { embedding };
        let attention_per_layer = self.attention.parameters(h);
        let dense_mlp = 3 * h * f.dense_intermediate as u64;
        let expert = 3 * h * f.expert_intermediate as u64;
        let router = f.routed_experts as u64 * h;
        let norms_per_layer = h * (2 + u64::from(self.post_mlp_norm));
        let moe_layers = self.moe_layers() as u64;
        let dense_layers = self.dense_layers() as u64;
        let per_moe_layer = (f.routed_experts + f.shared_experts) as u64 * expert + router;
        let total = embedding
            + lm_head
            + h // final norm
            + self.layers as u64 * (attention_per_layer + norms_per_layer)
            + dense_layers * dense_mlp
            + moe_layers * per_moe_layer;
        let active_moe = (f.experts_per_token + f.shared_experts) as u64 * expert + router;
        let active = embedding
            + lm_head
            + h
            + self.layers as u64 * (attention_per_layer + norms_per_layer)
            + dense_layers * dense_mlp
            + moe_layers * active_moe;
        Parameters {
            embedding,
            lm_head,
            attention_per_layer,
            dense_mlp,
            expert,
            router,
            norms_per_layer,
            total,
            active,
        }
    }

    /// Bytes of KV cache per token over all layers.
    pub fn kv_bytes_per_token(&self, dtype: Dtype) -> u64 {
        self.layers as u64 * self.attention.kv_elements_per_token() * dtype.bytes()
    }

    /// Weights one token multiplies by: the active parameters less the
    /// embedding (a lookup) and the norms (elementwise), the LM head included.
    pub fn matmul_parameters(&self) -> u64 {
        let p = self.parameters();
        let lm_head = if self.tie_embeddings { p.embedding } else { p.lm_head };
        p.active - p.embedding - p.lm_head + lm_head - self.hidden as u64 - self.layers as u64 * p.norms_per_layer
    }

    /// Forward FLOPs of one token: two per multiply-accumulate of the
    /// weights, plus attention's scores and weighted values over `context`
    /// earlier tokens. In decode the token attends to the whole context (MLA
    /// in its absorbed form: against the latent cache); in prefill of a
    /// `context`-token prompt, a token attends on average to `(context + 1) / 2`.
    pub fn flops_per_token(&self, phase: Phase, context: u64) -> f64 {
        let weights = 2.0 * self.matmul_parameters() as f64;
        let per_layer = match (&self.attention, phase) {
            (&Attention::Mla { heads, kv_lora_rank, qk_rope_dim, .. }, Phase::Decode) => {
                let (h, kv, rope) = (heads as f64, kv_lora_rank as f64, qk_rope_dim as f64);
                2.0 * h * (kv + rope) * context as f64 + 2.0 * h * kv * context as f64
            }
            (&Attention::Mla { heads, qk_rope_dim, qk_nope_dim, v_dim, .. }, Phase::Prefill) => {
                let seen = (context as f64 + 1.0) / 2.0;
                let h = heads as f64;
                2.0 * h * (qk_nope_dim + qk_rope_dim) as f64 * seen + 2.0 * h * v_dim as f64 * seen
            }
            (&Attention::Gqa { heads, head_dim, .. }, phase) => {
                let seen = if phase == Phase::Decode { context as f64 } else { (context as f64 + 1.0) / 2.0 };
                4.0 * heads as f64 * head_dim as f64 * seen
            }
        };
        weights + self.layers as f64 * per_layer
    }
}

/// Model configs shipped with npusim.
pub const MODEL_PRESETS: &[(&str, &str)] = &[
    ("axk1", include_str!("../presets/models/axk1.toml")),
    ("deepseek-v3", include_str!("../presets/models/deepseek-v3.toml")),
    ("llama3.1-70b", include_str!("../presets/models/llama3.1-70b.toml")),
    ("llama3.1-8b", include_str!("../presets/models/llama3.1-8b.toml")),
    ("llama2-70b", include_str!("../presets/models/llama2-70b.toml")),
    ("mixtral-8x7b", include_str!("../presets/models/mixtral-8x7b.toml")),
    ("qwen1.5-moe-a2.7b", include_str!("../presets/models/qwen1.5-moe-a2.7b.toml")),
];

pub fn model_preset_text(name: &str) -> Option<&'static str> {
    MODEL_PRESETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// What is wrong with a model config beyond its syntax.
pub fn validate_model(m: &ModelConfig) -> Vec<Invalid> {
    let mut out = Vec::new();
    for (path, v) in
        [("hidden", m.hidden), ("layers", m.layers), ("vocab", m.vocab), ("attention.heads", m.attention.heads())]
    {
        if v == 0 {
            out.push(Invalid::new(path, "expected at least 1, found 0"));
        }
    }
    let f = &m.ffn;
    let mut sizes = vec![
        ("hidden", m.hidden, 1 << 17),
        ("layers", m.layers, 1 << 10),
        ("vocab", m.vocab, 1 << 22),
        ("attention.heads", m.attention.heads(), 1 << 10),
        ("ffn.dense_intermediate", f.dense_intermediate, 1 << 20),
        ("ffn.expert_intermediate", f.expert_intermediate, 1 << 20),
        ("ffn.routed_experts", f.routed_experts, 1 << 12),
        ("ffn.shared_experts", f.shared_experts, 1 << 6),
    ];
    match m.attention {
        Attention::Mla { q_lora_rank, kv_lora_rank, qk_rope_dim, qk_nope_dim, v_dim, .. } => sizes.extend([
            ("attention.q_lora_rank", q_lora_rank, 1 << 14),
            ("attention.kv_lora_rank", kv_lora_rank, 1 << 14),
            ("attention.qk_rope_dim", qk_rope_dim, 1 << 12),
            ("attention.qk_nope_dim", qk_nope_dim, 1 << 12),
            ("attention.v_dim", v_dim, 1 << 12),
        ]),
        Attention::Gqa { head_dim, .. } => sizes.push(("attention.head_dim", head_dim, 1 << 12)),
    }
    // Far past any published model, and low enough that no parameter or
    // cache count derived from them wraps a 64-bit integer.
    for (path, v, limit) in sizes {
        if v > limit {
            out.push(Invalid::new(path, format!("expected at most {limit}, found {v}")));
        }
    }
    if f.routed_experts > 0 && (f.experts_per_token == 0 || f.experts_per_token > f.routed_experts) {
        out.push(Invalid::new(
            "ffn.experts_per_token",
            format!("expected 1 to {}, found {}", f.routed_experts, f.experts_per_token),
        ));
    }
    if let Attention::Gqa { heads, kv_heads, .. } = m.attention
        && (kv_heads == 0 || heads % kv_heads != 0)
    {
        out.push(Invalid::new(
            "attention.kv_heads",
            format!("expected a divisor of the {heads} heads, found {kv_heads}"),
        ));
    }
    out
}

/// Load a model config; `source` names it in errors.
pub fn load_model(source: &str, text: &str) -> Result<ModelConfig, InputError> {
    input::load(source, text, &model_preset_text, validate_model)
}

/// Load a model from a file's text: a Hugging Face `config.json` when it
/// looks like JSON, else a TOML model config. `source` names it in errors.
pub fn load_model_file(source: &str, text: &str) -> Result<ModelConfig, InputError> {
    if source.ends_with(".json") || text.trim_start().starts_with('{') {
        let stem = std::path::Path::new(source).file_stem().and_then(|s| s.to_str()).unwrap_or(source);
        crate::hf::import_hf_config(source, text, stem)
    } else {
        load_model(source, text)
    }
}

/// Load a shipped model config by name.
pub fn model_preset(name: &str) -> Result<ModelConfig, InputError> {
    let text = model_preset_text(name).ok_or_else(|| {
        let known: Vec<_> = MODEL_PRESETS.iter().map(|(n, _)| *n).collect();
        InputError::general(name, format!("no model named `{name}`; models are: {}", known.join(", ")))
    })?;
    load_model(&format!("model {name}"), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(actual: u64, expected: f64, tolerance: f64) -> bool {
        (actual as f64 - expected).abs() <= tolerance * expected
    }

    #[test]
    fn axk1_has_519b_total_and_33b_active() {
        let p = model_preset("axk1").unwrap().parameters();
        assert!(within(p.total, 519e9, 0.01), "{}", p.total);
        assert!(within(p.active, 33e9, 0.03), "{}", p.active);
        // Exactly the Hugging Face card's 518,983,059,456: reference.md C's own
        // sum (518,983,070,976) also counted the 60 x 192 router-bias buffers.
        assert_eq!(p.total, 518_983_059_456);
        // q_a 11,011,584 + q_b 18,874,368 + kv_a 4,129,280 + kv_b 8,388,608 + o 58,720,256 (norms included).
        assert_eq!(p.attention_per_layer, 101_124_096);
    }

    #[test]
    fn deepseek_v3_has_671b_total_and_37b_active() {
        let p = model_preset("deepseek-v3").unwrap().parameters();
        assert!(within(p.total, 671e9, 0.01), "{}", p.total);
        assert!(within(p.active, 37e9, 0.03), "{}", p.active);
    }

    #[test]
    fn llama_70b_has_70b() {
        let p = model_preset("llama3.1-70b").unwrap().parameters();
        assert!(within(p.total, 70.6e9, 0.01), "{}", p.total);
        assert_eq!(p.total, p.active);
    }

    #[test]
    fn the_smaller_models_have_their_published_sizes() {
        for (name, total, active) in [
            ("llama3.1-8b", 8.03e9, 8.03e9),
            ("llama2-70b", 68.98e9, 68.98e9),
            ("mixtral-8x7b", 46.7e9, 12.9e9),
            ("qwen1.5-moe-a2.7b", 14.3e9, 2.7e9),
        ] {
            let p = model_preset(name).unwrap().parameters();
            assert!(within(p.total, total, 0.01), "{name}: {}", p.total);
            assert!(within(p.active, active, 0.03), "{name}: {}", p.active);
        }
    }

    #[test]
    fn a_dense_token_costs_two_flops_per_weight_plus_attention() {
        let m = model_preset("llama3.1-8b").unwrap();
        let p = m.parameters();
        // Everything but the embedding lookup and the norms is multiplied.
        let weights = p.total - p.embedding - 4096 - 32 * p.norms_per_layer;
        assert_eq!(m.matmul_parameters(), weights);
        // At context 0 only the weights count; each more token of context adds 4 x heads x head_dim per layer.
        assert_eq!(m.flops_per_token(Phase::Decode, 0), 2.0 * weights as f64);
        let step = m.flops_per_token(Phase::Decode, 1001) - m.flops_per_token(Phase::Decode, 1000);
        assert!((step - 32.0 * 4.0 * 32.0 * 128.0).abs() < 1e-3, "{step}");
    }

    #[test]
    fn mla_latent_cache_is_small() {
        let m = model_preset("axk1").unwrap();
        // (512 + 64) x 61 layers x 2 bytes = 68.6 KiB per token in BF16 (reference.md C).
        assert_eq!(m.kv_bytes_per_token(Dtype::Bf16), 70_272);
    }
}
