//! MoE routing reaching the step time, and the plan's all-to-all traffic.

use npusim_tests::hardware;
use workloads::graph::OpBody;
use workloads::lengths::Length;
use workloads::routing::Router;
use workloads::workload::{Phase, Routing};
use workloads::{Workload, record_step, run, workload_preset};

/// Qwen1.5-MoE (60 experts, 4 per token) with `tokens` new tokens per request.
fn qwen(phase: Phase, batch: u32, tokens: u32, routing: Routing) -> Workload {
    let mut w = workload_preset("axk1-decode").unwrap();
    w.model = workloads::model::model_preset("qwen1.5-moe-a2.7b").unwrap();
    w.spec.model = w.model.name.clone();
    let s = &mut w.spec.scenario;
    (s.phase, s.batch, s.context_tokens, s.output_tokens) = (phase, batch, Length::Fixed(tokens), Length::Fixed(1));
    w.spec.routing = routing;
    w
}

fn step_time(hw: &str, w: &Workload) -> f64 {
    let r = run(&hardware(hw), w, 3).unwrap();
    (r.steps[0].end - r.steps[0].start).as_secs_f64()
}

/// Mixtral-8x7B prefill, 32 prompts of 256 tokens, one expert per chiplet (EP 8).
fn mixtral_prefill(routing: Routing) -> Workload {
    let mut w = qwen(Phase::Prefill, 32, 256, routing);
    w.model = workloads::model::model_preset("mixtral-8x7b").unwrap();
    w.spec.model = w.model.name.clone();
    w.spec.plan.expert_parallel = 8;
    w
}

#[test]
fn a_more_skewed_routing_slows_a_compute_bound_moe_step() {
    // Each group of 8 chiplets receives 8 x 256 tokens x 2 experts, so even
    // uniform routing gives every expert about 1,000 rows: compute-bound
    // (the ridge of a 500 TFLOP/s, 1.2 TB/s chiplet is about 210 rows of FP8
    // weights). With one expert per chiplet, the chiplet of the hottest
    // expert sets the step, and a larger exponent gives that expert more tokens.
    // (With several experts per chiplet the seeded shuffle may put the hottest
    // experts on different chiplets and balance the load; that is placement
    // luck, not routing skew, so this test keeps it out.)
    let times: Vec<f64> = [0.0, 0.5, 1.0, 1.5, 2.0]
        .iter()
        .map(|&exponent| step_time("sovereign-node", &mixtral_prefill(Routing::Zipf { exponent })))
        .collect();
    assert!(times.windows(2).all(|w| w[1] > w[0]), "step times by exponent: {times:?}");
    // Zipf with exponent 0 is uniform routing.
    let uniform = step_time("sovereign-node", &mixtral_prefill(Routing::Uniform));
    assert!((uniform - times[0]).abs() / uniform < 0.02, "{uniform} vs {}", times[0]);
}

#[test]
fn in_weight_streaming_decode_skew_means_fewer_experts_to_read() {
    // Decode at batch 64: a few rows per expert, so an expert's time is
    // reading its weights. Skewed routing touches fewer distinct experts and
    // the step gets shorter, not longer: the opposite of the compute-bound case.
    let uniform = step_time("rebel-quad", &qwen(Phase::Decode, 64, 1024, Routing::Uniform));
    let skewed = step_time("rebel-quad", &qwen(Phase::Decode, 64, 1024, Routing::Zipf { exponent: 2.0 }));
    assert!(skewed < uniform, "skewed {skewed} vs uniform {uniform}");
}

/// The all-to-all bytes the plan predicts for one decode step with one
/// request per chiplet (TP 1): each token's hidden state goes once to every
/// other chiplet of its expert group that holds one of its experts (expert e
/// on position e mod ep of the group), in FP8, and comes back in BF16.
fn predicted_all_to_all(w: &Workload, devices: u32, ep: u32, seed: u64) -> u64 {
    let m = &w.model;
    let mut router = Router::new(&w.spec.routing, m.ffn.routed_experts, m.ffn.experts_per_token, seed);
    let per_target = m.hidden as u64 * (1 + 2);
    let mut bytes = 0;
    for layer in 0..m.moe_layers() {
        for device in 0..devices {
            let experts = router.route(layer, 1).remove(0);
            let group = device / ep;
            let mut targets: Vec<u32> = experts.iter().map(|e| group * ep + e % ep).collect();
            targets.sort_unstable();
            targets.dedup();
            bytes += targets.iter().filter(|&&t| t != device).count() as u64 * per_target;
        }
    }
    bytes
}

fn sent_bytes(r: &workloads::RunResult) -> u64 {
    reports::metrics::sum_stat(&r.stats, "npu.sequencer", "sent_bytes")
}

#[test]
fn expert_parallel_over_more_cards_moves_exactly_the_predicted_bytes() {
    let hw = hardware("sovereign-node");
    let seed = 3;
    let mut results = Vec::new();
    for ep in [4, 32] {
        let mut w = qwen(Phase::Decode, 32, 512, Routing::Uniform);
        w.spec.plan.expert_parallel = ep;
        let predicted = predicted_all_to_all(&w, 32, ep, seed);
        // The step's graph carries exactly those bytes in its dispatch and combine ops...
        let step = record_step(&hw, &w, seed, 0).unwrap();
        let in_graph: u64 = step
            .graph
            .ops
            .iter()
            .filter(|op| op.name.ends_with(".moe.dispatch") || op.name.ends_with(".moe.combine"))
            .map(|op| match &op.body {
                OpBody::Transfer(t) => t.iter().map(|t| t.bytes).sum(),
                OpBody::Compute(_) | OpBody::Host(_) => 0,
            })
            .sum();
        assert_eq!(in_graph, predicted, "EP {ep}");
        results.push((ep, predicted, sent_bytes(&run(&hw, &w, seed).unwrap())));
    }
    // ...and the simulated chiplets send exactly the difference more when
    // experts spread over 8 cards instead of one (everything else is the same).
    let (_, p4, s4) = results[0];
    let (_, p32, s32) = results[1];
    assert!(p32 > p4, "more groups' worth of experts elsewhere: {p32} vs {p4}");
    assert_eq!(s32 - s4, p32 - p4);
}

#[test]
fn placing_experts_by_load_shortens_a_skewed_step_and_replicas_save_traffic() {
    use workloads::workload::ExpertPlacement;
    // Qwen1.5-MoE prefill on one REBEL-Quad: 15 experts per chiplet, and with
    // Zipf 1.5 under this seed the hottest experts share a chiplet.
    let run_with = |placement: ExpertPlacement| {
        let mut w = qwen(Phase::Prefill, 4, 1024, Routing::Zipf { exponent: 1.5 });
        w.spec.plan.expert_placement = placement;
        let r = run(&hardware("rebel-quad"), &w, 1).unwrap();
        let d2d = reports::metrics::sum_stat(&r.stats, "link.d2d", "bytes");
        ((r.steps[0].end - r.steps[0].start).as_secs_f64(), d2d, r.memory.weights)
    };
    let (balanced, balanced_d2d, balanced_weights) = run_with(ExpertPlacement::Balanced);
    let (load_aware, _, load_aware_weights) = run_with(ExpertPlacement::LoadAware);
    let (replicated, replicated_d2d, replicated_weights) = run_with(ExpertPlacement::ReplicatedHot { experts: 4 });
    assert!(load_aware < 0.95 * balanced, "load-aware {load_aware} vs balanced {balanced}");
    assert!(replicated < balanced, "replicated {replicated} vs balanced {balanced}");
    assert_eq!(load_aware_weights, balanced_weights, "the same number of experts per chiplet");
    // The 4 hottest experts' tokens stay home: less die-to-die traffic, paid
    // for with 14 + 4 experts per chiplet instead of 15 (3 more, 24 layers, FP8).
    assert!(replicated_d2d < balanced_d2d * 7 / 10, "{replicated_d2d} vs {balanced_d2d}");
    assert_eq!(replicated_weights - balanced_weights, 3 * 24 * 3 * 2048 * 1408);
}

#[test]
fn a_recorded_routing_histogram_is_read_beside_the_workload() {
    let dir = npusim_tests::scratch("histogram");
    // Mixtral: 32 MoE layers of 8 experts; every layer sends all its tokens to experts 0 and 1.
    let row = "5 5 0 0 0 0 0 0\n";
    std::fs::write(dir.join("routes.txt"), format!("# tokens per expert, one line per MoE layer\n{row}")).unwrap();
    let workload = "base = \"llama3.1-70b-decode\"\nname = \"h\"\nmodel = \"mixtral-8x7b\"\n\
                    [scenario]\nbatch = 8\noutput_tokens = 1\n\
                    [plan]\nexpert_parallel = 8\n\
                    [routing]\ndistribution = \"histogram\"\nfile = \"routes.txt\"\n";
    std::fs::write(dir.join("w.toml"), workload).unwrap();
    let w = dir.join("w.toml");
    let out = npusim_tests::npusim(&["run", "--workload", w.to_str().unwrap(), "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["tokens_generated"], 8);
    // A bad count is an error at its line and column.
    std::fs::write(dir.join("routes.txt"), "5 5 0 0 0 0 0 0\n5 5 0 -1 0 0 0 0\n").unwrap();
    let out = npusim_tests::npusim(&["run", "--workload", w.to_str().unwrap()]);
    assert_eq!(out.status, 2);
    assert!(
        out.stderr.contains("routes.txt:2:7: field `routing.file`: expected a token count of 0 or more, found `-1`"),
        "{}",
        out.stderr
    );
}
