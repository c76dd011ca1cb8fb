//! A workload file: which model, the scenario (batch, lengths, dtypes), the
//! parallel plan and the MoE routing model.

use crate::lengths::Length;
use crate::model::{ModelConfig, model_preset};
use isa::Dtype;
use models::input::{self, InputError, Invalid};
use models::units::{Bytes, Duration};
use serde::{Deserialize, Serialize};
use sim_core::Time;

/// A workload: what to run and how to spread it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// A model config shipped with npusim (`npusim presets` lists them), or a model
    /// file (`.toml`, or a Hugging Face `config.json`) relative to the workload file.
    pub model: String,
    pub scenario: Scenario,
    #[serde(default)]
    pub plan: Plan,
    #[serde(default)]
    pub routing: Routing,
    /// Where requests come from; absent: `scenario.batch` requests, all at time zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Requests>,
    /// How the host runtime batches requests.
    #[serde(default, skip_serializing_if = "Serving::is_default")]
    pub serving: Serving,
}

/// An arrival process, or a recorded request trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "arrivals", rename_all = "lowercase", deny_unknown_fields)]
pub enum Requests {
    /// `count` requests, all at time zero, served `scenario.batch` at a time
    /// (MLPerf's Offline scenario).
    Offline {
        count: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lengths: Option<LengthFile>,
    },
    /// `count` requests with exponential gaps at `rate` per second; lengths
    /// drawn from the scenario's `context_tokens` and `output_tokens`, or
    /// from a length file.
    Poisson {
        rate: f64,
        count: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lengths: Option<LengthFile>,
    },
    /// Gamma-distributed gaps at `rate` per second with coefficient of
    /// variation `cv` (above 1: burstier than Poisson).
    Gamma {
        rate: f64,
        cv: f64,
        count: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lengths: Option<LengthFile>,
    },
    /// A CSV beside the workload: `arrival_s,prompt_tokens,output_tokens`, or
    /// the Azure LLM inference trace's `TIMESTAMP,ContextTokens,GeneratedTokens`.
    Trace {
        file: String,
        /// Only the first `count` requests of the file.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
        /// The requests read from the file, filled in when the workload is loaded from a file.
        #[serde(skip)]
        rows: Vec<TraceRequest>,
    },
}

/// An empirical length distribution: a CSV beside the workload whose lines
/// each give a request's prompt and output tokens
/// (`prompt_tokens,output_tokens`, or any request trace, its arrivals
/// ignored). Each request takes the lengths of a line drawn at random from
/// the run's seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct LengthFile {
    pub file: String,
    /// `(prompt, output)` tokens per line, filled in when the workload is loaded from a file.
    pub rows: Vec<(u32, u32)>,
}

impl From<String> for LengthFile {
    fn from(file: String) -> Self {
        LengthFile { file, rows: Vec::new() }
    }
}

impl From<LengthFile> for String {
    fn from(l: LengthFile) -> Self {
        l.file
    }
}

impl Requests {
    /// The length file its lengths are drawn from, if any.
    pub fn lengths_mut(&mut self) -> Option<&mut LengthFile> {
        match self {
            Requests::Offline { lengths, .. } | Requests::Poisson { lengths, .. } | Requests::Gamma { lengths, .. } => {
                lengths.as_mut()
            }
            Requests::Trace { .. } => None,
        }
    }
}

/// One request of a request trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceRequest {
    /// Arrival, from the first request of the trace.
    pub arrival: Time,
    pub prompt_tokens: u32,
    pub output_tokens: u32,
}

/// The serving runtime's batching policy and the service-level objective.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Serving {
    /// Tokens one step computes at most: prompts longer than what is left of
    /// it are prefilled in chunks over several steps (chunked prefill).
    /// Absent: whole prompts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_budget: Option<u32>,
    /// Tokens per KV-cache block (the unit of allocation).
    #[serde(default = "default_block", skip_serializing_if = "is_default_block")]
    pub kv_block_tokens: u32,
    /// Device memory per chiplet given to the KV cache. Absent: with
    /// `[requests]`, all that the weights leave; without, what the batch needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_memory: Option<Bytes>,
    /// Goodput counts the requests that meet both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<Slo>,
    /// Latencies (TTFT, TPOT, ITL, end to end, goodput) count only the
    /// requests arriving this long after the start: a server run fills up
    /// for several request lifetimes before its latencies settle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Duration>,
    /// Latencies leave out the requests arriving within this long of the
    /// last arrival: once arrivals stop the system drains, and a run cut
    /// short to finish in minutes would otherwise count its emptying batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<Duration>,
    /// The most requests a run may serve: each keeps its record and token
    /// times, so a count far past any benchmark's would exhaust memory
    /// before it finished. Raise it for a longer run.
    #[serde(default = "default_max_requests", skip_serializing_if = "is_default_max_requests")]
    pub max_requests: u32,
}

/// About 1 M requests: 40 times MLPerf's largest data set.
fn default_max_requests() -> u32 {
    1 << 20
}

fn is_default_max_requests(n: &u32) -> bool {
    *n == default_max_requests()
}

/// A service-level objective per request.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// Time to first token at most.
    pub ttft: Duration,
    /// Time per output token (after the first) at most.
    pub tpot: Duration,
}

fn default_block() -> u32 {
    16
}

fn is_default_block(n: &u32) -> bool {
    *n == 16
}

impl Default for Serving {
    fn default() -> Self {
        Serving {
            token_budget: None,
            kv_block_tokens: default_block(),
            kv_memory: None,
            slo: None,
            warmup: None,
            cooldown: None,
            max_requests: default_max_requests(),
        }
    }
}

impl Serving {
    fn is_default(&self) -> bool {
        *self == Serving::default()
    }

    /// The arrival times whose requests the latencies count, given the last
    /// arrival: from the warm-up to the cool-down before the last arrival;
    /// `None` where the cool-down is longer than the arrivals last.
    pub fn latency_window(&self, last_arrival: Time) -> Option<std::ops::RangeInclusive<Time>> {
        let from = self.warmup.map_or(Time::ZERO, |d| d.time());
        let until = match self.cooldown {
            Some(d) if d.time() > last_arrival => return None,
            Some(d) => last_arrival - d.time(),
            None => last_arrival,
        };
        Some(from..=until)
    }
}

/// Which phase of inference the steps simulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Requests arrive with `context_tokens` already in the KV cache and decode `output_tokens` each.
    Decode,
    /// Requests arrive with `context_tokens` of prompt: one prefill step, then decoding.
    Prefill,
}

/// Batch, lengths and precisions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub phase: Phase,
    /// Requests served together.
    pub batch: u32,
    /// Tokens of context each request has (prompt, or KV cache already filled):
    /// a count, or a distribution drawn per request from the run's seed.
    pub context_tokens: Length,
    /// Tokens each request generates: a count or a distribution.
    pub output_tokens: Length,
    pub weight_dtype: Dtype,
    pub activation_dtype: Dtype,
    pub kv_dtype: Dtype,
    /// Ops computed in another dtype than `activation_dtype`.
    #[serde(default, skip_serializing_if = "OpDtypes::is_default")]
    pub op_dtypes: OpDtypes,
    /// Where the next token is drawn from the logits.
    #[serde(default)]
    pub sampling: Sampling,
    /// How the next token is chosen: `greedy`, `top_k` or `top_p`.
    #[serde(default)]
    pub decoding: Decoding,
    /// Candidates kept per request by top-k (and by each device when sampling there).
    #[serde(default = "default_top_k")]
    pub top_k: u32,
    /// The probability mass top-p keeps. It does not change the host's work
    /// (sorting every candidate dominates it), so it only describes the run.
    #[serde(default = "default_top_p")]
    pub top_p: f64,
    /// Multi-token prediction: the model's MTP layer drafts tokens that the
    /// next step verifies. Off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtp: Option<Mtp>,
}

/// Dtypes of particular ops, where a serving system mixes them (DeepSeek
/// serves FP8 GEMMs beside BF16 attention). Absent: `activation_dtype`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpDtypes {
    /// The inputs of every GEMM: projections, MLPs, experts, the LM head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gemm: Option<Dtype>,
    /// Attention's queries and its two products (the KV cache keeps `kv_dtype`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<Dtype>,
}

impl OpDtypes {
    fn is_default(&self) -> bool {
        *self == OpDtypes::default()
    }
}

impl Scenario {
    /// The dtype of a GEMM's inputs.
    pub fn gemm_dtype(&self) -> Dtype {
        self.op_dtypes.gemm.unwrap_or(self.activation_dtype)
    }

    /// The dtype attention computes in.
    pub fn attention_dtype(&self) -> Dtype {
        self.op_dtypes.attention.unwrap_or(self.activation_dtype)
    }
}

/// Speculative decoding with the model's own multi-token-prediction layer.
/// Each step runs the MTP layer `draft_tokens` times after the main model;
/// the next step verifies the drafts with the main model, which then
/// computes `1 + draft_tokens` positions per request.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mtp {
    pub draft_tokens: u32,
    /// Probability that a draft is accepted, given the drafts before it
    /// were (DeepSeek-V3 reports 0.85 to 0.9 for its first draft).
    pub acceptance: f64,
}

fn default_top_k() -> u32 {
    50
}

fn default_top_p() -> f64 {
    0.9
}

/// How the next token is chosen from a request's logits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decoding {
    /// The most likely token.
    Greedy,
    /// A draw among the `top_k` most likely.
    #[default]
    TopK,
    /// A draw among the fewest most likely tokens whose probabilities reach `top_p`.
    TopP,
}

impl Scenario {
    /// Candidates each device keeps when sampling there: one for greedy, else `top_k`.
    pub fn device_candidates(&self) -> u32 {
        match self.decoding {
            Decoding::Greedy => 1,
            Decoding::TopK | Decoding::TopP => self.top_k,
        }
    }
}

/// Where sampling happens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampling {
    /// Every chiplet sends its slice of the logits to the host, which samples over the whole vocabulary.
    #[default]
    Host,
    /// Every chiplet keeps the `top_k` best of its slice and sends only those; the host picks among them.
    Device,
}

/// How the model is spread over the system's chiplets (its devices).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Pipeline stages: the devices are cut into this many groups of
    /// consecutive devices, each holding a consecutive run of layers.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub pipeline_parallel: u32,
    /// Micro-batches a step's requests are cut into, so that the stages
    /// work on different ones at once; 0 = one per stage.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub micro_batches: u32,
    /// Devices of a stage that split each attention (and dense MLP) layer by
    /// heads; the rest of the stage's devices hold data-parallel replicas.
    /// 1 = pure data parallel.
    #[serde(default = "one")]
    pub attention_tensor_parallel: u32,
    /// Devices of a stage that share one copy of its routed experts; 0 = all of the stage's devices.
    #[serde(default)]
    pub expert_parallel: u32,
    #[serde(default)]
    pub expert_placement: ExpertPlacement,
    /// Ops the leading host's CPU runs instead of the chiplets, their
    /// inputs and outputs crossing PCIe.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_ops: Vec<HostOp>,
    /// Data-parallel replicas step together, one step of every replica at
    /// a time, where they could step on their own (as engines that
    /// synchronise every step do). Replicas joined by an expert all-to-all
    /// or by pipeline stages always step together.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lockstep_replicas: bool,
}

/// Ops a plan can move to the host CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostOp {
    /// Each MoE layer's router (scores and top-k): hidden states to the
    /// host, expert choices back.
    MoeRouter,
    /// Attention of decoding requests over a KV cache held in host DRAM:
    /// queries to the host, attention outputs back. The KV cache then takes
    /// no device memory.
    DecodeAttention,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            pipeline_parallel: 1,
            micro_batches: 0,
            attention_tensor_parallel: 1,
            expert_parallel: 0,
            expert_placement: ExpertPlacement::Balanced,
            host_ops: Vec::new(),
            lockstep_replicas: false,
        }
    }
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn one() -> u32 {
    1
}

/// How tokens choose experts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "distribution", rename_all = "lowercase", deny_unknown_fields)]
#[derive(Default)]
pub enum Routing {
    /// Every expert equally likely.
    #[default]
    Uniform,
    /// Expert `i` (after a seeded shuffle) chosen with weight `1 / (i + 1)^exponent`.
    Zipf { exponent: f64 },
    /// Recorded per-layer token counts: a text file, one line per MoE layer,
    /// one count per routed expert (path relative to the workload file).
    Histogram {
        file: String,
        /// The file's counts, filled in when the workload is loaded from a file.
        #[serde(skip)]
        counts: Vec<Vec<f64>>,
    },
}

/// Where each MoE layer's routed experts live within an expert group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ExpertPlacement {
    /// Expert `e` on position `e mod expert_parallel` of its group.
    #[default]
    Balanced,
    /// Experts spread by their expected load (from the routing model), the
    /// heaviest first onto the least-loaded chiplet, each chiplet holding at
    /// most its share of experts.
    LoadAware,
    /// The `experts` most loaded experts copied onto every chiplet, so their
    /// tokens stay where they are; the rest placed load-aware.
    ReplicatedHot { experts: u32 },
}

/// A loaded workload: its spec and the model it names.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    pub spec: WorkloadSpec,
    pub model: ModelConfig,
}

impl WorkloadSpec {
    /// Every field that names a file, relative to the workload file: the
    /// field's path and its value, which the caller may rewrite.
    pub fn named_files_mut(&mut self) -> Vec<(&'static str, &mut String)> {
        let mut files = Vec::new();
        if names_a_file(&self.model) {
            files.push(("model", &mut self.model));
        }
        if let Routing::Histogram { file, .. } = &mut self.routing {
            files.push(("routing.file", file));
        }
        match &mut self.requests {
            Some(Requests::Trace { file, .. }) => files.push(("requests.file", file)),
            Some(
                Requests::Offline { lengths: Some(l), .. }
                | Requests::Poisson { lengths: Some(l), .. }
                | Requests::Gamma { lengths: Some(l), .. },
            ) => files.push(("requests.lengths", &mut l.file)),
            _ => {}
        }
        files
    }
}

/// Workloads shipped with npusim.
pub const WORKLOAD_PRESETS: &[(&str, &str, &str)] = &[
    (
        "axk1-decode",
        "A.X K1 decoding, batch 64, 2,048-token context (the default)",
        include_str!("../presets/axk1-decode.toml"),
    ),
    (
        "axk1-prefill",
        "A.X K1 prefill of 2,048-token prompts at batch 8, then decoding",
        include_str!("../presets/axk1-prefill.toml"),
    ),
    (
        "llama3.1-70b-decode",
        "Llama-3.1-70B decoding, batch 64, 2,048-token context",
        include_str!("../presets/llama3.1-70b-decode.toml"),
    ),
];

/// The most draft tokens multi-token prediction proposes per step
/// (DeepSeek-V3 proposes 1).
pub const MAX_DRAFT_TOKENS: u32 = 16;

/// The workload `npusim run` uses when none is named.
pub const DEFAULT_WORKLOAD: &str = "axk1-decode";

fn preset_text(name: &str) -> Option<&'static str> {
    WORKLOAD_PRESETS.iter().find(|(n, _, _)| *n == name).map(|(_, _, t)| *t)
}

fn validate(w: &WorkloadSpec) -> Vec<Invalid> {
    let mut out = Vec::new();
    let s = &w.scenario;
    if s.batch == 0 {
        out.push(Invalid::new("scenario.batch", "expected at least 1, found 0"));
    }
    for (path, length) in [("scenario.context_tokens", &s.context_tokens), ("scenario.output_tokens", &s.output_tokens)]
    {
        if let Some(problem) = length.problem() {
            out.push(Invalid::new(path, problem));
        }
    }
    if let Some(mtp) = s.mtp {
        if !(1..=MAX_DRAFT_TOKENS).contains(&mtp.draft_tokens) {
            out.push(Invalid::new(
                "scenario.mtp.draft_tokens",
                format!("expected 1 to {MAX_DRAFT_TOKENS} draft tokens per step, found {}", mtp.draft_tokens),
            ));
        }
        if !(0.0..=1.0).contains(&mtp.acceptance) {
            out.push(Invalid::new(
                "scenario.mtp.acceptance",
                format!("expected a probability from 0 to 1, found {}", mtp.acceptance),
            ));
        }
    }
    if !(s.top_p > 0.0 && s.top_p <= 1.0) {
        out.push(Invalid::new("scenario.top_p", format!("expected a probability in (0, 1], found {}", s.top_p)));
    }
    if s.top_k == 0 {
        out.push(Invalid::new("scenario.top_k", "expected at least 1, found 0"));
    }
    if w.plan.attention_tensor_parallel == 0 {
        out.push(Invalid::new("plan.attention_tensor_parallel", "expected at least 1, found 0"));
    }
    let count = match &w.requests {
        Some(Requests::Offline { count, .. } | Requests::Poisson { count, .. } | Requests::Gamma { count, .. }) => {
            Some(*count as usize)
        }
        Some(Requests::Trace { count, rows, .. }) => Some(count.map_or(rows.len(), |c| rows.len().min(c as usize))),
        None => None,
    };
    if let Some(n) = count.filter(|&n| n > w.serving.max_requests as usize) {
        out.push(Invalid::new(
            "requests.count",
            format!(
                "expected at most {} requests, found {n} (raise serving.max_requests for a longer run)",
                w.serving.max_requests
            ),
        ));
    }
    match w.requests {
        Some(Requests::Offline { count: 0, .. }) => {
            out.push(Invalid::new("requests.count", "expected at least 1, found 0"));
        }
        Some(Requests::Poisson { rate, count, .. }) | Some(Requests::Gamma { rate, count, .. }) => {
            if !(rate > 0.0 && rate.is_finite()) {
                out.push(Invalid::new("requests.rate", format!("expected requests per second above 0, found {rate}")));
            }
            if count == 0 {
                out.push(Invalid::new("requests.count", "expected at least 1, found 0"));
            }
        }
        _ => {}
    }
    if let Some(Requests::Gamma { cv, .. }) = w.requests
        && !(cv > 0.0 && cv.is_finite())
    {
        out.push(Invalid::new("requests.cv", format!("expected a coefficient of variation above 0, found {cv}")));
    }
    if w.serving.token_budget == Some(0) {
        out.push(Invalid::new("serving.token_budget", "expected at least 1, found 0"));
    }
    if w.serving.kv_block_tokens == 0 {
        out.push(Invalid::new("serving.kv_block_tokens", "expected at least 1, found 0"));
    }
    if w.plan.pipeline_parallel == 0 {
        out.push(Invalid::new("plan.pipeline_parallel", "expected at least 1, found 0"));
    }
    if let Routing::Zipf { exponent } = w.routing
        && !(0.0..=10.0).contains(&exponent)
    {
        out.push(Invalid::new("routing.exponent", format!("expected a number from 0 to 10, found {exponent}")));
    }
    if !names_a_file(&w.model) && model_preset(&w.model).is_err() {
        out.push(Invalid::new(
            "model",
            format!(
                "expected the name of a shipped model (see `npusim presets`) or a model file ending in .toml or \
                 .json, found \"{}\"",
                w.model
            ),
        ));
    }
    out
}

/// Whether a workload's `model` names a file rather than a shipped config.
pub fn names_a_file(model: &str) -> bool {
    model.ends_with(".toml") || model.ends_with(".json")
}

/// Load and validate a workload whose model is a shipped config; `source`
/// names it in errors.
pub fn load_workload(source: &str, text: &str) -> Result<Workload, InputError> {
    load_workload_with(source, text, &|file| {
        Err(InputError::general(
            source,
            format!("model = \"{file}\" names a file; load the workload from its file so the model file can be read"),
        ))
    })
}

/// Load and validate a workload; a `model` that names a file is loaded by
/// `model_file` (npusim reads it relative to the workload file).
pub fn load_workload_with(
    source: &str,
    text: &str,
    model_file: &dyn Fn(&str) -> Result<ModelConfig, InputError>,
) -> Result<Workload, InputError> {
    let spec: WorkloadSpec = input::load(source, text, &preset_text, validate)?;
    let model = if names_a_file(&spec.model) { model_file(&spec.model)? } else { model_preset(&spec.model)? };
    Ok(Workload { spec, model })
}

/// Load a shipped workload by name.
pub fn workload_preset(name: &str) -> Result<Workload, InputError> {
    let text = preset_text(name).ok_or_else(|| {
        let known: Vec<_> = WORKLOAD_PRESETS.iter().map(|(n, _, _)| *n).collect();
        InputError::general(name, format!("no workload named `{name}`; workloads are: {}", known.join(", ")))
    })?;
    load_workload(&format!("workload {name}"), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_load() {
        for (name, _, _) in WORKLOAD_PRESETS {
            workload_preset(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn an_unknown_model_is_located() {
        let e = load_workload("w.toml", "base = \"axk1-decode\"\nmodel = \"gpt-9\"\n").unwrap_err();
        assert_eq!(e.problems[0].path, "model");
        assert_eq!(e.problems[0].line, Some(2));
    }
}
