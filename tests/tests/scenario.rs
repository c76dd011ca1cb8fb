//! Scenario features end to end: request lengths drawn from distributions, a
//! workload naming a model file, multi-token prediction, pipeline
//! parallelism with micro-batches, and ops placed on the host CPU.

use npusim_tests::{file, hardware, mean_step, npusim, scratch};
use workloads::graph::{Kernel, OpBody};
use workloads::lengths::Length;
use workloads::workload::{HostOp, Mtp, Phase};
use workloads::{Workload, load_workload, record_step, run, workload_preset};

fn workload(base: &str, extra: &str) -> Workload {
    load_workload("test.toml", &format!("base = \"{base}\"\n{extra}")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn drawn_lengths_differ_per_request_follow_the_seed_and_are_all_served() {
    let w = workload(
        "axk1-decode",
        "[scenario]\nbatch = 16\n\
         context_tokens = { distribution = \"lognormal\", mean = 1500.0, std_dev = 800.0, max = 8192 }\n\
         output_tokens = { distribution = \"uniform\", min = 1, max = 5 }\n",
    );
    let hw = hardware("sovereign-node");
    let a = run(&hw, &w, 1).unwrap();
    let tokens: Vec<u32> = a.requests.iter().map(|r| r.tokens).collect();
    assert!(tokens.iter().all(|t| (1..=5).contains(t)), "{tokens:?}");
    assert!(tokens.iter().any(|&t| t != tokens[0]), "lengths are drawn per request: {tokens:?}");
    // Steps run until the longest request is done; each step serves the requests still going.
    let longest = *tokens.iter().max().unwrap();
    assert_eq!(a.steps.len() as u32, longest);
    assert_eq!(a.steps.iter().map(|s| s.tokens).sum::<u32>(), tokens.iter().sum::<u32>());
    let again = run(&hw, &w, 1).unwrap();
    assert_eq!(again.requests, a.requests, "the same seed draws the same lengths");
    let other = run(&hw, &w, 2).unwrap();
    assert_ne!(other.requests.iter().map(|r| r.tokens).collect::<Vec<_>>(), tokens, "another seed, other lengths");
}

#[test]
fn a_workload_may_name_a_model_file_beside_it() {
    let dir = scratch("model-file");
    let config = include_str!("../../workloads/fixtures/hf/llama3.1-8b.json");
    // An imported config is named after its file when it does not name itself.
    std::fs::write(dir.join("llama3.1-8b.json"), config).unwrap();
    let path = dir.join("w.toml");
    let text = "base = \"llama3.1-70b-decode\"\nmodel = \"llama3.1-8b.json\"\n[scenario]\noutput_tokens = 1\n";
    std::fs::write(&path, text).unwrap();
    let out = npusim(&["run", "--workload", path.to_str().unwrap(), "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["workload"]["model"], "llama3.1-8b");

    std::fs::write(&path, text.replace("llama3.1-8b.json", "missing.json")).unwrap();
    let out = npusim(&["run", "--workload", path.to_str().unwrap()]);
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("missing.json") && out.stderr.contains("cannot read"), "{}", out.stderr);

    let out = npusim(&["validate", &file("w.toml", "base = \"axk1-decode\"\nmodel = \"gpt-9\"\n")]);
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains(":2:") && out.stderr.contains("model file ending in .toml or .json"), "{}", out.stderr);
}

fn mtp_decode(mtp: Option<Mtp>) -> workloads::RunResult {
    let mut w = workload_preset("axk1-decode").unwrap();
    let s = &mut w.spec.scenario;
    (s.batch, s.output_tokens, s.mtp) = (8, Length::Fixed(8), mtp);
    run(&hardware("sovereign-node"), &w, 1).unwrap()
}

#[test]
fn multi_token_prediction_makes_tokens_from_accepted_drafts_at_the_cost_of_longer_steps() {
    let plain = mtp_decode(None);
    let always = mtp_decode(Some(Mtp { draft_tokens: 1, acceptance: 1.0 }));
    let never = mtp_decode(Some(Mtp { draft_tokens: 1, acceptance: 0.0 }));
    let likely = mtp_decode(Some(Mtp { draft_tokens: 2, acceptance: 0.8 }));
    assert_eq!(plain.steps.len(), 8);
    assert_eq!(always.steps.len(), 4, "every draft accepted: two tokens per step");
    assert_eq!(never.steps.len(), 8, "no draft accepted: one token per step");
    for r in [&always, &never, &likely] {
        assert!(r.requests.iter().all(|q| q.tokens == 8), "every request gets exactly its tokens");
    }
    // Verifying a draft and running the MTP layer costs step time ...
    assert!(mean_step(&never) > mean_step(&plain) * 1.02, "{} vs {}", mean_step(&never), mean_step(&plain));
    // ... which accepted drafts repay.
    assert!(always.simulated < plain.simulated, "{} vs {}", always.simulated, plain.simulated);
    // Two drafts at 0.8 give at most 3 tokens a step, 2.44 on average: 8
    // tokens take from 3 steps (every draft accepted) to 8 (none).
    assert!((3..8).contains(&likely.steps.len()), "{} steps", likely.steps.len());
    assert!(likely.simulated < never.simulated);
    // The MTP layer and its head are in the step graph, once per draft.
    let mut w = workload_preset("axk1-decode").unwrap();
    w.spec.scenario.mtp = Some(Mtp { draft_tokens: 2, acceptance: 0.8 });
    let step = record_step(&hardware("sovereign-node"), &w, 1, 0).unwrap();
    for pass in ["mtp0", "mtp1"] {
        assert!(step.graph.ops.iter().any(|o| o.name == format!("{pass}.eh_proj")), "{pass}");
        assert!(step.graph.ops.iter().any(|o| o.name == format!("{pass}.lm_head")), "{pass}");
    }
    assert!(step.requests.iter().all(|r| r.new_tokens == 3 && r.logits == 3), "verify 1 + 2 drafts");
}

#[test]
fn multi_token_prediction_needs_a_model_with_an_mtp_layer() {
    let path =
        file("w.toml", "base = \"llama3.1-70b-decode\"\n[scenario]\nmtp = { draft_tokens = 1, acceptance = 0.8 }\n");
    let out = npusim(&["run", "--workload", &path]);
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("no multi-token-prediction layer"), "{}", out.stderr);
    let path = file("w.toml", "base = \"axk1-decode\"\n[scenario]\nmtp = { draft_tokens = 1, acceptance = 1.5 }\n");
    let out = npusim(&["validate", &path]);
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("scenario.mtp.acceptance"), "{}", out.stderr);
}

fn pipelined_prefill(batch: u32, micro_batches: u32) -> f64 {
    let w = workload(
        "llama3.1-70b-decode",
        &format!(
            "[scenario]\nphase = \"prefill\"\nbatch = {batch}\ncontext_tokens = 512\noutput_tokens = 1\n\
             [plan]\npipeline_parallel = 4\nmicro_batches = {micro_batches}\nattention_tensor_parallel = 8\n"
        ),
    );
    assert_eq!(w.spec.scenario.phase, Phase::Prefill);
    run(&hardware("sovereign-node"), &w, 1).unwrap().simulated.as_secs_f64()
}

#[test]
fn micro_batches_fill_the_pipeline_as_the_bubble_formula_says() {
    // Four stages. One micro-batch of size b crosses them one after the
    // other: T(b, 1) = 4 s(b). Cut 8 requests into M micro-batches and the
    // stages overlap: T(8, M) = (M + 3) s(8 / M) = (M + 3) / 4 · T(8 / M, 1).
    let whole = pipelined_prefill(8, 1);
    let mut last = whole;
    for m in [2, 4] {
        let piped = pipelined_prefill(8, m);
        let ideal = (m + 3) as f64 / 4.0 * pipelined_prefill(8 / m, 1);
        assert!(piped < last, "more micro-batches, shorter step: {piped} s after {last} s");
        assert!((piped / ideal - 1.0).abs() < 0.02, "M = {m}: {piped} s against {ideal} s");
        last = piped;
    }
}

#[test]
fn pipeline_stages_hold_their_layers_and_send_activations_between_them() {
    let w = workload(
        "llama3.1-70b-decode",
        "[plan]\npipeline_parallel = 4\nmicro_batches = 2\nattention_tensor_parallel = 8\n",
    );
    let step = record_step(&hardware("sovereign-node"), &w, 1, 0).unwrap();
    let device_of = |name: &str| match &step.graph.ops.iter().find(|o| o.name == name).unwrap().body {
        OpBody::Compute(shards) => shards[0].device,
        _ => panic!("{name} is not compute"),
    };
    // 80 layers over 4 stages of 8 chiplets: layer 20 starts stage 1 on chiplet 8.
    assert_eq!(device_of("mb0.l19.attn.o"), 0);
    assert_eq!(device_of("mb0.l20.attn.o"), 8);
    assert_eq!(device_of("mb1.l79.attn.o"), 24);
    assert_eq!(device_of("mb0.lm_head"), 24, "the LM head is on the last stage");
    // Each device sends its micro-batch's hidden states (32 requests × 8,192 × 2 bytes) to its counterpart.
    let sent: u64 = step
        .graph
        .ops
        .iter()
        .filter(|o| o.name.contains("activations"))
        .map(|o| match &o.body {
            OpBody::Transfer(t) => t.iter().map(|t| t.bytes).sum::<u64>(),
            _ => 0,
        })
        .sum();
    assert_eq!(sent, 2 * 3 * 8 * 32 * 8192 * 2, "2 micro-batches × 3 boundaries × 8 devices");
    let bad = workload("llama3.1-70b-decode", "[plan]\npipeline_parallel = 3\n");
    let e = run(&hardware("sovereign-node"), &bad, 1).unwrap_err();
    assert!(e.0.contains("pipeline_parallel = 3 does not divide the 32 chiplets"), "{e}");
}

#[test]
fn host_ops_run_on_the_cpu_model_with_their_data_over_pcie() {
    let hw = hardware("sovereign-node");
    let base = "[scenario]\nbatch = 8\noutput_tokens = 2\n[plan]\nhost_ops = ";
    let on_device = run(&hw, &workload("axk1-decode", &format!("{base}[]\n")), 1).unwrap();
    let router = workload("axk1-decode", &format!("{base}[\"moe_router\"]\n"));
    assert_eq!(router.spec.plan.host_ops, vec![HostOp::MoeRouter]);
    let step = record_step(&hw, &router, 1, 0).unwrap();
    let topk = step.graph.ops.iter().find(|o| o.name == "l3.moe.topk").unwrap();
    assert!(matches!(&topk.body, OpBody::Host(Kernel::TopK { rows: 8, cols: 192, k: 8, .. })), "{topk:?}");
    assert!(step.graph.ops.iter().any(|o| o.name == "l3.moe.router.from_host"));

    let attention = workload("axk1-decode", &format!("{base}[\"decode_attention\"]\n"));
    let r = run(&hw, &attention, 1).unwrap();
    assert_eq!(r.memory.kv_cache, 0, "the KV cache is in host DRAM");
    let cpu_busy = |r: &workloads::RunResult| -> f64 {
        reports::Report::new(r, 0.0).utilization.get("cpu.core").copied().unwrap_or(0.0)
    };
    assert!(cpu_busy(&r) > cpu_busy(&on_device) + 0.05, "{} vs {}", cpu_busy(&r), cpu_busy(&on_device));
    assert!(r.simulated > on_device.simulated, "queries and outputs cross PCIe each layer");

    // A KV cache larger than host DRAM is refused, saying by how much.
    let huge = workload(
        "axk1-decode",
        "[scenario]\nbatch = 4096\ncontext_tokens = 131072\n[plan]\nhost_ops = [\"decode_attention\"]\n",
    );
    let e = run(&hw, &huge, 1).unwrap_err();
    assert!(e.0.contains("host DRAM") && e.0.contains("too much"), "{e}");
}

#[test]
fn host_ops_survive_a_step_trace_round_trip() {
    let hw = hardware("sovereign-node");
    let w = workload(
        "axk1-decode",
        "[scenario]\nbatch = 4\noutput_tokens = 1\n[plan]\nhost_ops = [\"moe_router\", \"decode_attention\"]\n",
    );
    let direct = run(&hw, &w, 1).unwrap();
    let step = record_step(&hw, &w, 1, 0).unwrap();
    let text = traces::step::to_string(&step, "test");
    let read = traces::step::read("trace.jsonl", text.as_bytes()).unwrap();
    assert_eq!(read.graph, step.graph);
    let replayed = workloads::replay(&hw, &read).unwrap();
    assert_eq!(replayed.simulated, direct.simulated);
}
